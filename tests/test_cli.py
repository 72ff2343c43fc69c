"""recon3d reconstruct and models: outputs, and one-line errors for bad inputs."""

import re

import numpy as np
import pytest
import trimesh
from helpers import octahedron_model
from PIL import Image

from recon_core import cli


def glb_colours(path) -> np.ndarray:
    """COLOR_0 of a GLB's first primitive, read from its chunks (uint8 RGBA)."""
    import json
    import struct

    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    gltf = json.loads(data[20 : 20 + length])
    binary = data[20 + length + 8 :]
    accessor = gltf["accessors"][gltf["meshes"][0]["primitives"][0]["attributes"]["COLOR_0"]]
    view = gltf["bufferViews"][accessor["bufferView"]]
    raw = np.frombuffer(binary, np.uint8, view["byteLength"], view["byteOffset"])
    return raw.reshape(accessor["count"], 4)


def _run(*args) -> int:
    return cli.main(["reconstruct", *map(str, args), "--no-progress"])


def test_reconstruct_writes_a_coloured_closed_mesh_points_and_a_preview(tmp_path, picture, capsys):
    model = octahedron_model(tmp_path / "octa.safetensors")
    out = tmp_path / "out"
    assert _run(picture, "--model", model, "--resolution", 64, "--output-dir", out) == 0
    said = capsys.readouterr().out.strip()
    assert said.startswith(f"{picture}: {out / 'green box.glb'}, ")
    seen = r"; colours seen from [a-z-]+ \(azimuth \d+, elevation -?\d+\), estimated$"
    assert re.search(seen, said)
    assert sorted(p.name for p in out.iterdir()) == [
        "green box.glb",
        "green box_points.glb",
        "green box_preview.png",
    ]
    mesh = trimesh.load(out / "green box.glb", force="mesh", process=False)
    assert mesh.is_watertight and len(mesh.faces) > 500
    assert np.abs(mesh.vertices).max() <= 0.55
    colours = glb_colours(out / "green box.glb")[:, :3].astype(int)
    assert len(colours) == len(mesh.vertices)
    assert np.abs(colours - [40, 160, 90]).max() <= 2  # the picture's only colour
    scene = trimesh.load(out / "green box_points.glb", process=False)
    (cloud,) = scene.geometry.values()
    assert isinstance(cloud, trimesh.PointCloud) and len(cloud.vertices) == 20000
    assert len(glb_colours(out / "green box_points.glb")) == 20000
    preview = np.asarray(Image.open(out / "green box_preview.png"))
    assert preview.shape == (256, 1024, 3) and (preview[:, 256:] != 255).any()

    assert (
        _run(
            picture,
            "--model",
            model,
            "--format",
            "ply",
            "--output",
            "mesh",
            "--resolution",
            48,
            "--output-dir",
            out,
            "--no-preview",
        )
        == 0
    )
    assert trimesh.load(out / "green box.ply").is_watertight
    first = (out / "green box.glb").read_bytes()
    assert _run(picture, "--model", model, "--resolution", 64, "--output-dir", out) == 0
    assert (out / "green box.glb").read_bytes() == first  # same picture, same mesh


def test_background_estimate_mask_override_and_saved_mask(tmp_path):
    model = octahedron_model(tmp_path / "octa.safetensors")
    rgb = np.full((100, 140, 3), 235, np.uint8)
    rgb[20:80, 40:100] = (200, 60, 50)  # a red object on a light grey background
    photo = tmp_path / "photo.jpg"
    Image.fromarray(rgb).save(photo, quality=95)
    out = tmp_path / "out"
    assert (
        _run(
            photo,
            "--model",
            model,
            "--resolution",
            32,
            "--output-dir",
            out,
            "--save-mask",
            "--output",
            "mesh",
        )
        == 0
    )
    mask = np.asarray(Image.open(out / "photo_mask.png")) > 127
    truth = np.zeros_like(mask)
    truth[20:80, 40:100] = True
    assert (mask & truth).sum() / (mask | truth).sum() > 0.93  # JPEG ringing: a 1 px rim
    override = np.zeros((100, 140), np.uint8)
    override[10:40, 10:40] = 255
    Image.fromarray(override).save(tmp_path / "mask.png")
    assert (
        _run(
            photo,
            "--model",
            model,
            "--resolution",
            32,
            "--output-dir",
            out,
            "--save-mask",
            "--output",
            "mesh",
            "--mask",
            tmp_path / "mask.png",
        )
        == 0
    )
    used = np.asarray(Image.open(out / "photo_mask.png")) > 127
    assert used.sum() == 900 and used[10:40, 10:40].all()


