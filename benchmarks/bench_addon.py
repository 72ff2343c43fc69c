"""The add-on in real Blender (the bpy module): wall time from the Reconstruct operator's
call to the geometry in the scene, first call (model load included) and warm calls, at
128^3 with the bundled implicit model, in-process (torch in Blender's Python) and through
the worker process of an external Python.

    python benchmarks/bench_addon.py [--picture examples/armchair.png] [--repeats 5]

Targets on a 2-core CPU: warm <= 1.5 s, first <= 5 s. Blender's user folders point at a
temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(args) -> dict:
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(
        filepath=args.zip, repo="user_default", enable_on_install=True
    )
    module = "bl_ext.user_default.image_to_3d"
    prefs = bpy.context.preferences.addons[module].preferences
    if args.backend == "worker":
        prefs.backend, prefs.python_path = "external", sys.executable
    settings = bpy.context.scene.image_to_3d
    settings.image_path = str(args.picture)
    settings.model = next(
        p for p in sys.modules[module].models_index.model_files() if p.stem == "implicit"
    ).as_posix()
    settings.resolution = 128
    times = []
    for _ in range(args.repeats + 1):
        tick = time.perf_counter()
        status = bpy.ops.image_to_3d.reconstruct()
        times.append(time.perf_counter() - tick)
        assert status == {"FINISHED"}, status
    faces = len(bpy.context.view_layer.objects.active.data.polygons)
    return {"first": times[0], "warm": statistics.median(times[1:]), "faces": faces}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--picture", type=Path, default=ROOT / "examples" / "armchair.png")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--zip", help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="inprocess", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    sys.path.insert(0, str(ROOT))
    import build_addon

    with tempfile.TemporaryDirectory() as tmp:
        zip_path = build_addon.build(Path(tmp) / "dist")
        env = dict(os.environ)
        for var in (
            "BLENDER_USER_RESOURCES",
            "BLENDER_USER_CONFIG",
            "BLENDER_USER_SCRIPTS",
            "BLENDER_USER_EXTENSIONS",
        ):
            env[var] = str(Path(tmp) / var.lower())
        print(
            f"picture {args.picture.name}, bundled implicit model, 128^3, median of "
            f"{args.repeats} warm calls"
        )
        print("| path | first call s (load included) | warm s | target first / warm | faces |")
        print("|---|---:|---:|---|---:|")
        for backend in ("inprocess", "worker"):
            command = [
                sys.executable,
                __file__,
                "--child",
                "--zip",
                str(zip_path),
                "--picture",
                str(args.picture.resolve()),
                "--repeats",
                str(args.repeats),
                "--backend",
                backend,
            ]
            out = subprocess.run(command, capture_output=True, text=True, env=env)
            if out.returncode != 0:
                print(out.stderr[-2000:], file=sys.stderr)
                return 1
            r = json.loads(out.stdout.strip().splitlines()[-1])
            label = (
                "in Blender's Python"
                if backend == "inprocess"
                else "worker process (external Python)"
            )
            print(
                f"| {label} | {r['first']:.2f} | {r['warm']:.2f} | 5.0 / 1.5 | {r['faces']:,} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
