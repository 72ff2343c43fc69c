"""The ``recon3d`` command.

recon3d prepare ...   build a prepared dataset (same options as python -m training.prepare)
recon3d preview ...   preview sheet of a prepared dataset (python -m training.preview)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["main"]

_DELEGATES = {
    "prepare": ("training.prepare", "build a prepared dataset from shapes"),
    "preview": ("training.preview", "render a preview sheet of a prepared dataset"),
}


def reconstruct(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="recon3d reconstruct", description="Reconstruct objects from pictures."
    )
    parser.add_argument("images", nargs="+", type=Path, help="pictures with an alpha mask")
    parser.add_argument("--model", required=True, type=Path, help="checkpoint (.safetensors)")
    parser.add_argument("--output", choices=("mesh", "points", "both"), default="both")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--iso", type=float, default=0.5)
    parser.add_argument("--format", choices=("obj", "ply"), default="obj")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output-dir", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from recon_core.checkpoint import CheckpointError
    from recon_core.extraction import ExtractionError
    from recon_core.imaging import crop_resize, square_crop_box
    from recon_core.inference import Reconstructor
    from recon_core.meshio import write_obj, write_ply

    try:
        reconstructor = Reconstructor(args.model, args.device)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failures = 0
    for path in args.images:
        try:
            with Image.open(path) as image:
                if "A" not in image.getbands():
                    raise ValueError(
                        f"{path}: no alpha channel; the object mask comes from "
                        "alpha (give a picture with a transparent background)"
                    )
                rgba = np.asarray(image.convert("RGBA"))
            mask = rgba[..., 3] > 127
            if not mask.any():
                raise ValueError(f"{path}: the alpha mask is empty (no object in the image)")
            framed = crop_resize(rgba, square_crop_box(mask), reconstructor.input_size)
            encoded = reconstructor.encode(framed)
            stem = args.output_dir / path.stem
            written = []
            if encoded.method == "implicit" and args.output in ("mesh", "both"):
                mesh, _ = reconstructor.mesh(encoded, args.resolution, args.iso)
                target = stem.with_suffix(f".{args.format}")
                write = write_obj if args.format == "obj" else write_ply
                written.append(write(target, mesh.vertices, mesh.faces))
            if encoded.method == "pointcloud" and args.output in ("points", "both"):
                points = reconstructor.points(encoded)
                written.append(write_ply(f"{stem}_points.ply", points))
            if not written:
                raise ValueError(
                    f"{args.model}: a {encoded.method} model gives no {args.output} output"
                )
            print(f"{path}: " + ", ".join(str(w) for w in written))
        except (OSError, UnidentifiedImageError, ValueError, ExtractionError) as exc:
            failures += 1
            message = (str(exc).splitlines() or [type(exc).__name__])[0]
            if str(path) not in message:
                message = f"{path}: {message}"
            print(f"error: {message}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: Iterable[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="recon3d", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=sorted([*_DELEGATES, "reconstruct"]))
    parser.add_argument("args", nargs=argparse.REMAINDER)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    parsed = parser.parse_args(argv[:1])
    if parsed.command == "reconstruct":
        return reconstruct(argv[1:])
    import importlib

    module = importlib.import_module(_DELEGATES[parsed.command][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