def test_bad_inputs_get_one_line_errors_and_the_rest_goes_on(
    tmp_path, picture, capsys, monkeypatch
):
    model = octahedron_model(tmp_path / "octa.safetensors")
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (50, 50), "white").save(blank)
    empty = tmp_path / "empty.png"
    Image.new("RGBA", (50, 50), (0, 0, 0, 0)).save(empty)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(picture.read_bytes()[:100])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    bomb = tmp_path / "bomb.png"
    Image.new("RGB", (400, 400), "white").save(bomb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40_000)  # 400x400 is then a bomb
    out = tmp_path / "out"
    names = ["missing.png", "blank.jpg", "empty.png", "truncated.png", "notes.png", "bomb.png"]
    code = _run(
        *[tmp_path / n for n in names],
        picture,
        "--model",
        model,
        "--resolution",
        32,
        "--output-dir",
        out,
        "--output",
        "mesh",
        "--no-preview",
    )
    assert code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(errors) == len(names)
    for name, line in zip(names, errors, strict=True):
        assert line.startswith("error: ") and name in line
    assert "decompression bomb" in errors[-1]
    assert sorted(p.name for p in out.iterdir()) == ["green box.glb"]  # no partial files

    bad_model = tmp_path / "bad.safetensors"
    bad_model.write_bytes(b"junk")
    assert _run(picture, "--model", bad_model) == 2
    assert "bad.safetensors" in capsys.readouterr().err
    assert _run(picture, "--model", "no-such-model") == 2
    assert "no-such-model: unknown model name" in capsys.readouterr().err


def test_an_unwritable_output_folder_is_one_error_before_any_work(
    tmp_path, picture, capsys, monkeypatch
):
    model = octahedron_model(tmp_path / "octa.safetensors")
    blocker = tmp_path / "a file"
    blocker.write_text("in the way")  # the output folder cannot be made under a file
    from recon_core import inference

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the output folder was checked")

    monkeypatch.setattr(inference, "Reconstructor", no_model)
    args = [picture, picture, "--model", model, "--output-dir", blocker / "sub"]
    assert _run(*args) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {blocker / 'sub'}: cannot write results there")
    assert blocker.read_text() == "in the way"


