"""The README's "Train your own category" walkthrough, run exactly, at tiny sizes."""

import json
import re
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from recon_core import cli
from recon_core.data import read_index, read_record
from recon_core.inference import Reconstructor
from training import train, viewpoint
from training.data import prepare
from training.data.procedural import make_shape
from training.reports import evaluate

README = Path(__file__).resolve().parents[1] / "README.md"


def _walkthrough_commands() -> list[list[str]]:
    """The commands of the README section, without the interpreter."""
    text = README.read_text()
    section = text.split("## Train your own category", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith(".venv/bin/python -m"):
            commands.append(line.split()[2:])
        elif line.startswith(".venv/bin/recon3d"):
            commands.append(["recon3d", *line.split()[1:]])
    return commands


def test_walkthrough_from_a_folder_of_meshes(tmp_path, monkeypatch, tiny_args):
    meshes = tmp_path / "my_meshes"
    for k, suffix in enumerate(["obj", "ply", "stl"]):
        for category in ("stool", "shelf"):
            shape = make_shape("chair" if category == "stool" else "cabinet", 50 + k)
            path = meshes / category / f"{category}_{k}.{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            trimesh.Trimesh(shape.vertices, shape.faces, process=False).export(path)
    commands = _walkthrough_commands()
    assert [c[0] for c in commands] == [
        "training.data.prepare",
        "training.train",
        "training.reports.evaluate",
        "training.viewpoint",
        "recon3d",
    ]
    monkeypatch.chdir(tmp_path)
    tiny = {
        "training.data.prepare": [*tiny_args, "--workers", "0"],
        "training.train": [
            "--preset",
            "implicit-smoke",
            "--set",
            "stages.0.steps=5",
            "--set",
            "data.workers=0",
            "--no-progress",
        ],
        "training.reports.evaluate": ["--split", "train", "--resolution", "32", "--no-progress"],
        "training.viewpoint": ["--steps", "4", "--batch", "4", "--width", "4"],
        "recon3d": ["--resolution", "32"],
    }
    modules = {
        "training.data.prepare": prepare,
        "training.train": train,
        "training.reports.evaluate": evaluate,
        "training.viewpoint": viewpoint,
        "recon3d": cli,
    }
    for command in commands:
        if command[0] == "recon3d":  # a picture of one of the user's shapes
            record = read_index(tmp_path / "data" / "mine")["records"][0]["file"]
            arrays, _ = read_record(tmp_path / "data" / "mine" / record)
            Image.fromarray(arrays["renders"][0]).save(tmp_path / "my_stool.png")
        args = [a.replace("~/meshes", str(meshes)) for a in command[1:]]
        code = modules[command[0]].main(args + tiny[command[0]])
        if command[0] == "recon3d":
            # five training steps may leave the field empty: the CLI then says so, exits 1,
            # and writes nothing; otherwise it writes the mesh
            assert code in (0, 1)
            assert (tmp_path / "out" / "my_stool.obj").exists() == (code == 0)
        else:
            assert code == 0, command
    model = tmp_path / "runs" / "mine" / "model.safetensors"
    reconstructor = Reconstructor(model, "cpu")
    assert reconstructor.info["categories"] == ["shelf", "stool"]
    assert reconstructor.viewpoint is not None
    metrics = json.loads((tmp_path / "reports" / "mine" / "metrics.json").read_text())
    assert set(metrics["per_category"]) <= {"shelf", "stool"}
    assert np.isfinite(metrics["mean_over_categories"]["chamfer_l1"])
    assert (tmp_path / "reports" / "mine" / "sheet.png").exists()
    assert metrics["iso"] == 0.5
    # a level outside (0, 1) is refused up front, not scored as every mesh empty
    bad = ["--model", str(model), "--data", "data/mine", "--report", "reports/bad"]
    assert evaluate.main([*bad, "--iso", "1.5", "--no-progress"]) == 2
    assert not (tmp_path / "reports" / "bad").exists()
