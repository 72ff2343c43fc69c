"""training.data.prepare end to end: sources, bad meshes, workers, resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from recon_core.data import PreparedDataset, read_index, read_record, record_path
from training.data import prepare
from training.data.procedural import make_shape

REPO = Path(__file__).resolve().parents[1]


def _export(shape, path):
    mesh = trimesh.Trimesh(shape.vertices, shape.faces, process=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)


def _log(out):
    return [json.loads(line) for line in (out / "build_log.jsonl").read_text().splitlines()]


def test_procedural_build_in_process(tmp_path, tiny_args):
    out = tmp_path / "ds"
    code = prepare.main(
        [
            "--source",
            "procedural",
            "--categories",
            "chair",
            "mug",
            "--count",
            "2",
            "--workers",
            "0",
            "--out",
            str(out),
            *tiny_args,
        ]
    )
    assert code == 0
    index = read_index(out)
    assert index["summary"]["records"] == 4
    assert index["summary"]["categories"] == {"chair": 2, "mug": 2}
    assert index["fixed_views"]["count"] == 8 and len(index["fixed_views"]["extrinsics"]) == 8
    for entry in index["records"]:
        arrays, meta = read_record(out / entry["file"])
        assert arrays["renders"].shape == (2, 128, 128, 4)
        assert arrays["novel_depth"].shape == (3, 128, 128)
        assert (arrays["fixed_depth"] > 0).any()
        alpha = arrays["renders"][..., 3]
        assert alpha.max() == 255 and alpha[:, 0, :].max() == 0  # object framed, not cut
        assert meta["source"] == "procedural" and meta["licence"] == "CC0-1.0"
        assert 0 < meta["inside_fraction"] < 0.5
    dataset = PreparedDataset(out, None, "all")
    item = dataset[0]
    assert item["image"].shape == (4, 128, 128) and item["points"].shape[1] == 3


def test_folder_source_with_bad_meshes_skips_them_and_goes_on(tmp_path, tiny_args, capsys):
    meshes = tmp_path / "meshes"
    _export(make_shape("chair", 1), meshes / "chair" / "good.obj")
    _export(make_shape("lamp", 2), meshes / "lamp" / "good.stl")
    _export(make_shape("table", 3), meshes / "table" / "good.glb")
    (meshes / "chair" / "broken.obj").write_text("v 1 2\nf 1 2 9 what\nthis is no mesh\n")
    (meshes / "chair" / "empty.stl").write_bytes(b"")
    flat = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [2, 0, 0]], [[0, 1, 2]], process=False)
    flat.export(meshes / "lamp" / "zero_area.ply")
    big = trimesh.creation.icosphere(5)  # 20480 triangles
    big.export(meshes / "lamp" / "enormous.off")
    (meshes / "chair" / "notes.txt").write_text("not a mesh")
    out = tmp_path / "ds"
    code = prepare.main(
        [
            "--source",
            "folder",
            "--path",
            str(meshes),
            "--workers",
            "0",
            "--max-faces",
            "5000",
            "--out",
            str(out),
            *tiny_args,
        ]
    )
    assert code == 0
    index = read_index(out)
    assert sorted(r["id"] for r in index["records"]) == [
        "folder/chair/good",
        "folder/lamp/good",
        "folder/table/good",
    ]
    reasons = {r["id"]: r.get("reason", "") for r in _log(out) if r["status"] == "skipped"}
    assert set(reasons) == {
        "folder/chair/broken",
        "folder/chair/empty",
        "folder/lamp/zero_area",
        "folder/lamp/enormous",
    }
    assert "empty file" in reasons["folder/chair/empty"]
    assert "zero-area" in reasons["folder/lamp/zero_area"]
    assert "limit of 5000" in reasons["folder/lamp/enormous"]
    for reason in reasons.values():
        assert "\n" not in reason and reason.startswith(str(meshes))
    printed = capsys.readouterr()
    assert "skipped" in printed.err and "4 skipped" in printed.out
    # the folder's files are in the object frame already (+Z up): geometry round-trips
    arrays, meta = read_record(out / index["records"][0]["file"])
    assert meta["source_file"].endswith("good.obj")


def test_folder_up_and_front_options_rotate_into_the_object_frame(tmp_path, tiny_args):
    shape = make_shape("chair", 4)  # back at +Y, up +Z
    # inverse of (x, y, z) -> (x, -z, y): our frame written Y-up with the front towards +Z
    y_up = shape.vertices @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    meshes = tmp_path / "meshes"
    _export(type(shape)(**{**shape.__dict__, "vertices": y_up}), meshes / "chair" / "a.obj")
    out = tmp_path / "ds"
    assert (
        prepare.main(
            [
                "--source",
                "folder",
                "--path",
                str(meshes),
                "--up",
                "+y",
                "--front",
                "+z",
                "--workers",
                "0",
                "--out",
                str(out),
                *tiny_args,
            ]
        )
        == 0
    )
    arrays, meta = read_record(out / read_index(out)["records"][0]["file"])
    transform = np.asarray(meta["normalization"])
    back = y_up @ transform[:3, :3].T + transform[:3, 3]
    np.testing.assert_allclose(back, shape.vertices, atol=1e-9)


def test_build_with_worker_processes(tmp_path, tiny_args):
    out = tmp_path / "ds"
    code = prepare.main(
        [
            "--source",
            "procedural",
            "--categories",
            "vase",
            "--count",
            "3",
            "--workers",
            "2",
            "--out",
            str(out),
            *tiny_args,
        ]
    )
    assert code == 0
    assert read_index(out)["summary"]["records"] == 3


def test_resume_after_a_kill_keeps_finished_records_and_completes(tmp_path, tiny_args):
    out = tmp_path / "ds"
    args = [
        sys.executable,
        "-m",
        "training.data.prepare",
        "--source",
        "procedural",
        "--categories",
        "bed",
        "sofa",
        "--count",
        "3",
        "--workers",
        "1",
        "--out",
        str(out),
        *tiny_args,
    ]
    process = subprocess.Popen(
        args, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    log = out / "build_log.jsonl"
    while time.time() < deadline and not (log.exists() and log.read_text().strip()):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    on_disk = list((out / "records").glob("*.npz"))
    assert 1 <= len(on_disk) < 6
    for path in on_disk:  # every record on disk is whole
        read_record(path)
    # A record counts as finished once the build log lists it: a kill between a worker's
    # rename and the log line leaves a whole record that the resumed build does again.
    logged = [i for i, r in prepare._read_log(log).items() if r["status"] == "ok"]
    assert logged
    first = {record_path(out, i): record_path(out, i).stat().st_mtime_ns for i in logged}
    code = prepare.main(args[3:])
    assert code == 0
    index = read_index(out)
    assert index["summary"]["records"] == 6
    for path, mtime in first.items():
        assert path.stat().st_mtime_ns == mtime  # not redone
    assert not list((out / "records").glob(".*.tmp"))


def _mugs(out, count, tiny_args):
    """Arguments that build ``count`` procedural mugs into ``out`` in this process; the
    count is item 5."""
    return [
        "--source",
        "procedural",
        "--categories",
        "mug",
        "--count",
        str(count),
        "--workers",
        "0",
        "--out",
        str(out),
        *tiny_args,
    ]


def test_resume_with_other_settings_is_refused(tmp_path, tiny_args):
    out = tmp_path / "ds"
    base = _mugs(out, 1, tiny_args)
    assert prepare.main(base) == 0
    with pytest.raises(SystemExit, match="other settings"):
        prepare.main(base + ["--novel-views", "5"])
    # adding shapes to the same dataset is fine and keeps the old ones' splits
    before = {r["id"]: r["split"] for r in read_index(out)["records"]}
    assert prepare.main(base[:5] + ["3"] + base[6:]) == 0
    after = {r["id"]: r["split"] for r in read_index(out)["records"]}
    assert len(after) == 3 and all(after[k] == v for k, v in before.items())


def test_more_views_are_appended_to_finished_records(tmp_path, tiny_args, capsys):
    out = tmp_path / "ds"
    base = _mugs(out, 2, tiny_args)
    assert prepare.main(base) == 0  # tiny_args: 2 views
    before = {e["id"]: read_record(out / e["file"])[0] for e in read_index(out)["records"]}
    grown = base[:5] + ["3"] + base[6:] + ["--views", "4"]  # one more shape, two more views
    assert prepare.main(grown) == 0
    index = read_index(out)
    assert index["summary"]["records"] == 3 and index["settings"]["render"]["views"] == 4
    settings = json.loads((out / "prepare_settings.json").read_text())
    assert settings["render"]["views"] == 4
    for entry in index["records"]:
        arrays, _ = read_record(out / entry["file"])
        assert arrays["renders"].shape[0] == 4
        assert arrays["render_extrinsics"].shape == (4, 4, 4)
        assert arrays["render_intrinsics"].shape[0] == 4
        old = before.get(entry["id"])
        if old is None:
            continue
        for key, value in old.items():  # what was there stays, the first renders too
            kept = arrays[key][: len(value)] if key.startswith("render") else arrays[key]
            np.testing.assert_array_equal(kept, value, err_msg=key)
        # the new cameras are new: no added view repeats an old one
        poses = arrays["render_extrinsics"].reshape(4, -1)
        assert np.min(np.abs(poses[2:, None] - poses[None, :2]).max(axis=-1)) > 1e-3
        assert (arrays["renders"][2:, ..., 3] > 0).any(axis=(1, 2)).all()
    added = [r for r in _log(out) if "views_added" in r]
    assert sorted(r["views_added"] for r in added) == [2, 2]
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "records").glob("*.npz")}
    assert prepare.main(grown) == 0  # nothing left to add
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    with pytest.raises(SystemExit, match="may only grow"):
        prepare.main(base[:5] + ["3"] + base[6:] + ["--views", "3"])
    # a record that cannot be read keeps its place; the others grow; the count stays 4
    broken = out / index["records"][0]["file"]
    broken.write_bytes(broken.read_bytes()[:1000])
    capsys.readouterr()
    assert prepare.main(base[:5] + ["3"] + base[6:] + ["--views", "5"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {broken}: unreadable record" in err and "could not add more" in err
    index = read_index(out)
    assert index["summary"]["records"] == 3 and broken.read_bytes()[:1000] == broken.read_bytes()
    for entry in index["records"][1:]:
        assert read_record(out / entry["file"])[0]["renders"].shape[0] == 5
    assert json.loads((out / "prepare_settings.json").read_text())["render"]["views"] == 4


def test_unknown_category_and_missing_folder_are_clear_errors(tmp_path, capsys):
    with pytest.raises(SystemExit, match="unknown procedural categories"):
        prepare.main(["--source", "procedural", "--categories", "dragon", "--out", str(tmp_path)])
    assert (
        prepare.main(
            [
                "--source",
                "folder",
                "--path",
                str(tmp_path / "missing"),
                "--out",
                str(tmp_path / "ds"),
            ]
        )
        == 2
    )
    assert "not a folder" in capsys.readouterr().err


def test_shapenet_layout_names_categories_from_synsets_and_turns_y_up(tmp_path):
    from training.data.sources.folder import folder_specs

    shape = make_shape("chair", 9)
    # ShapeNetCore v2 is Y-up with the front towards -Z: store our chair that way
    from recon_core.geometry import axis_conversion

    to_ours = axis_conversion("+y", "-z")
    stored = shape.vertices @ to_ours  # applies the inverse rotation to row vectors
    path = tmp_path / "03001627" / "abc123" / "models" / "model_normalized.obj"
    _export(type(shape)(**{**shape.__dict__, "vertices": stored}), path)
    specs = folder_specs(tmp_path, layout="shapenet")
    assert [(s.id, s.category) for s in specs] == [("shapenet/03001627/abc123", "chair")]
    from training.data.pipeline import load_shape

    loaded = load_shape(specs[0])
    np.testing.assert_allclose(loaded.vertices, shape.vertices, atol=1e-6)
