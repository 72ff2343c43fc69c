"""Bad input and crashing machines: every case answers with one line, keeps serving, and
leaves nothing half-written or silently wrong."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import octahedron_model
from PIL import Image

from recon_core import cli, worker
from recon_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from recon_core.files import WriteError, remove_stale_temporaries, write_all_or_none
from recon_core.methods import METHODS
from recon_core.picture import PictureError, read_picture
from training.presets import preset

REPO = Path(__file__).resolve().parents[1]


def _reconstruct(*args) -> int:
    return cli.main(["reconstruct", *map(str, args), "--no-progress"])


# -- the worker ------------------------------------------------------------------------------


def _answers(text: str) -> list[dict]:
    """The done and error lines of the worker's output (progress lines left out)."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [line for line in lines if "done" in line or "error" in line]


def _hostile_lines(rng: random.Random, picture: Path, tmp: Path) -> list[bytes]:
    """Random or hostile request lines, none of which is a job that can run."""
    depth = rng.randint(1000, 100_000)
    valid = {"image": str(picture), "output": "mask", "result": str(tmp / "m.png")}
    wrong_types = [
        {**valid, "result": ["list"]},
        {**valid, "image": 7},
        {"image": str(picture), "result": str(tmp / "r.npz"), "resolution": "high"},
        {"image": str(picture), "result": str(tmp / "r.npz"), "iso": float("nan")},
        {"image": str(picture), "result": str(tmp / "r.npz"), "points": -1},
        {"image": str(picture), "result": str(tmp / "r.npz"), "device": "tpu"},
        {"image": str(picture), "result": str(tmp / "r.npz"), "output": "hologram"},
        {"image": str(picture), "result": str(tmp / "r.npz"), "symmetric": "yes"},
        {"image": str(picture), "result": str(tmp / "r.npz"), "colour": "red"},
        {"image": str(picture)},
        {"result": str(tmp / "r.npz")},
        {"image": str(tmp / "missing.png"), "result": str(tmp / "r.npz")},
    ]
    kinds = [
        lambda: b"[" * depth,
        lambda: b'{"a":' * depth,
        lambda: bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))).replace(b"\n", b""),
        lambda: b"\xff\xfe invalid utf-8 \xc3\x28",
        lambda: b"x" * rng.randint(100_000, 2_000_000),
        lambda: json.dumps(rng.choice([1, "job", None, [], 3.5, True])).encode(),
        lambda: json.dumps(rng.choice(wrong_types)).encode(),
        lambda: json.dumps({"image": "\ud800", "result": "r"}).encode(),
    ]
    return [rng.choice(kinds)() for _ in range(200)]


def test_the_worker_answers_every_hostile_line_and_keeps_serving(
    tmp_path, picture, capsys, monkeypatch
):
    model = octahedron_model(tmp_path / "octa.safetensors")
    rng = random.Random(0)
    lines = []
    for k, hostile in enumerate(_hostile_lines(rng, picture, tmp_path)):
        lines.append(hostile + b"\n")
        if k % 20 == 0:  # now and then a whole reconstruction, else the quick mask job
            job = {
                "model": str(model),
                "image": str(picture),
                "output": "mesh",
                "resolution": 16,
                "result": str(tmp_path / f"result{k}.npz"),
            }
        else:
            job = {"image": str(picture), "output": "mask", "result": str(tmp_path / "m.png")}
        lines.append(json.dumps(job).encode() + b"\n")
    assert worker.serve(lines) == 0
    answers = _answers(capsys.readouterr().out)
    assert len(answers) == 400
    for k in range(200):
        assert "error" in answers[2 * k], (k, answers[2 * k])
        assert "\n" not in answers[2 * k]["error"] and answers[2 * k]["error"]
        assert "done" in answers[2 * k + 1], (k, answers[2 * k + 1])
    with np.load(tmp_path / "result180.npz") as result:
        assert len(result["faces"]) > 0


