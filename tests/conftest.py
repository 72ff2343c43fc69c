"""Shared fixtures. Blender never touches the real user profile during tests."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_BLENDER_HOME = tempfile.mkdtemp(prefix="recon3d-test-blender-")
for _var in (
    "BLENDER_USER_RESOURCES",
    "BLENDER_USER_CONFIG",
    "BLENDER_USER_SCRIPTS",
    "BLENDER_USER_EXTENSIONS",
):
    os.environ[_var] = os.path.join(_BLENDER_HOME, _var.lower())

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_args() -> list[str]:
    """training.data.prepare options that make a record in about a second."""
    return [
        "--views",
        "2",
        "--novel-views",
        "3",
        "--occupancy-resolution",
        "64",
        "--occupancy-points",
        "4000",
        "--surface-points",
        "2000",
        "--no-progress",
    ]


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, tiny_args) -> Path:
    """Nine procedural shapes (three categories) with small records: for training tests."""
    from training.data import prepare

    out = tmp_path_factory.mktemp("data") / "tiny"
    code = prepare.main(
        [
            "--source",
            "procedural",
            "--categories",
            "chair",
            "table",
            "lamp",
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
    return out


@pytest.fixture()
def picture(tmp_path) -> Path:
    """A green box on a transparent background, 160 x 120 pixels."""
    import numpy as np
    from PIL import Image

    rgba = np.zeros((120, 160, 4), np.uint8)
    rgba[30:90, 50:110] = (40, 160, 90, 255)
    path = tmp_path / "green box.png"
    Image.fromarray(rgba).save(path)
    return path
