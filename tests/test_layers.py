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
    module.write_text("def f():\n    from training.reports.evaluate import main\n    import bpy\n")
    assert {"training.reports.evaluate", "bpy"} <= _imports(module)


def _method_name_branches(path: Path) -> list[str]:
    """Comparisons with a method's name (``x == "implicit"``, ``"pointcloud" != y``...)."""
    names = {"implicit", "pointcloud"}
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
            if any(isinstance(p, ast.Constant) and p.value in names for p in parts):
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_the_request_path_leaves_each_method_to_its_generator():
    # Reconstructor, the CLI and the worker ask the method's generator
    # (recon_core.methods.base.Generator) instead of testing the method's name.
    paths = [REPO / "recon_core" / name for name in ("inference.py", "cli.py", "worker.py")]
    assert [hit for path in paths for hit in _method_name_branches(path)] == []


def test_the_branch_check_sees_a_method_name_test(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f(c):\n    return c.method == 'pointcloud'\n")
    assert _method_name_branches(module) == ["m.py:2"]