def test_the_worker_process_survives_invalid_utf8_and_deep_nesting_on_stdin(tmp_path, picture):
    job = json.dumps({"image": str(picture), "output": "mask", "result": str(tmp_path / "m.png")})
    stdin = b"\xff\xfe\x80 not text\n" + b"[" * 100_000 + b"\n" + job.encode() + b"\n"
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict", LC_ALL="C")
    done = subprocess.run(
        [sys.executable, "-m", "recon_core.worker", "--serve"],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()
    answers = _answers(done.stdout.decode())
    assert [next(iter(a)) for a in answers] == ["error", "error", "done"]
    assert "not UTF-8" in answers[0]["error"] and "nested too deeply" in answers[1]["error"]
    assert (tmp_path / "m.png").is_file()


def test_worker_jobs_are_checked_before_any_work(tmp_path, picture, monkeypatch):
    from recon_core import inference

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded for a job that cannot run")

    monkeypatch.setattr(inference, "Reconstructor", no_model)
    base = {"image": str(picture), "result": str(tmp_path / "r.npz")}
    cases = {
        "output 'nonsense': use mesh, points or both": {**base, "output": "nonsense"},
        "the job does not say where to write its result": {"image": str(picture)},
        "the job has no picture to read (image)": {"result": str(tmp_path / "r.npz")},
        "the job has unknown field(s) resolutoin": {**base, "resolutoin": 64},
        "device 'tpu': use auto, cpu, cuda, cuda:N or mps": {**base, "device": "tpu"},
        "points must be at least 1, got -3": {**base, "points": -3},
        "the job's mask must be text": {**base, "mask": 5},
    }
    for message, job in cases.items():
        with pytest.raises(ValueError, match=None) as caught:
            worker.check_job(job)
        assert str(caught.value).startswith(message), (message, str(caught.value))
        if message.startswith("the job does not say where"):
            continue  # the add-on's in-process jobs keep their result in memory
        with pytest.raises(ValueError, match=None) as caught:
            worker.run_job(job)
        assert str(caught.value).startswith(message), (message, str(caught.value))
    # 0 and absent mean no face budget and the default point count, as the add-on sends
    request = worker.check_job({**base, "faces": 0, "points": 0, "view": "auto"})
    assert request.faces is None and request.points is None and request.view is None


# -- recon3d reconstruct ---------------------------------------------------------------------


def test_pictures_with_the_same_name_get_distinct_results(tmp_path, picture, capsys):
    model = octahedron_model(tmp_path / "octa.safetensors")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "thing.png", tmp_path / "b" / "thing.png"
    first.write_bytes(picture.read_bytes())
    second.write_bytes(picture.read_bytes())
    jpeg = tmp_path / "a" / "Thing.jpg"
    Image.open(picture).convert("RGB").save(jpeg)
    out = tmp_path / "out"
    args = ["--model", model, "--resolution", 16, "--output", "mesh", "--no-preview"]
    assert (
        _reconstruct(
            first,
            second,
            jpeg,
            *args,
            "--output-dir",
            out,
            "--mask",
            picture,
            "--mask",
            picture,
            "--mask",
            picture,
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert sorted(p.name for p in out.iterdir()) == ["Thing-3.glb", "thing-2.glb", "thing.glb"]
    assert str(out / "thing.glb") in lines[0] and str(out / "thing-2.glb") in lines[1]
    assert str(out / "Thing-3.glb") in lines[2]


@pytest.mark.parametrize(
    "option, message",
    [
        (["--device", "tpu"], "device 'tpu': use auto, cpu, cuda, cuda:N or mps"),
        (["--points", "-1"], "points must be at least 1, got -1"),
        (["--points", "0"], "points must be at least 1, got 0"),
        (["--resolution", "8"], "resolution must be between 16 and 512, got 8"),
        (["--iso", "1.5"], "iso must be strictly between 0 and 1, got 1.5"),
        (["--faces", "2"], "faces must be at least 4, got 2"),
        (["--consistency", "-2"], "consistency must be 0 or more, got -2"),
        (["--fit-silhouette"], "fitting the silhouette needs a view"),
    ],
)
def test_bad_options_are_one_line_before_any_work(
    tmp_path, picture, capsys, monkeypatch, option, message
):
    from recon_core import inference

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(inference, "Reconstructor", no_model)
    assert _reconstruct(picture, "--output-dir", tmp_path / "out", *option) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {message}" or err.startswith(f"error: {message}")
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_results_are_written_as_a_set_and_a_full_disk_names_the_file(tmp_path):
    keep = tmp_path / "mesh.glb"
    keep.write_bytes(b"old mesh")

    def full_disk(handle):
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(WriteError, match=r"preview.png: cannot write it \(No space left"):
        write_all_or_none({keep: b"new mesh", tmp_path / "preview.png": full_disk})
    assert keep.read_bytes() == b"old mesh"  # nothing of the set was kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh.glb"]  # no temporaries


def test_stale_temporaries_are_removed_and_fresh_ones_kept(tmp_path, picture):
    old = tmp_path / "out" / ".box.glb.abc123.tmp"
    fresh = tmp_path / "out" / ".box.ply.def456.tmp"
    old.parent.mkdir()
    old.write_bytes(b"x" * 1000)
    fresh.write_bytes(b"y")
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    model = octahedron_model(tmp_path / "octa.safetensors")
    args = ["--model", model, "--resolution", 16, "--output", "mesh", "--no-preview"]
    assert _reconstruct(picture, *args, "--output-dir", old.parent) == 0
    assert not old.exists() and fresh.exists()
    assert remove_stale_temporaries(old.parent, older_than_s=0) == 1


# -- models --------------------------------------------------------------------------------


def test_an_unreadable_user_models_folder_is_skipped_with_a_warning(
    tmp_path, monkeypatch, capsys, caplog
):
    from recon_core import registry

    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setenv("RECON3D_MODELS", str(locked))
    real_iterdir = Path.iterdir

    def iterdir(self):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    monkeypatch.setattr(registry, "_WARNED", set())
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "implicit" in out and "pointcloud" in out  # the bundled ones still listed
    warnings = [r.getMessage() for r in caplog.records if "models folder" in r.getMessage()]
    assert warnings == [
        f"warning: {locked}: cannot read this models folder (Permission denied); "
        "its models are skipped"
    ]
    assert registry.resolve_model("implicit").name == "implicit.safetensors"


def test_bundled_models_come_from_beside_the_library_or_from_the_folder_named(
    tmp_path, monkeypatch
):
    import shutil

    from recon_core import registry

    monkeypatch.delenv("RECON3D_BUNDLED_MODELS", raising=False)
    beside = Path(registry.__file__).resolve().parent.parent / "models"
    assert registry.bundled_dir() == beside
    assert (
        registry.resolve_model("implicit").resolve() == (beside / "implicit.safetensors").resolve()
    )
    elsewhere = tmp_path / "shipped"
    elsewhere.mkdir()
    shutil.copy(beside / "pointcloud.safetensors", elsewhere / "pointcloud.safetensors")
    monkeypatch.setenv("RECON3D_BUNDLED_MODELS", str(elsewhere))
    monkeypatch.setenv("RECON3D_MODELS", str(tmp_path / "none"))
    assert [(e.name, e.origin) for e in registry.list_models()] == [("pointcloud", "bundled")]
    with pytest.raises(registry.CheckpointError, match="known: pointcloud"):
        registry.resolve_model("implicit")


def test_models_that_fail_their_checksum_are_listed_as_broken(tmp_path, monkeypatch, capsys):
    from safetensors.torch import load_file, save

    monkeypatch.setenv("RECON3D_MODELS", str(tmp_path))
    path = octahedron_model(tmp_path / "edited.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["recon3d"])
    meta["config"]["model"]["latent_dim"] = 99  # edited by hand: the checksum no longer fits
    path.write_bytes(save(load_file(str(path)), metadata={"recon3d": json.dumps(meta)}))
    assert cli.main(["models"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("edited"))
    assert "broken:" in line and "does not match its checksum" in line


def _model_file(path: Path, meta_edit=None, weights_edit=None) -> Path:
    from safetensors.torch import save

    config = preset("implicit-smoke")
    state = METHODS["implicit"](config).build_model().state_dict()
    save_checkpoint(path, config, state, {"categories": ["test"], "step": 0, "metrics": {}})
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["recon3d"])
    tensors = load_file(str(path))
    if meta_edit:
        meta_edit(meta)
    if weights_edit:
        weights_edit(tensors)
    path.write_bytes(save(tensors, metadata={"recon3d": json.dumps(meta)}))
    return path


def test_model_files_that_load_but_cannot_work_are_refused_naming_the_file(tmp_path):
    no_config = _model_file(tmp_path / "noconfig.safetensors", meta_edit=lambda m: m.pop("config"))
    with pytest.raises(CheckpointError, match=r"noconfig.safetensors: holds no config"):
        load_checkpoint(no_config)

    def poison(tensors):
        tensors["model/decoder.fc1.0.weight"][0, 0] = float("nan")

    nan = _model_file(tmp_path / "nan.safetensors", weights_edit=poison)
    with pytest.raises(
        CheckpointError, match=r"nan.safetensors: tensor model/decoder.fc1.0.weight holds NaN"
    ):
        load_checkpoint(nan)

    def infinite(tensors):
        tensors["model/decoder.out.bias"][0] = float("inf")

    inf = _model_file(tmp_path / "inf.safetensors", weights_edit=infinite)
    with pytest.raises(CheckpointError, match=r"model/decoder.out.bias holds NaN or infinite"):
        load_checkpoint(inf)


# -- masks -------------------------------------------------------------------------------


def test_a_mask_of_another_shape_is_refused_and_one_of_another_size_rescaled(
    tmp_path, picture, caplog
):
    wrong = tmp_path / "wrong.png"
    Image.new("L", (91, 37), 255).save(wrong)
    with pytest.raises(PictureError, match=r"wrong.png: the mask is 91x37 and the picture 160x120"):
        read_picture(picture, wrong)
    half = tmp_path / "half.png"
    mask = np.zeros((60, 80), np.uint8)
    mask[15:45, 25:55] = 255
    Image.fromarray(mask).save(half)
    read = read_picture(picture, half)
    assert read.mask.shape == (120, 160) and read.mask[30:90, 50:110].all()
    assert not read.mask[:28].any()
    assert any(
        "half.png: the mask is 80x60; rescaled to the picture's 160x120" in r.getMessage()
        for r in caplog.records
    )


# -- training runs -------------------------------------------------------------------------


def test_a_resumable_checkpoint_past_its_schedule_is_refused(tiny_dataset, tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.torch import load_file, save

    from training import train

    out = tmp_path / "run"
    args = ["--method", "implicit", "--preset", "implicit-smoke", "--data", str(tiny_dataset)]
    steps = ["--set", "stages.0.steps=4", "--set", "checkpoint_every=2", "--no-progress"]
    assert train.main([*args, "--out", str(out), *steps]) == 0
    last = out / "last.safetensors"
    with safe_open(str(last), framework="pt") as handle:
        meta = json.loads(handle.metadata()["recon3d"])
    meta["step"] = 10**6
    last.write_bytes(save(load_file(str(last)), metadata={"recon3d": json.dumps(meta)}))
    (out / "model.safetensors").unlink()
    before = (out / "scalars.csv").read_bytes()
    assert train.main(["--data", str(tiny_dataset), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "the run is at step 1000000, and the schedule has 4 steps" in err
    assert not (out / "model.safetensors").exists()
    assert (out / "scalars.csv").read_bytes() == before
