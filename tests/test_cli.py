"""recon3d reconstruct: outputs, and one-line errors for bad inputs."""

import numpy as np
import pytest
import trimesh
from helpers import octahedron_model
from PIL import Image

from recon_core import cli


@pytest.fixture()
def picture(tmp_path):
    rgba = np.zeros((120, 160, 4), np.uint8)
    rgba[30:90, 50:110] = (40, 160, 90, 255)
    path = tmp_path / "green box.png"
    Image.fromarray(rgba).save(path)
    return path


def test_reconstruct_writes_a_closed_mesh_in_the_unit_box(tmp_path, picture):
    model = octahedron_model(tmp_path / "octa.safetensors")
    out = tmp_path / "out"
    assert (
        cli.main(
            [
                "reconstruct",
                str(picture),
                "--model",
                str(model),
                "--resolution",
                "64",
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    mesh = trimesh.load(out / "green box.obj", process=False)
    assert mesh.is_watertight and len(mesh.faces) > 500
    assert np.abs(mesh.vertices).max() <= 0.55
    ply = out / "again.ply"
    assert (
        cli.main(
            [
                "reconstruct",
                str(picture),
                "--model",
                str(model),
                "--format",
                "ply",
                "--resolution",
                "48",
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    assert trimesh.load(out / "green box.ply").is_watertight and not ply.exists()
    first = (out / "green box.obj").read_bytes()
    assert (
        cli.main(
            [
                "reconstruct",
                str(picture),
                "--model",
                str(model),
                "--resolution",
                "64",
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    assert (out / "green box.obj").read_bytes() == first  # same picture, same mesh


def test_bad_inputs_get_one_line_errors_and_the_rest_goes_on(tmp_path, picture, capsys):
    model = octahedron_model(tmp_path / "octa.safetensors")
    no_alpha = tmp_path / "photo.jpg"
    Image.new("RGB", (50, 50), "white").save(no_alpha)
    empty = tmp_path / "empty.png"
    Image.new("RGBA", (50, 50), (0, 0, 0, 0)).save(empty)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(picture.read_bytes()[:100])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    out = tmp_path / "out"
    code = cli.main(
        [
            "reconstruct",
            str(tmp_path / "missing.png"),
            str(no_alpha),
            str(empty),
            str(truncated),
            str(text),
            str(picture),
            "--model",
            str(model),
            "--resolution",
            "32",
            "--output-dir",
            str(out),
        ]
    )
    assert code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(errors) == 5
    for name, line in zip(
        ["missing.png", "photo.jpg", "empty.png", "truncated.png", "notes.png"], errors, strict=True
    ):
        assert line.startswith("error: ") and name in line
    assert sorted(p.name for p in out.iterdir()) == ["green box.obj"]  # no partial files
    bad_model = tmp_path / "bad.safetensors"
    bad_model.write_bytes(b"junk")
    assert cli.main(["reconstruct", str(picture), "--model", str(bad_model)]) == 2
    assert "bad.safetensors" in capsys.readouterr().err
