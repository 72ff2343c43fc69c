"""Build the Blender extension zip: ``dist/image_to_3d-VERSION.zip``.

    python build_addon.py [--out dist] [--wheels DIR] [--no-validate]

The zip holds the add-on (``blender_addon/``), the ``recon_core`` library it runs, and the
bundled models (``blender_addon/models/``, the segmentation network in its
``segmentation/`` folder). ``--wheels DIR`` bundles the
platform wheels found in DIR (for example scikit-image, a CPU torch) for offline installs;
they are listed in the manifest so Blender installs them. The result is checked with
Blender's own validator (``blender_ext.py validate``, shipped in the bpy wheel) and the build
fails on any error or warning.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON = ROOT / "blender_addon"
LIBRARY = ROOT / "recon_core"


def _manifest() -> dict:
    return tomllib.loads((ADDON / "blender_manifest.toml").read_text("utf-8"))


def blender_ext_script() -> Path:
    """Blender's extension command-line tool, from the installed bpy wheel."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: bpy is not installed: cannot validate the extension")
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return found[-1]
    raise SystemExit("error: blender_ext.py not found in the bpy package")


def _python_files(source: Path, target: Path) -> None:
    for path in sorted(source.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)


def stage(target: Path, wheels: Path | None = None) -> None:
    """Lay out the extension's files in ``target``."""
    _python_files(ADDON, target)
    _python_files(LIBRARY, target / "recon_core")
    models = target / "models"
    models.mkdir(exist_ok=True)
    for path in sorted((ADDON / "models").rglob("*")):
        if path.is_file() and path.suffix in (".safetensors", ".txt", ".md"):
            dest = models / path.relative_to(ADDON / "models")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
    manifest = (ADDON / "blender_manifest.toml").read_text("utf-8")
    if wheels is not None:
        found = sorted(wheels.glob("*.whl"))
        if not found:
            raise SystemExit(f"error: {wheels}: no .whl files to bundle")
        (target / "wheels").mkdir()
        for wheel in found:
            shutil.copy2(wheel, target / "wheels" / wheel.name)
        listed = ", ".join(f'"./wheels/{w.name}"' for w in found)
        manifest += f"\nwheels = [{listed}]\n"
    (target / "blender_manifest.toml").write_text(manifest, "utf-8")


def validate(zip_path: Path) -> None:
    """Run Blender's validator; any error or warning fails the build."""
    result = subprocess.run(
        [sys.executable, str(blender_ext_script()), "validate", str(zip_path)],
        capture_output=True,
        text=True,
    )
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0 or "warning" in output.lower() or "error" in output.lower():
        raise SystemExit(f"error: {zip_path}: Blender's validator says: {output}")


def build(out: Path, wheels: Path | None = None, check: bool = True) -> Path:
    manifest = _manifest()
    zip_path = out / f"{manifest['id']}-{manifest['version']}.zip"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / manifest["id"]
        staging.mkdir()
        stage(staging, wheels)
        partial = out / f".{zip_path.name}.partial"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(staging.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(staging).as_posix())
        try:
            if check:
                validate(partial)
        except BaseException:
            partial.unlink()
            raise
        os.replace(partial, zip_path)
    return zip_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--wheels", type=Path, help="folder of platform wheels to bundle")
    parser.add_argument("--no-validate", action="store_true")
    args = parser.parse_args(argv)
    path = build(args.out, args.wheels, not args.no_validate)
    print(
        f"{path} ({path.stat().st_size / 1e6:.1f} MB), validated by Blender's extension tool"
        if not args.no_validate
        else f"{path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