def test_models_lists_user_models_with_their_method(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECON3D_MODELS", str(tmp_path))
    octahedron_model(tmp_path / "octa.safetensors")
    (tmp_path / "broken.safetensors").write_bytes(b"junk")
    assert cli.main(["models"]) == 0
    text = capsys.readouterr().out
    assert "octa" in text and "implicit" in text
    assert re.search(r"^broken\s+user\s+broken: ", text, re.MULTILINE)


def test_a_point_cloud_model_gives_coloured_points_and_a_closed_mesh(tmp_path, picture):
    from helpers import sphere_cloud_model

    model = sphere_cloud_model(tmp_path / "sphere.safetensors")
    out = tmp_path / "out"
    assert _run(picture, "--model", model, "--output-dir", out, "--format", "ply") == 0
    cloud = trimesh.load(out / "green box_points.ply", process=False)
    radius = np.linalg.norm(cloud.vertices, axis=1)
    assert len(cloud.vertices) > 1000 and np.abs(radius - 0.3).max() < 0.02  # the sphere only
    assert np.abs(cloud.visual.vertex_colors[:, :3].astype(int) - [40, 160, 90]).max() <= 2
    mesh = trimesh.load(out / "green box.ply", process=False)
    assert mesh.is_watertight and np.linalg.norm(mesh.vertices, axis=1).max() < 0.36


def test_consistency_drops_points_outside_the_other_views_silhouettes(tmp_path, picture):
    from helpers import sphere_cloud_model

    model = sphere_cloud_model(tmp_path / "flange.safetensors", flange=0.45)
    radii = {}
    for option in ([], ["--consistency", "0"], ["--consistency", "7"]):
        out = tmp_path / f"out{len(radii)}"
        assert (
            _run(picture, "--model", model, "--output-dir", out, "--output", "points", *option) == 0
        )
        (cloud,) = trimesh.load(out / "green box_points.glb", process=False).geometry.values()
        radii[" ".join(option)] = np.linalg.norm(cloud.vertices, axis=1)
    assert radii[""].max() > 0.44  # the flange is there by default
    assert np.abs(radii["--consistency 0"] - 0.3).max() < 0.02  # only the sphere is kept
    assert len(radii["--consistency 7"]) == len(radii[""])  # 7 of 8 views may disagree
    assert _run(picture, "--model", model, "--output-dir", tmp_path, "--consistency", "-1") == 2


def test_resolution_figure_shows_one_latent_at_each_resolution(tmp_path):
    from pathlib import Path

    from training.reports import figures

    sofa = Path(__file__).resolve().parents[1] / "examples" / "sofa.png"
    out = tmp_path / "figure.png"
    assert figures.main(["resolutions", "--picture", str(sofa), "--out", str(out)]) == 0
    image = np.asarray(Image.open(out))
    assert image.shape == (256, 5 * 256, 3)
    tiles = image.reshape(256, 5, 256, 3).transpose(1, 0, 2, 3)
    drawn = [(tile < 200).any(-1).mean() for tile in tiles]  # share of non-white pixels
    assert all(share > 0.05 for share in drawn), drawn
    assert figures.main(["resolutions", "--picture", str(tmp_path / "no.png"), "--out", "x"]) == 1


def test_gpu_out_of_memory_falls_back_to_smaller_chunks_then_the_cpu(picture, caplog, monkeypatch):
    """The fallbacks, driven by a model that raises CUDA's out-of-memory error (this machine
    has no GPU, so the error is simulated; the recovery code is the real one)."""
    import logging

    import torch

    from recon_core import inference
    from recon_core.methods import implicit
    from recon_core.picture import read_picture

    model = inference.Reconstructor("implicit", "cpu")
    real_encode, failures = model.model.encode, []

    def encode_once_out_of_memory(image):
        if not failures:
            failures.append("encode")
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real_encode(image)

    model.model.encode = encode_once_out_of_memory
    with caplog.at_level(logging.WARNING, logger="recon3d"):
        encoded = model.encode_picture(read_picture(picture))
    assert failures == ["encode"] and encoded.latent is not None
    assert "out of memory while encoding; falling back to the CPU" in caplog.text

    real_extract, batches = implicit.extract_mesh, []

    def extract_out_of_memory_above_8192(field, resolution, iso, batch, device, symmetric):
        batches.append(batch)
        if batch > 8192:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real_extract(field, resolution, iso, batch=batch, device=device)

    monkeypatch.setattr(implicit, "extract_mesh", extract_out_of_memory_above_8192)
    model.mesh(encoded, 32)
    assert batches == [4096]  # on the CPU, chunks that stay in cache
    batches.clear()
    monkeypatch.setattr(implicit, "default_batch", lambda device: 65536)  # a GPU's chunks
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="recon3d"):
        mesh, _ = model.mesh(encoded, 32)
    assert batches == [65536, 8192] and len(mesh.faces) > 0
    assert "evaluating in chunks of 8192 points" in caplog.text


def test_face_budget_gives_a_closed_coloured_mesh_within_it(tmp_path, picture, capsys):
    model = octahedron_model(tmp_path / "octa.safetensors")
    out = tmp_path / "out"
    options = ["--model", model, "--resolution", 64, "--output-dir", out, "--no-preview"]
    assert _run(picture, *options, "--output", "mesh", "--format", "ply", "--faces", 300) == 0
    mesh = trimesh.load(out / "green box.ply", process=False)
    assert 250 <= len(mesh.faces) <= 300 and mesh.is_watertight
    assert np.abs(np.asarray(mesh.visual.vertex_colors)[:, :3] - [40, 160, 90]).max() <= 2
    assert _run(picture, *options, "--faces", 2) == 2
    assert "error: faces must be at least 4, got 2" in capsys.readouterr().err


def test_worker_jobs_apply_the_silhouette_test_also_when_re_extracting(tmp_path, picture):
    """The add-on's job contract: ``consistency`` per job, so Re-extract can switch it on
    or off from the cached encoding (the encoder does not run again)."""
    from helpers import sphere_cloud_model

    from recon_core.worker import run_job

    model = str(sphere_cloud_model(tmp_path / "flange.safetensors", flange=0.45))
    cache = tmp_path / "encoding.npz"
    job = {"model": model, "output": "points", "device": "cpu", "image": str(picture)}
    first = run_job({**job, "save_encoding": str(cache), "consistency": None}, model_cache={})
    assert np.linalg.norm(first["points"], axis=1).max() > 0.44
    again = run_job({"encoding": str(cache), "output": "points", "consistency": 0})
    radius = np.linalg.norm(again["points"], axis=1)
    assert np.abs(radius - 0.3).max() < 0.02 and len(again["point_colours"]) == len(radius)
    # the colours' viewpoint travels with the result, in degrees and in words
    azimuth, elevation = again["view"]
    assert 0 <= azimuth < 360 and -90 <= elevation <= 90
    angles = f"(azimuth {round(azimuth)}, elevation {round(elevation)})"
    assert str(again["view_text"]).endswith(angles)


