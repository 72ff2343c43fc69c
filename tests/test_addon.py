"""The Blender extension: built, validated, installed into real Blender, driven."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import octahedron_model
from PIL import Image

import build_addon

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


def test_install_into_blender_and_reconstruct(tmp_path):
    zip_path = build_addon.build(tmp_path / "dist")
    models = tmp_path / "models"
    models.mkdir()
    octahedron_model(models / "octahedron.safetensors")
    picture = np.zeros((200, 300, 4), np.uint8)
    yy, xx = np.mgrid[:200, :300]
    disc = (yy - 100) ** 2 + (xx - 150) ** 2 < 70**2
    picture[disc] = (200, 60, 40, 255)
    image = tmp_path / "red_ball.png"
    Image.fromarray(picture).save(image)
    result_path, render = tmp_path / "result.json", tmp_path / "render.png"
    home = tmp_path / "blender_home"
    env = dict(os.environ)
    for var in (
        "BLENDER_USER_RESOURCES",
        "BLENDER_USER_CONFIG",
        "BLENDER_USER_SCRIPTS",
        "BLENDER_USER_EXTENSIONS",
    ):
        env[var] = str(home / var.lower())
    completed = subprocess.run(
        [
            sys.executable,
            str(HERE / "blender" / "drive_addon.py"),
            str(zip_path),
            str(models),
            str(image),
            str(result_path),
            str(render),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(result_path.read_text())
    assert result["enabled"] and result["panel_registered"]
    assert result["model"].endswith("octahedron.safetensors")
    assert result["status"] == ["FINISHED"]
    assert result["name"] == "red_ball" and result["selected"]
    assert result["location"] == pytest.approx([1.0, 2.0, 3.0])
    assert result["faces"] > 500 and result["watertight"]
    assert "no such image file" in result["missing_image"]
    assert result["scene_unchanged_after_error"]
    assert result["panel_after_disable"] is False and result["panel_after_enable"] is True
    assert render.exists() and render.stat().st_size > 1000
    # nothing was written into the real user profile
    assert home.exists()
