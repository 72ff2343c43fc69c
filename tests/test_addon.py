"""The Blender extension: built, validated, installed into real Blender, driven."""

import json
import math
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import octahedron_model, sphere_cloud_model
from PIL import Image

import build_addon
from recon_core.colour import VIEW_NAMES

HERE = Path(__file__).resolve().parent


def test_build_produces_a_validated_extension(tmp_path):
    zip_path = build_addon.build(tmp_path)
    assert zip_path.name == "image_to_3d-0.1.0.zip"
    names = zipfile.ZipFile(zip_path).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "recon_core/inference.py" in names and not any("__pycache__" in n for n in names)
    assert not list(tmp_path.glob(".*.partial"))


def test_build_fails_on_an_invalid_manifest(tmp_path, monkeypatch):
    addon = tmp_path / "blender_addon"
    addon.mkdir()
    (addon / "__init__.py").write_text("")
    (addon / "models").mkdir()
    (addon / "blender_manifest.toml").write_text(
        'schema_version = "1.0.0"\nid = "image_to_3d"\nversion = "0.1.0"\nname = "x"\n'
        'tagline = "x"\nmaintainer = "x"\ntype = "add-on"\nlicense = ["SPDX:GPL-3.0-or-later"]\n'
        'blender_version_min = "not a version"\n'
    )
    monkeypatch.setattr(build_addon, "ADDON", addon)
    with pytest.raises(SystemExit, match="validator"):
        build_addon.build(tmp_path / "dist")
    assert not list((tmp_path / "dist").glob("*.zip"))


ROOT = HERE.parent
BLENDERS = {
    # version: (Python with that bpy, external Python for the worker or "" for in-process)
    "5.0.1": (sys.executable, ""),
    "4.2.23": (str(ROOT / ".venv-bpy42" / "bin" / "python"), sys.executable),
}


DEPENDENCIES = {  # distribution: module, as "Install dependencies" asks pip for them
    "torch": "torch",
    "numpy": "numpy",
    "scikit_image": "skimage",
    "scipy": "scipy",
    "pillow": "PIL",
    "safetensors": "safetensors",
    "tqdm": "tqdm",
    "threadpoolctl": "threadpoolctl",
    "fast_simplification": "fast_simplification",
}


def _stand_in_wheels(folder: Path) -> Path:
    """Tiny wheels named like the add-on's dependencies, so that its "Install dependencies"
    button runs real pip against a local folder (PIP_NO_INDEX, PIP_FIND_LINKS)."""
    import zipfile

    folder.mkdir()
    for dist, module in DEPENDENCIES.items():
        version = "0.0.1"
        info = f"{dist}-{version}.dist-info"
        files = {
            f"{module}/__init__.py": f"STAND_IN = {dist!r}\n",
            f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n",
            f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n",
        }
        files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
        with zipfile.ZipFile(folder / f"{dist}-{version}-py3-none-any.whl", "w") as wheel:
            for name, text in files.items():
                wheel.writestr(name, text)
    return folder