def test_a_field_below_the_iso_level_is_extracted_at_half_its_highest_occupancy(
    tmp_path, picture, caplog, capsys
):
    """An octahedron field whose highest occupancy is 0.4: nothing reaches 0.5, so the mesh
    comes at 0.2, the octahedron |x| + |y| + |z| < (logit 0.4 - logit 0.2) / 20; one line
    says so (the log, and the add-on's worker result), and a field that never reaches 0.1
    stays an error."""
    import logging
    import math

    from recon_core.extraction import EmptyFieldError, is_closed
    from recon_core.inference import Reconstructor
    from recon_core.picture import read_picture
    from recon_core.worker import run_job

    def logit(p):
        return math.log(p / (1 - p))

    faint = octahedron_model(tmp_path / "faint.safetensors", peak=logit(0.4))
    model = Reconstructor(str(faint), "cpu")
    encoded = model.encode_picture(read_picture(picture))
    with caplog.at_level(logging.WARNING, logger="recon3d"):
        mesh, stats = model.mesh(encoded, 128)
    assert stats.iso == 0.2 and is_closed(mesh.faces)
    assert "nothing reaches the iso level 0.5 (highest occupancy 0.40); extracting at 0.2" in (
        caplog.text
    )
    radius = (logit(0.4) - logit(0.2)) / 20.0
    extent = np.abs(mesh.vertices).sum(axis=1).max()
    assert abs(extent - radius) < 1.1 / 128, (extent, radius)
    with pytest.raises(EmptyFieldError, match=r"highest 0\.(39|40)\)") as caught:
        model.mesh(encoded, 128, lower_iso=False)
    assert caught.value.highest == pytest.approx(0.4, abs=0.01)
    job = {"model": str(faint), "output": "mesh", "device": "cpu", "image": str(picture)}
    result = run_job(job, model_cache={})
    assert str(result["note"]) == "nothing reached the iso level 0.5; the mesh is at 0.2 instead"
    assert "note" not in run_job({**job, "iso": 0.3}, model_cache={})
    assert _run(picture, "--model", faint, "--output-dir", tmp_path / "out") == 0
    assert (tmp_path / "out" / "green box.glb").exists()
    blank = octahedron_model(tmp_path / "blank.safetensors", peak=logit(0.08))
    with pytest.raises(EmptyFieldError, match=r"highest 0\.0[78]\)"):
        Reconstructor(str(blank), "cpu").mesh(encoded, 64)
    assert _run(picture, "--model", blank, "--output-dir", tmp_path / "none") == 1
    assert "stays below the iso level 0.5 everywhere" in capsys.readouterr().err


def test_symmetric_results_mirror_onto_themselves(tmp_path, picture):
    """``--symmetric`` with the bundled models: the implicit mesh's vertices and the point
    cloud (twice the points, each one's mirror image after them) mirror onto themselves
    across x = 0; without it, the bundled implicit mesh does not."""
    from scipy.spatial import cKDTree

    from recon_core.worker import run_job

    gaps = {}
    for option in ([], ["--symmetric"]):
        out = tmp_path / f"out{len(gaps)}"
        assert _run(picture, "--output-dir", out, "--resolution", 64, *option) == 0
        mesh = trimesh.load(out / "green box.glb", force="mesh", process=False)
        assert mesh.is_watertight
        mirrored = mesh.vertices * [-1, 1, 1]
        gaps[" ".join(option)] = cKDTree(mesh.vertices).query(mirrored)[0].max()
    assert gaps["--symmetric"] < 1e-5 and gaps[""] > 0.01
    job = {"model": "pointcloud", "output": "points", "device": "cpu", "image": str(picture)}
    plain = run_job(job, model_cache={})["points"]
    both = run_job({**job, "symmetric": True})["points"]
    assert len(both) == 2 * len(plain)
    np.testing.assert_array_equal(both[: len(plain)], plain)
    np.testing.assert_array_equal(both[len(plain) :], plain * [-1, 1, 1])


