"""The library's layers: recon_core never reaches into training, the add-on or Blender, and
inference never into the training engine."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = ("training", "blender_addon", "bpy")


def _imports(path: Path) -> set[str]:
    """Top-level and nested import targets of a module, as dotted names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_recon_core_imports_neither_training_nor_the_add_on_nor_blender():
    offenders = []
    for path in sorted((REPO / "recon_core").rglob("*.py")):
        for name in _imports(path):
            if name.split(".")[0] in FORBIDDEN:
                offenders.append(f"{path.relative_to(REPO)}: {name}")
    assert offenders == []


def test_inference_does_not_load_the_training_engine():
    code = (
        "import sys, recon_core.inference, recon_core.worker, recon_core.cli;"
        "bad = [m for m in sys.modules if m == 'recon_core.engine' or "
        "m.split('.')[0] in ('training', 'blender_addon', 'bpy')];"
        "print(','.join(bad))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


def test_the_layer_check_sees_a_forbidden_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from training.evaluate import main\n    import bpy\n")
    assert {"training.evaluate", "bpy"} <= _imports(module)
