"""The viewpoint estimator: its angle conventions, its mirror augmentation, that it learns
the viewpoint of a shape whose front and back differ, and that it travels inside a model's
checkpoint."""

import math

import numpy as np
import pytest
import torch

from recon_core.checkpoint import CheckpointError, attach_viewpoint, load_checkpoint
from recon_core.colour import estimate_view
from recon_core.geometry import look_at, perspective_intrinsics, project, view_direction
from recon_core.imaging import OBJECT_FILL, network_input
from recon_core.inference import Reconstructor
from recon_core.viewpoint import (
    ViewpointConfig,
    ViewpointNet,
    azimuth_labels,
    camera_angles,
)
from tests.helpers import octahedron_model
from training.viewpoint import _augment, evaluate, train


@pytest.mark.parametrize("azimuth, elevation", [(0, 0), (37, 12), (181, -8), (300, 55)])
def test_camera_angles_invert_the_camera_placement(azimuth, elevation):
    eye = 2.3 * view_direction(math.radians(azimuth), math.radians(elevation))
    got = camera_angles(look_at(eye))
    assert got[0] == pytest.approx(azimuth % 360, abs=1e-6)
    assert got[1] == pytest.approx(elevation, abs=1e-6)


def test_azimuth_labels_wrap_around_zero():
    config = ViewpointConfig()
    labels = azimuth_labels(torch.tensor([355.0]), config, 7.5)[0]
    assert labels.sum() == pytest.approx(1.0)
    # 355 lies 5 degrees from the bins at 350 and 0, 15 from those at 340 and 10
    assert float(labels[35]) == pytest.approx(float(labels[0]), rel=1e-5)
    assert labels[0] == labels.max()
    assert float(labels[34]) == pytest.approx(float(labels[1]), rel=1e-5)
    assert labels[0] > 5 * labels[1]


