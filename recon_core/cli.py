"""The ``recon3d`` command.

recon3d reconstruct IMAGE...   meshes, point clouds and previews from pictures
recon3d models                 bundled and user models with their test metrics

Training has its own entry points: python -m training.data.prepare, training.train, ...
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from recon_core.request import BACKGROUNDS

__all__ = ["main", "add_result_options"]


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def add_result_options(parser: argparse.ArgumentParser) -> None:
    """``--consistency N`` and ``--symmetric``, shared with ``training.reports.evaluate``."""
    parser.add_argument(
        "--consistency",
        type=int,
        metavar="N",
        help="point-cloud models: keep only the points that fall inside the silhouettes of "
        "all but N fixed views (default: every point with a positive mask)",
    )
    parser.add_argument(
        "--symmetric",
        action="store_true",
        help="mirror-symmetric result across the object's left-right plane (most furniture "
        "is): the field averaged with its mirror image, or the cloud joined by its own",
    )


def _view_hint(text: str):
    from recon_core.colour import parse_view

    try:
        return parse_view(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _reconstruct_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recon3d reconstruct",
        description="Reconstruct objects from pictures: one object per picture, on any "
        "background (cut out by the bundled segmentation network) or a transparent one.",
    )
    parser.add_argument("images", nargs="+", type=Path, help="pictures (PNG, JPEG, ...)")
    parser.add_argument(
        "--model",
        default=None,
        help="bundled or user model name, or a .safetensors path "
        "(default: the bundled implicit model; see `recon3d models`)",
    )
    parser.add_argument("--output", choices=("mesh", "points", "both"), default="both")
    parser.add_argument("--resolution", type=int, default=128, help="mesh grid, 16-512")
    parser.add_argument("--iso", type=float, default=0.5, help="occupancy level, 0-1")
    parser.add_argument(
        "--faces", type=int, help="at most this many triangles (quadric decimation, stays closed)"
    )
    parser.add_argument("--points", type=int, default=None, help="point count (default all)")
    parser.add_argument(
        "--format",
        choices=("glb", "obj", "ply"),
        default="glb",
        help="mesh format (point clouds: ply, or glb with --format glb)",
    )
    add_result_options(parser)
    parser.add_argument(
        "--view",
        type=_view_hint,
        action="append",
        default=None,
        help="where the pictures were taken from, roughly: front, front-right, right, "
        "back-right, back, back-left, left, front-left (as Blender's views name them) or an "
        "azimuth in degrees, optionally ,ELEVATION in degrees (e.g. front-left,20); once for "
        "all pictures or once per picture, in order; the colours' camera is then searched "
        "near it (default: estimated from each picture)",
    )
    parser.add_argument(
        "--fit-silhouette",
        action="store_true",
        help="implicit models, with --view: fit the shape to the picture's silhouette "
        "(about 9 s a picture on a 2-core CPU)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    parser.add_argument("--output-dir", type=Path, default=Path("out"))
    parser.add_argument(
        "--mask",
        type=Path,
        action="append",
        default=None,
        help="mask file (white = object); once per picture, in order",
    )
    parser.add_argument(
        "--background",
        choices=BACKGROUNDS,
        default="auto",
        help="where the mask comes from without --mask: the alpha channel when the picture "
        "has one, else the bundled segmentation network (auto); or only the alpha "
        "channel, the network, or the plain-background estimate",
    )
    parser.add_argument(
        "--save-mask", action="store_true", help="also write NAME_mask.png: the mask that was used"
    )
    parser.add_argument("--no-preview", action="store_true", help="skip the preview PNG")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _request(args: argparse.Namespace):
    """The reconstruction request of the parsed options (`recon_core.request`)."""
    from recon_core.request import ReconstructionRequest

    return ReconstructionRequest(
        output=args.output,
        resolution=args.resolution,
        iso=args.iso,
        faces=args.faces,
        points=args.points,
        symmetric=args.symmetric,
        view=args.view[0] if args.view else None,  # the first: each is parsed already
        fit_silhouette=args.fit_silhouette,
        consistency=args.consistency,
        device=args.device,
        background=args.background,
    )


def output_stems(images: list[Path], folder: Path) -> list[Path]:
    """Where each picture's results go (without suffix): its name in ``folder``, with -2,
    -3... after names that an earlier picture of the same run already took (``a/thing.png``
    and ``b/thing.png``, ``chair.png`` and ``chair.jpg``), so that none overwrites another.
    Names are compared without case, as some file systems do."""
    taken: set[str] = set()
    stems = []
    for path in images:
        name, k = path.stem, 1
        while name.lower() in taken:
            k += 1
            name = f"{path.stem}-{k}"
        taken.add(name.lower())
        stems.append(folder / name)
    return stems


def check_writable(folder: Path) -> Path | None:
    """Create ``folder`` if needed and prove it takes a file, before any work; an OSError
    naming it otherwise. Temporaries that killed runs left there are removed. Returns the
    outermost folder this created (to take back if the run stops before any result), or
    None."""
    import tempfile

    from recon_core.files import remove_stale_temporaries

    created = None
    for candidate in [folder, *folder.parents]:
        if candidate.exists():
            break
        created = candidate
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".recon3d-probe-", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OSError(f"{folder}: cannot write results there ({exc.strerror or exc})") from None
    remove_stale_temporaries(folder)
    return created


def _take_back(folder: Path, created: Path | None) -> None:
    """Remove the empty folders `check_writable` made, from ``folder`` up to ``created``."""
    if created is None:
        return
    for candidate in [folder, *folder.parents]:
        try:
            candidate.rmdir()  # only when empty
        except OSError:
            return
        if candidate == created:
            return


def reconstruct(argv: list[str]) -> int:
    args = _reconstruct_parser().parse_args(argv)
    from recon_core.request import RequestError

    if args.mask is not None and len(args.mask) != len(args.images):
        return _error(
            f"{len(args.mask)} --mask files for {len(args.images)} pictures; give one per picture"
        )
    if args.view is not None and len(args.view) not in (1, len(args.images)):
        return _error(
            f"{len(args.view)} --view hints for {len(args.images)} pictures; give "
            "one for all or one per picture"
        )
    try:
        request = _request(args)
    except RequestError as exc:
        return _error(str(exc))
    try:
        created = check_writable(args.output_dir)
    except OSError as exc:
        return _error(_first_line(exc))
    import numpy as np
    from tqdm import tqdm

    from recon_core.checkpoint import CheckpointError
    from recon_core.extraction import ExtractionError
    from recon_core.files import write_all_or_none
    from recon_core.geometry import sample_mesh
    from recon_core.inference import Reconstructor
    from recon_core.meshio import result_bytes
    from recon_core.picture import PictureError, read_picture
    from recon_core.preview import preview_sheet

    try:
        model = Reconstructor(args.model, request.device, request.consistency, request.symmetric)
    except (CheckpointError, ValueError, OSError) as exc:
        _take_back(args.output_dir, created)
        return _error(_first_line(exc))
    if request.fit_silhouette and not model.generator.fits_silhouette:
        _take_back(args.output_dir, created)
        return _error(
            f"{model.path}: --fit-silhouette needs an implicit model, this one is "
            f"{model.config.method}"
        )
    failures = 0
    stems = output_stems(args.images, args.output_dir)
    bar = tqdm(
        args.images,
        unit="image",
        disable=args.no_progress or len(args.images) < 2,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    for k, path in enumerate(bar):
        try:
            picture = read_picture(path, args.mask[k] if args.mask else None, request.background)
            asked = request
            if args.view is not None:  # one hint for all pictures, or one each
                asked = replace(request, view=args.view[k if len(args.view) > 1 else 0])
            encoded = model.encode_picture(picture)
            if asked.fit_silhouette:
                encoded = model.fit_silhouette(encoded, options=model.options_for(asked))
            result = model.reconstruct(encoded, asked)
            mesh, view, stem = result.mesh, result.view, stems[k]
            files: dict[Path, bytes] = {}  # all computed, then written as a set
            if mesh is not None:
                target = stem.with_suffix(f".{args.format}")
                files[target] = result_bytes(target, mesh.vertices, mesh.faces, mesh.colours)
            if result.points is not None:
                suffix = "glb" if args.format == "glb" else "ply"
                target = stem.parent / f"{stem.name}_points.{suffix}"
                files[target] = result_bytes(target, result.points, None, result.point_colours)
            if not args.no_preview:
                rgb = np.where(picture.mask[..., None], picture.rgb, 255).astype(np.uint8)
                if mesh is not None:
                    shown = sample_mesh(mesh.vertices, mesh.faces, mesh.colours, 200_000)
                    sheet = preview_sheet(rgb, shown[0], shown[2], shown[1])
                else:
                    sheet = preview_sheet(rgb, result.points, result.point_colours)
                files[stem.parent / f"{stem.name}_preview.png"] = _png_bytes(sheet)
            if args.save_mask:
                mask_image = picture.mask.astype(np.uint8) * 255
                files[stem.parent / f"{stem.name}_mask.png"] = _png_bytes(mask_image)
            written = write_all_or_none(files)
            line = f"{path}: " + ", ".join(str(w) for w in written)
            if view is not None:  # a wrong guess is fixed with --view: say what it was
                line += f"; colours seen from {view.describe()}"
                line += ", as given by --view" if args.view is not None else ", estimated"
            bar.write(line, file=sys.stdout)
        except (PictureError, ExtractionError, CheckpointError, ValueError, OSError) as exc:
            failures += 1
            message = _first_line(exc)
            if str(path) not in message:
                message = f"{path}: {message}"
            bar.write(f"error: {message}", file=sys.stderr)
    bar.close()
    return 1 if failures else 0


def _png_bytes(array) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def models(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="recon3d models",
        description="List bundled and user models (user folder: $RECON3D_MODELS or "
        "~/.local/share/recon3d/models).",
    )
    parser.parse_args(argv)
    from recon_core.registry import list_models, user_dir

    entries = list_models()
    if not entries:
        print(f"no models found (user folder: {user_dir()})")
        return 1
    print(f"{'name':<22} {'origin':<8} {'method':<11} {'MB':>6}  test metrics (mean)  categories")
    for entry in entries:
        if entry.error:
            print(f"{entry.name:<22} {entry.origin:<8} broken: {entry.error}")
            continue
        metrics = (entry.meta or {}).get("metrics", {}).get("mean_over_categories", {})
        shown = (
            ", ".join(
                f"{key} {metrics[key]:.3f}"
                for key in ("iou", "f_score@0.02", "pred_to_gt_x100", "gt_to_pred_x100")
                if metrics.get(key) is not None
            )
            or "-"
        )
        categories = ", ".join(entry.categories) or "-"
        print(
            f"{entry.name:<22} {entry.origin:<8} {entry.method:<11} {entry.size_mb:>6.1f}  "
            f"{shown}  {categories}"
        )
    return 0


def main(argv: Iterable[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="recon3d", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["models", "reconstruct"])
    parser.add_argument("args", nargs=argparse.REMAINDER)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    parsed = parser.parse_args(argv[:1])
    if parsed.command == "models":
        return models(argv[1:])
    return reconstruct(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
