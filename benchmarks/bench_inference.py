"""Inference latency of the bundled models, as a user gets it: picture file -> coloured mesh
or point cloud, on this machine's CPU.

    python benchmarks/bench_inference.py [--picture examples/armchair.png]

Cold start: a fresh process importing the library, loading the model and producing its
first result (the time to import torch is shown apart). Warm: the same call again, median of
``--repeats``. Each case runs in its own process so its peak memory (maximum resident set)
is its own. Targets on a 2-core CPU: warm mesh 128^3 <= 1.0 s, 256^3 <= 3.0 s, point cloud
<= 0.3 s, cold start <= 3 s; the mirror-symmetric results (``symmetric``) to the same.
``fit``: the implicit mesh with its code fitted to the picture's silhouette (named from the
front, as ``--view front --fit-silhouette``), which has no target. ``segment``: the mask cut
out by the bundled segmentation network (``--background segment``), alone (target 0.5 s for
a 12-megapixel photo) and on to the implicit mesh (target 1.5 s); give such a photo with
``--picture`` (a transparent PNG's colour is segmented as it is).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def child(case: str, args) -> dict:
    tick = time.perf_counter()
    import torch  # noqa: F401

    import_s = time.perf_counter() - tick
    from timing import median_seconds, peak_mb

    from recon_core.colour import parse_view
    from recon_core.inference import Reconstructor
    from recon_core.picture import read_picture

    model_name, output, resolution, *options = case.split("-")
    resolution = int(resolution)

    tick = time.perf_counter()
    model = (
        None
        if output == "mask"
        else Reconstructor(model_name, "cpu", symmetric="symmetric" in options)
    )
    if "fit" in options:
        model.view = parse_view("front")

    background = "segment" if "segment" in options else "auto"

    def once():
        picture = read_picture(args.picture, background=background)
        if output == "mask":  # the segmentation alone: reading the picture and its mask
            return int(picture.mask.sum())
        encoded = model.encode_picture(picture)
        if "fit" in options:
            encoded = model.fit_silhouette(encoded)
        if output == "mesh":
            return len(model.coloured_mesh(encoded, resolution).faces)
        return len(model.coloured_points(encoded).points)

    size = once()
    cold = time.perf_counter() - tick
    warm = median_seconds(once, args.repeats)
    return {
        "import_s": import_s,
        "cold_s": cold,
        "warm_s": warm,
        "size": size,
        "peak_mb": peak_mb(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--picture", type=Path, default=ROOT / "examples" / "armchair.png")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args)))
        return 0
    import torch

    print(
        f"picture {args.picture.name}, CPU, {torch.get_num_threads()} threads, "
        f"median of {args.repeats} warm runs"
    )
    print("| case | cold start s (load + first) | warm s | target warm s | result | peak MB |")
    print("|---|---:|---:|---:|---|---:|")
    cases = [
        ("implicit-mesh-128", 1.0, "faces"),
        ("implicit-mesh-128-symmetric", 1.0, "faces"),
        ("implicit-mesh-256", 3.0, "faces"),
        ("implicit-mesh-128-fit", None, "faces"),
        ("pointcloud-points-0", 0.3, "points"),
        ("pointcloud-points-0-symmetric", 0.3, "points"),
        ("pointcloud-mesh-128", None, "faces"),
        ("segment-mask-0-segment", 0.5, "mask pixels"),
        ("implicit-mesh-128-segment", 1.5, "faces"),
    ]
    for case, target, unit in cases:
        command = [
            sys.executable,
            __file__,
            "--child",
            case,
            "--picture",
            str(args.picture),
            "--repeats",
            str(args.repeats),
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        label = case.replace("-0", "").replace("-", " ").replace(" 128", " 128^3")
        label = label.replace("segment mask segment", "segmentation mask")
        label = label.replace(" 256", " 256^3")
        print(
            f"| {label} | {r['cold_s']:.2f} (+ import torch {r['import_s']:.2f}) | "
            f"{r['warm_s']:.3f} | {target if target else '-'} | {r['size']:,} {unit} | "
            f"{r['peak_mb']:.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
