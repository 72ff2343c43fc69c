"""Photo-like versions of a dataset's training renders, cut out as users' photos are, for
training the reconstruction networks on the pictures inference will see.

    python -m training.data.photo_views --data data/bundled --views 4
    python -m training.train --method implicit --preset implicit-bundled --data data/bundled \\
        --out runs/photo --set data.photo_views=0.5

For each training-split record, each of its first ``--views`` renders is made into a
photo-like JPEG as the segmentation network's training pictures are (`training.data.photos`:
one of `TRAIN_BACKGROUNDS`, never a background of the photo-like test sets; relit, shadowed,
now and then another training object behind it at the edge), then read back by
`recon_core.picture.read_picture` with the segmentation network, exactly as ``recon3d
reconstruct`` reads a user's photo, and framed as the renders are. So the network learns
from the colours, the JPEG artefacts and the masks (with their errors) that photos give.

They are written to DATA/photo-views/ (`recon_core.data.PHOTO_VIEWS`: one ``.npz`` per
record, ``mask_iou`` against the render's alpha; an ``index.json`` listing them, with the
mean mask IoU), beside the dataset's records, which are not changed.
A view whose photo yields no mask is left out and counted. Each record's pictures are a pure
function of (``--seed``, its id), so a rerun writes the same files and skips finished ones
(remove the folder to make them again with other settings).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tempfile
from collections.abc import Iterable
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

__all__ = ["main", "photo_view"]


def photo_view(render: np.ndarray, rng: np.random.Generator, clutter: np.ndarray | None):
    """One training render (H, W, 4) uint8 as a user's photo of it gives it to the network:
    the framed RGBA (H, W, 4) uint8 its segmentation mask cuts out, and that mask's IoU
    against the render's own alpha. Raises PictureError when no mask is found."""
    from PIL import Image

    from recon_core.picture import read_picture
    from training.data.photos import TRAIN_BACKGROUNDS, make_photo, mask_iou

    picture, truth = make_photo(render, rng, clutter, backgrounds=TRAIN_BACKGROUNDS)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "photo.jpg"
        Image.fromarray(picture).save(path, format="JPEG", quality=int(rng.integers(75, 96)))
        found = read_picture(path, background="segment")
    return found.framed(render.shape[0]), mask_iou(found.mask, truth)


def _build(task: tuple) -> dict:
    """The photo views of one record, written to its file (skipped when there)."""
    from recon_core.data import read_record
    from recon_core.files import atomic_write_bytes
    from recon_core.picture import PictureError
    from training.data.pipeline import shape_rng

    root, out, entry, others, views, seed = task
    target = out / (Path(entry["file"]).stem + ".npz")
    if target.exists():
        with np.load(target) as stored:
            return _row(entry["id"], target.name, stored["mask_iou"], int(stored["failed"]))
    rng = shape_rng(seed, entry["id"])
    renders = read_record(root / entry["file"], ["renders"])[0]["renders"]
    photos, kept, ious, failed = [], [], [], 0
    for view in range(min(views, len(renders))):
        clutter = None
        if others and rng.random() < 0.3:
            other = others[int(rng.integers(len(others)))]
            behind = read_record(root / other, ["renders"])[0]["renders"]
            clutter = behind[int(rng.integers(len(behind)))]
        try:
            framed, iou = photo_view(renders[view], rng, clutter)
        except PictureError:
            failed += 1
            continue
        photos.append(framed)
        kept.append(view)
        ious.append(iou)
    size = renders.shape[1]
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        photos=np.asarray(photos, np.uint8).reshape(-1, size, size, 4),
        views=np.asarray(kept, np.int64),
        mask_iou=np.asarray(ious, np.float32),
        failed=np.int64(failed),
    )
    atomic_write_bytes(target, lambda h: h.write(buffer.getvalue()))
    return _row(entry["id"], target.name, np.asarray(ious, np.float32), failed)


@contextmanager
def _quiet_masks():
    """recon3d's log says errors only, inside the block (doubtful masks go unsaid)."""
    log = logging.getLogger("recon3d")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _worker_init() -> None:
    """A pool worker: one thread (the workers share the cores), no doubtful-mask lines."""
    import torch

    torch.set_num_threads(1)
    logging.getLogger("recon3d").setLevel(logging.ERROR)


def _row(shape_id: str, name: str, ious, failed: int) -> dict:
    return {
        "id": shape_id,
        "file": name,
        "views": len(ious),
        "failed": failed,
        "mask_iou": float(np.mean(ious)) if len(ious) else None,
    }


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.data.photo_views",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset")
    parser.add_argument("--views", type=int, default=4, help="renders per record to make photos of")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="processes (one thread each)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    from multiprocessing import get_context

    from tqdm import tqdm

    from recon_core.data import PHOTO_VIEWS, DatasetError, read_index
    from recon_core.files import atomic_write_bytes, remove_stale_temporaries
    from recon_core.segmentation import SegmentationError, segment

    if args.views < 1:
        print(f"error: --views {args.views}: make at least one", file=sys.stderr)
        return 2
    try:
        segment(np.zeros((8, 8, 3), np.uint8), 8)  # the bundled network is there and loads
        records = [r for r in read_index(args.data)["records"] if r["split"] == "train"]
    except (DatasetError, SegmentationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not records:
        print(f"error: {args.data}: no records in the train split", file=sys.stderr)
        return 2
    out = args.data / PHOTO_VIEWS
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    files = [r["file"] for r in records]
    tasks = [
        (args.data, out, r, files[:k] + files[k + 1 :], args.views, args.seed)
        for k, r in enumerate(records)
    ]
    # the pictures' mask warnings are not printed: each mask's IoU is stored instead
    with ExitStack() as stack, _quiet_masks():
        mapped = map(_build, tasks)
        if args.workers > 1:
            pool = stack.enter_context(get_context("spawn").Pool(args.workers, _worker_init))
            mapped = pool.imap(_build, tasks)
        shown = tqdm(
            mapped, total=len(tasks), desc="photo views", unit="shape", disable=args.no_progress
        )
        done = list(shown)
    ious = [r["mask_iou"] for r in done if r.get("mask_iou") is not None]
    summary = {
        "seed": args.seed,
        "views": args.views,
        "records": done,
        "pictures": sum(r["views"] for r in done),
        "failed": sum(r["failed"] for r in done),
        "mean_mask_iou": float(np.mean(ious)) if ious else None,
    }
    text = json.dumps(summary, indent=1).encode("utf-8")
    atomic_write_bytes(out / "index.json", lambda h: h.write(text))
    print(
        f"{out}: {summary['pictures']} photo views of {len(done)} shapes "
        f"({summary['failed']} without a mask); mean mask IoU "
        f"{summary['mean_mask_iou'] if ious else float('nan'):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