@pytest.mark.parametrize("version", sorted(BLENDERS))
def test_install_into_blender_and_drive_it(tmp_path, version):
    python, external = BLENDERS[version]
    if not Path(python).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{python} missing: `make test` installs bpy {version} there")
        pytest.skip(f"no bpy {version} ({python}); `make venv-bpy42` installs it")
    zip_path = build_addon.build(tmp_path / "dist")
    models = tmp_path / "models"
    models.mkdir()
    octahedron_model(models / "good_octahedron.safetensors", shift=1.1 / 16)  # on grid lines
    octahedron_model(models / "faint_octahedron.safetensors", peak=math.log(0.4 / 0.6))
    octahedron_model(models / "blank_octahedron.safetensors", peak=math.log(0.08 / 0.92))
    sphere_cloud_model(models / "pc_flange.safetensors", flange=0.45)
    (models / "corrupt.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{bad}")
    picture = np.zeros((200, 300, 4), np.uint8)
    yy, xx = np.mgrid[:200, :300]
    disc = (yy - 100) ** 2 + (xx - 150) ** 2 < 70**2
    picture[disc] = (200, 60, 40, 255)
    picture[disc & (xx > 150)] = (40, 60, 200, 255)
    image = tmp_path / "red_ball.png"
    Image.fromarray(picture).save(image)
    folder = tmp_path / "folder"
    folder.mkdir()
    Image.fromarray(picture).save(folder / "a.png")
    Image.fromarray(picture[:, ::-1].copy()).save(folder / "b.png")
    renders = ROOT / "out" / "test-artifacts" / f"addon-{version}"
    renders.mkdir(parents=True, exist_ok=True)
    settings = {
        "zip": str(zip_path),
        "models": str(models),
        "image": str(image),
        "folder": str(folder),
        "result": str(tmp_path / "result.json"),
        "render_dir": str(renders),
        "external_python": external,
        "wheels": str(_stand_in_wheels(tmp_path / "wheels")),
        "no_torch_python": "/usr/bin/python3"
        if Path("/usr/bin/python3").exists()
        else str(tmp_path / "no-python"),
    }
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    home = tmp_path / "blender_home"
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    for var in (
        "BLENDER_USER_RESOURCES",
        "BLENDER_USER_CONFIG",
        "BLENDER_USER_SCRIPTS",
        "BLENDER_USER_EXTENSIONS",
    ):
        env[var] = str(home / var.lower())
    completed = subprocess.run(
        [python, str(HERE / "blender" / "drive_addon.py"), str(tmp_path / "settings.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["version"].startswith(version.rsplit(".", 1)[0])
    assert result["enabled"] and result["panel_registered"]
    assert ("External Python" in result["backend"]) == bool(external)
    assert result["status"] == ["FINISHED"]
    assert result["name"] == "red_ball" and result["selected"]
    assert result["location"] == pytest.approx([1.0, 2.0, 3.0])
    assert result["faces"] > 500 and result["watertight"]
    assert result["colour_attribute"] == ["Col"] and result["materials"]
    # where the colours were seen from, kept on the object for the user to check
    assert re.fullmatch(r"[a-z-]+ \(azimuth \d+, elevation -?\d+\)", result["view"])
    assert result["reextract"] == ["FINISHED"] and result["reextract_closed"]
    assert result["reextract_faces"][1] < result["reextract_faces"][0]
    assert result["mirror_gap_True"][0] < 1e-5 and result["mirror_gap_True"][1], result
    assert result["mirror_gap_False"][0] > 1e-3, result
    assert result["view_items"] == ["auto", *VIEW_NAMES]
    # the colours from the side Taken From names, and the object says which
    shares = {"front": 1.0, "back": 0.0, "front said": "front", "back said": "back"}
    assert result["red_share"] == shares, result["red_share"]
    assert result["fit_status"] == ["FINISHED"] and result["fit"][0], result["fit"]
    assert result["fit"][1] > 500 and result["fit"][2], result["fit"]
    assert result["methods"] == ["implicit", "pointcloud", None]
    # the panel's greying and the job's fit_silhouette follow one rule: a view set, and not
    # a point-cloud model (implicit + front, point cloud + front, point cloud + auto)
    assert result["can_fit"] == [True, False, False]
    assert 100 <= result["budget_faces"][0] <= 150 and result["budget_faces"][1]
    undo = result["undo"]
    assert "UNDO" in undo.get("bl_options", []), undo
    assert (undo["added"], undo["after_undo"], undo["after_redo"]) == (1, 0, 1), undo
    assert undo["redone_faces"] > 500, undo
    faces_redone, faces_reextracted = undo["reextract_after_redo"]
    assert faces_reextracted < faces_redone, undo
    assert result["points_status"] == ["FINISHED"]
    points = result["points"]
    assert points["vertices"] == 3000 and points["faces"] == 0
    assert points["modifier"] == "NODES" and points["mesh_to_points"]
    assert {"Col", "radius"} <= set(points["attributes"])
    assert points["reextract"] == ["FINISHED"] and points["reextracted_vertices"] == 1500
    if tuple(map(int, version.split("."))) >= (4, 5):  # the optional native Point Cloud
        native = result["native"]
        assert result["native_status"] == ["FINISHED"]
        assert native["type"] == "POINTCLOUD" and native["points"] == 3000
        assert {"Col", "position", "radius"} <= set(native["attributes"]) and native["materials"]
        assert native["reextract"] == ["FINISHED"]
        assert native["reextracted"] == ["POINTCLOUD", 1500]
    else:
        assert "native" not in result
    agree = result["views_agree"]  # a sphere of radius 0.3; view 0 alone adds a flange
    assert agree["status"] == ["FINISHED"] and agree["reextract"] == ["FINISHED"], agree
    assert agree["on"][1] < 0.32 and agree["off"][1] > 0.44, agree
    assert agree["off"][0] > agree["on"][0], agree
    assert result["batch_status"] == ["FINISHED"] and result["batch_added"] == 2
    assert result["server_reused"]
    install = result["install"]
    assert "Online access is off" in install["offline"] and not install["offline_installed"]
    assert install["status"] == ["FINISHED"], install
    assert set(DEPENDENCIES.values()) <= set(install["installed"])
    assert install["on_path"]
    assert result["cancel"] == {
        "killed": True,
        "result_written": False,
        "scene_unchanged": True,
        "next_job_runs": True,
    }
    modal = result["modal"]
    assert modal["started"], modal
    full = modal["full"]
    assert full["status"] == ["FINISHED"] and full["added"] == 1, full
    assert full["progress_rises"] and full["final_status"] == "Done", full
    for stop_with in ("ESC", "CANCEL_BUTTON"):
        stopped = modal[stop_with]
        assert stopped["status"] == ["CANCELLED"] and stopped["killed"], stopped
        assert stopped["scene_unchanged"] and stopped["settings_status"] == "Cancelled", stopped
        assert stopped["report"] == ["WARNING", "Reconstruction cancelled"], stopped
    for name, words in [
        ("missing_image", "no such image file"),
        ("corrupt_model", "corrupt.safetensors"),
        ("blank_model", "stays below the iso level 0.5 everywhere (highest 0.0"),
        ("no_torch", "No module named"),
    ]:
        assert words in result[name], (name, result[name])
        assert result[name + "_scene_unchanged"], name
    faint = result["faint_model"]
    assert faint["status"] == ["FINISHED"] and faint["added"] == 1 and faint["closed"], faint
    kind, text = faint["report"]
    assert kind == "WARNING" and " faces (nothing reached the iso level 0.5; " in text, faint
    assert "the mesh is at 0.2 instead); colours seen from " in text, faint
    faint_batch = result["faint_batch"]
    assert faint_batch["status"] == ["FINISHED"] and len(faint_batch["report"]) == 1, faint_batch
    kind, text = faint_batch["report"][0]
    assert kind == "WARNING" and text.startswith("2 objects from 2 pictures; "), faint_batch
    assert text.endswith(
        "nothing reached the iso level 0.5; the mesh is at 0.2 instead (and 1 more)"
    )
    masks = result["mask"]
    assert masks["items"] == ["auto", "alpha", "segment", "plain"]
    for choice in ("auto", "alpha", "segment", "plain"):
        status, report, warning, shown = masks[choice]
        assert status == ["FINISHED"] and shown and warning == "", (choice, masks[choice])
        source = "alpha" if choice == "auto" else choice
        assert report[0] == "INFO" and report[1].startswith(f"mask ({source}): "), report
    status, report, warning = masks["speck"]
    assert status == ["FINISHED"] and report[0] == "WARNING"
    assert warning == "the mask covers only 0.0% of the picture", warning
    assert result["panel_after_disable"] is False and result["operator_after_disable"] is False
    assert result["panel_after_enable"] is True
    assert (renders / "mesh.png").stat().st_size > 1000
    assert (renders / "points.png").stat().st_size > 1000
    assert home.exists()  # nothing was written into the real user profile
    print(json.dumps({k: result[k] for k in ("seconds", "undo", "faces")}))