def test_a_view_hint_picks_the_side_the_colours_come_from(tmp_path, capsys):
    """Named from the front, the picture's left half colours the object's -x side; named from
    the back, its +x side. The shape (an octahedron whatever the picture) stays the same."""
    rgba = np.zeros((120, 120, 4), np.uint8)
    rgba[30:90, 30:90, 3] = 255
    rgba[30:90, 30:60, :3] = (220, 30, 30)  # left half red, right half blue
    rgba[30:90, 60:90, :3] = (30, 30, 220)
    picture = tmp_path / "halves.png"
    Image.fromarray(rgba).save(picture)
    model = octahedron_model(tmp_path / "octa.safetensors")
    meshes = {}
    for view in ("front", "back"):
        out = tmp_path / view
        args = ("--model", model, "--resolution", 48, "--output", "mesh", "--view", f"{view},0")
        assert _run(picture, *args, "--format", "ply", "--output-dir", out, "--no-preview") == 0
        said = capsys.readouterr().out  # where the colours were seen from, in words
        seen = rf"; colours seen from {view} \(azimuth \d+, elevation -?\d+\), as given"
        assert re.search(seen, said)
        meshes[view] = trimesh.load(out / "halves.ply", process=False)  # the object frame
        colours = meshes[view].visual.vertex_colors[:, :3].astype(int)
        near = meshes[view].vertices[:, 1] < -0.1  # the front half, the side -Y faces
        left = near & (meshes[view].vertices[:, 0] < -0.1)
        red = colours[left, 0] > colours[left, 2]
        assert red.mean() == (1.0 if view == "front" else 0.0), (view, red.mean())
    np.testing.assert_array_equal(meshes["front"].vertices, meshes["back"].vertices)
    # one hint per picture, in order: the same picture twice, named from the back, then front
    twice = tmp_path / "twice"
    twice.mkdir()
    pictures = [twice / "a.png", twice / "b.png"]
    for path in pictures:
        path.write_bytes(picture.read_bytes())
    out = tmp_path / "both"
    args = ("--model", model, "--resolution", 48, "--output", "mesh", "--format", "ply")
    hints = ("--view", "back,0", "--view", "front,0", "--no-preview", "--output-dir", out)
    assert _run(*pictures, *args, *hints) == 0
    for name, view in (("a", "back"), ("b", "front")):
        got = trimesh.load(out / f"{name}.ply", process=False).visual.vertex_colors
        expected = trimesh.load(tmp_path / view / "halves.ply", process=False).visual.vertex_colors
        np.testing.assert_array_equal(got, expected)
    assert _run(*pictures, *args, "--view", "front", "--view", "back", "--view", "left") == 2


def test_fitting_the_silhouette_reshapes_the_mesh(tmp_path, picture, capsys):
    from recon_core.inference import Reconstructor
    from recon_core.picture import read_picture

    plain, fitted = tmp_path / "plain", tmp_path / "fitted"
    base = (picture, "--resolution", 64, "--output", "mesh", "--no-preview", "--view", "front")
    assert _run(*base, "--output-dir", plain) == 0
    assert _run(*base, "--fit-silhouette", "--output-dir", fitted) == 0
    before = trimesh.load(plain / "green box.glb", force="mesh", process=False)
    after = trimesh.load(fitted / "green box.glb", force="mesh", process=False)
    assert after.is_watertight and np.abs(after.vertices).max() <= 0.55
    assert len(after.vertices) != len(before.vertices) or not np.allclose(
        after.vertices, before.vertices
    )
    model = Reconstructor("implicit", "cpu")
    encoded = model.encode_picture(read_picture(picture))
    refit = model.fit_silhouette(encoded)
    assert refit.fitted and not encoded.fitted and refit.framed is encoded.framed
    assert not torch_equal(refit.latent, encoded.latent)
    with pytest.raises(ValueError, match="made from a Picture"):
        model.fit_silhouette(model.encode(encoded.framed))
    cloud = Reconstructor("pointcloud", "cpu")
    with pytest.raises(ValueError, match="implicit model"):
        cloud.fit_silhouette(cloud.encode_picture(read_picture(picture)))
    capsys.readouterr()
    assert _run(picture, "--fit-silhouette", "--output-dir", tmp_path / "x") == 2
    assert "fitting the silhouette needs a view" in capsys.readouterr().err
    args = ("--fit-silhouette", "--view", "left", "--model", "pointcloud")
    assert _run(picture, *args, "--output-dir", tmp_path / "y") == 2
    assert "needs an implicit model, this one is pointcloud" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        _run(picture, "--view", "sideways")
    assert exit_info.value.code == 2
    assert "'sideways' is neither a number nor one of front" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def torch_equal(a, b) -> bool:
    return bool((a == b).all())