# a block whose silhouette is the same from azimuths a, -a and a + 180 but whose colours
# are not: a red front (-Y), a blue right rear (+X, +Y) corner, grey elsewhere
def _coloured_shape(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    points = rng.uniform(-1, 1, (20000, 3)) * np.array([0.5, 0.2, 0.25])
    colours = np.full((len(points), 3), 128, np.uint8)
    colours[points[:, 1] < -0.15] = (220, 30, 30)
    colours[(points[:, 0] > 0.3) & (points[:, 1] > 0.0)] = (30, 30, 220)
    return points, colours


def _render(points, colours, azimuth, elevation, size=32):
    """A framed RGBA picture of coloured points (nearest point per pixel), framed like the
    training renders: the projection's bounding box takes OBJECT_FILL of the side."""
    extrinsic = look_at(2.2 * view_direction(math.radians(azimuth), math.radians(elevation)))
    uv, depth = project(points, extrinsic, perspective_intrinsics(0.8, 512), "perspective")
    lo, hi = uv.min(0), uv.max(0)
    side = (hi - lo).max() / OBJECT_FILL
    ij = np.floor((uv - ((lo + hi) / 2 - side / 2)) * size / side).astype(int).clip(0, size - 1)
    image = np.zeros((size, size, 4), np.uint8)
    for k in np.argsort(-depth):  # far to near: the nearest point's colour stays
        image[ij[k, 1], ij[k, 0]] = (*colours[k], 255)
    return image


def test_mirrored_pictures_are_seen_from_the_negated_azimuth():
    """The augmentation's rule: a picture flipped left to right is the object mirrored
    across x = 0 seen from azimuth -a."""
    rng = np.random.default_rng(0)
    points, colours = _coloured_shape(rng)
    mirrored = points * np.array([-1.0, 1.0, 1.0])
    for azimuth in (30.0, 135.0, 250.0):
        flipped = _render(points, colours, azimuth, 20.0)[:, ::-1]
        expected = _render(mirrored, colours, -azimuth, 20.0)
        agree = np.mean(np.all(flipped == expected, axis=-1))
        assert agree > 0.97, (azimuth, agree)
    config = ViewpointConfig(input_size=32, width=4)
    images = network_input(np.stack([_render(points, colours, 30.0, 20.0)]), 32)
    images = (images * 255).round().to(torch.uint8).repeat(64, 1, 1, 1)
    angles = torch.tensor([[30.0, 20.0]]).repeat(64, 1)
    out, labels = _augment(images, angles, torch.Generator().manual_seed(0))
    assert set(labels[:, 0].round().tolist()) == {30.0, 330.0}
    assert out.shape == (64, 4, 32, 32) and config.input_size == 32


def test_the_estimator_learns_the_viewpoint_and_beats_the_silhouette_alone():
    rng = np.random.default_rng(1)
    points, colours = _coloured_shape(rng)
    angles = np.stack([rng.uniform(0, 360, 400), rng.uniform(-10, 50, 400)], 1)
    pictures = np.stack([_render(points, colours, a, e) for a, e in angles])
    images = (network_input(pictures, 32) * 255).round().to(torch.uint8)
    config = ViewpointConfig(input_size=32, width=8)
    torch.set_num_threads(1)
    net = train(images[:320], angles[:320].astype(np.float32), config, 600, batch=32, lr=3e-3)
    metrics = evaluate(net, images[320:], angles[320:].astype(np.float32))
    assert metrics["azimuth_within_15"] >= 0.8, metrics
    assert metrics["elevation_median_error"] <= 10.0, metrics
    # the silhouette alone cannot tell the front from the back; with the estimator's
    # probabilities the search gets the azimuth right
    alone, helped = [], []
    for picture, (azimuth, _) in zip(pictures[320:360], angles[320:360], strict=True):
        mask = picture[..., 3] > 0
        alone.append(estimate_view(points, mask, size=32).azimuth - azimuth)
        view = estimate_view(points, mask, size=32, prior=net.predict(picture), prior_weight=1.0)
        helped.append(view.azimuth - azimuth)
    alone, helped = (np.abs((np.array(g) + 180) % 360 - 180) for g in (alone, helped))
    assert np.mean(helped <= 15) >= 0.8
    assert np.mean(helped <= 15) > np.mean(alone <= 15) + 0.2


def test_the_estimator_travels_in_the_checkpoint(tmp_path):
    path = octahedron_model(tmp_path / "model.safetensors")
    before = load_checkpoint(path)
    assert before.viewpoint_state is None and Reconstructor(path, "cpu").viewpoint is None
    config = ViewpointConfig(input_size=32, width=4)
    net = ViewpointNet(config)
    attach_viewpoint(path, config.to_dict(), net.state_dict(), {"azimuth_within_15": 0.5})
    after = load_checkpoint(path)
    assert after.info["viewpoint"]["metrics"] == {"azimuth_within_15": 0.5}
    assert after.info["step"] == before.info["step"]
    for name, value in before.model_state.items():
        assert torch.equal(after.model_state[name], value), name
    reconstructor = Reconstructor(path, "cpu")
    picture = np.zeros((64, 64, 4), np.uint8)
    picture[16:48, 20:44] = 200
    expected = net.eval().predict(picture).azimuth
    got = reconstructor.viewpoint.predict(picture).azimuth
    np.testing.assert_allclose(got, expected, atol=2e-3)  # stored in fp16
    # the colours' viewpoint search runs with it
    from PIL import Image

    from recon_core.picture import read_picture

    Image.fromarray(picture).save(tmp_path / "picture.png")
    encoded = reconstructor.encode_picture(read_picture(tmp_path / "picture.png"))
    coloured = reconstructor.coloured_mesh(encoded, resolution=32)
    assert coloured.colours is not None and encoded.views[None] is not None
    # attaching again replaces it; a file that does not validate is refused, unchanged
    attach_viewpoint(path, config.to_dict(), net.state_dict(), {"azimuth_within_15": 0.7})
    assert load_checkpoint(path).info["viewpoint"]["metrics"]["azimuth_within_15"] == 0.7
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(path.read_bytes()[:-100])
    data = broken.read_bytes()
    with pytest.raises(CheckpointError, match="broken.safetensors"):
        attach_viewpoint(broken, config.to_dict(), net.state_dict(), {})
    assert broken.read_bytes() == data


def test_an_unusable_estimator_is_a_checkpoint_error(tmp_path):
    path = octahedron_model(tmp_path / "model.safetensors")
    config = ViewpointConfig(input_size=32, width=4)
    state = ViewpointNet(config).state_dict()
    attach_viewpoint(path, {**config.to_dict(), "width": 8}, state, {})
    with pytest.raises(CheckpointError, match="model.safetensors: unusable viewpoint"):
        Reconstructor(path, "cpu")


def test_training_attaches_it_and_bundling_keeps_it(tiny_dataset, tmp_path, capsys):
    from training import bundle, train
    from training import viewpoint as viewpoint_cli

    run = tmp_path / "run"
    args = ["--method", "implicit", "--preset", "implicit-smoke", "--data", str(tiny_dataset)]
    assert train.main([*args, "--out", str(run), "--set", "stages.0.steps=2", "--no-progress"]) == 0
    model = run / "model.safetensors"
    # a checkpoint that does not validate is refused before any training
    assert viewpoint_cli.main(["--data", str(tiny_dataset), "--attach", str(tmp_path / "no")]) == 1
    assert "no such checkpoint file" in capsys.readouterr().err
    common = ["--data", str(tiny_dataset), "--steps", "4", "--batch", "4", "--width", "4"]
    assert viewpoint_cli.main([*common, "--attach", str(model)]) == 0
    attached = load_checkpoint(model)
    assert set(attached.info["viewpoint"]["metrics"]) >= {"val", "test", "train_views"}
    assert attached.viewpoint_state["azimuth.weight"].dtype == torch.float16
    out = tmp_path / "models"
    bundle_args = ["--run", str(run), "--name", "tiny", "--data", str(tiny_dataset)]
    bundle_args += ["--train-data", str(tiny_dataset), "--out", str(out), "--resolution", "32"]
    assert bundle.main([*bundle_args, "--no-progress"]) == 0
    bundled = load_checkpoint(out / "tiny.safetensors")
    assert bundled.info["viewpoint"] == attached.info["viewpoint"]
    for name, value in attached.viewpoint_state.items():
        assert torch.equal(bundled.viewpoint_state[name], value), name
    assert Reconstructor(out / "tiny.safetensors", "cpu").viewpoint is not None


def test_an_estimator_is_copied_from_another_model_unchanged(tmp_path, capsys):
    from training import viewpoint as viewpoint_cli

    source = octahedron_model(tmp_path / "source.safetensors")
    config = ViewpointConfig(input_size=32, width=4)
    net = ViewpointNet(config)
    attach_viewpoint(source, config.to_dict(), net.state_dict(), {"steps": 7})
    target = octahedron_model(tmp_path / "target.safetensors", shift=0.1)
    weights = load_checkpoint(target).model_state
    bare = octahedron_model(tmp_path / "bare.safetensors")
    # a source without an estimator, or a target that does not validate: nothing is written
    before = target.read_bytes()
    assert viewpoint_cli.main(["--from", str(bare), "--attach", str(target)]) == 1
    assert "bare.safetensors: carries no viewpoint estimator" in capsys.readouterr().err
    missing = tmp_path / "missing.safetensors"
    assert (
        viewpoint_cli.main(
            ["--from", str(source), "--attach", str(target), "--attach", str(missing)]
        )
        == 1
    )
    assert "missing.safetensors" in capsys.readouterr().err
    assert target.read_bytes() == before
    with pytest.raises(SystemExit):  # training and copying at once is refused
        viewpoint_cli.main(
            ["--from", str(source), "--data", str(tmp_path), "--attach", str(target)]
        )
    with pytest.raises(SystemExit):  # a copy to nowhere
        viewpoint_cli.main(["--from", str(source)])
    assert "--from needs --attach" in capsys.readouterr().err

    assert viewpoint_cli.main(["--from", str(source), "--attach", str(target)]) == 0
    copied, original = load_checkpoint(target), load_checkpoint(source)
    assert copied.info["viewpoint"]["layout"] == original.info["viewpoint"]["layout"]
    assert copied.info["viewpoint"]["metrics"] == {"steps": 7, "copied_from": "source.safetensors"}
    for name, value in original.viewpoint_state.items():
        assert torch.equal(copied.viewpoint_state[name], value), name
    for name, value in weights.items():  # the target's own model is untouched
        assert torch.equal(copied.model_state[name], value), name
    assert Reconstructor(target, "cpu").viewpoint is not None


def test_an_estimator_layout_without_its_weights_is_refused(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = octahedron_model(tmp_path / "model.safetensors")
    config = ViewpointConfig(input_size=32, width=4)
    attach_viewpoint(path, config.to_dict(), ViewpointNet(config).state_dict(), {})
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = {k: v for k, v in load_file(str(path)).items() if not k.startswith("viewpoint/")}
    save_file(tensors, str(tmp_path / "stripped.safetensors"), metadata=metadata)
    with pytest.raises(CheckpointError, match="stripped.safetensors: a viewpoint estimator layout"):
        load_checkpoint(tmp_path / "stripped.safetensors")


def test_sampling_error_is_zero_for_the_true_camera_and_measures_a_shift():
    from recon_core.colour import ViewEstimate, _framed_camera
    from recon_core.geometry import Camera
    from training.reports.camera_report import camera_errors, nearest_named_view

    rng = np.random.default_rng(0)
    surface = rng.uniform(-0.4, 0.4, (3000, 3))
    extrinsic = look_at(2.2 * view_direction(math.radians(40.0), math.radians(15.0)))
    truth = _framed_camera(surface, extrinsic, 128)
    exact = camera_errors(
        ViewEstimate(truth, 40.0, 15.0, 1.0), extrinsic, truth.intrinsic, surface, surface
    )
    assert exact["sampling_error"] == pytest.approx(0.0, abs=1e-9)
    assert exact["azimuth_error"] == pytest.approx(0.0, abs=1e-6)
    shifted = truth.intrinsic.copy()
    shifted[0, 2] += 12.8  # a tenth of the picture to the right
    moved = Camera(extrinsic, shifted, "perspective", 128, 128)
    # a prediction that is the truth less half of it: each point still finds itself
    half = surface[surface[:, 2] > 0]
    figures = camera_errors(
        ViewEstimate(moved, 215.0, 5.0, 1.0), extrinsic, truth.intrinsic, half, surface
    )
    assert figures["sampling_error"] == pytest.approx(0.1, abs=1e-9)
    assert figures["azimuth_error"] == pytest.approx(175.0, abs=1e-6)
    assert figures["elevation_error"] == pytest.approx(10.0, abs=1e-6)
    assert nearest_named_view(100.0).azimuth == 90.0
    assert nearest_named_view(350.0).azimuth == 0.0


def test_camera_report_runs_on_a_dataset_and_refuses_a_missing_one(tiny_dataset, tmp_path, capsys):
    import json

    from training.reports import camera_report

    out = tmp_path / "camera.json"
    args = ["--model", "implicit", "--data", str(tiny_dataset), "--split", "train"]
    code = camera_report.main(
        [
            *args,
            "--limit",
            "2",
            "--renders",
            "1",
            "--named-view",
            "--true-angles",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["renders"], "no render was reconstructed"
    for entry in report["renders"]:
        assert entry["true angles, refined"]["azimuth_error"] == pytest.approx(0.0, abs=1e-6)
        # the hint is within 22.5 degrees of the truth and searched 20 either side
        assert entry["named view, refined"]["azimuth_error"] <= 42.5 + 1e-6
        for figures in entry.values():
            if isinstance(figures, dict):
                assert 0.0 <= figures["sampling_error"] < 2.0
    assert "estimated, refined - bounding box" in report["summary"]
    assert "| true angles | refined |" in capsys.readouterr().out
    missing = tmp_path / "nowhere"
    assert camera_report.main(["--data", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
