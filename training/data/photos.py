"""A photo-like test set: test-split renders composited onto real photographs, and how well
each mask source cuts them out again.

    python -m training.data.photos --data data/sweethome3d --out data/photos --report reports/photos

For each record of the split (its first input render), a background is cut from one of
scikit-image's photographs (a random window, rescaled), given a colour and lighting shift;
the render is scaled, placed, relit, given a soft shadow, and now and then another test
object stands behind it, partly out of the frame (clutter). The truth mask is the render's
alpha. Each picture is a JPEG, as photos are. The report gives, per picture and on average,
the mask IoU of the plain-background estimate and of the segmentation network against the
truth (`recon_core.picture`).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["main", "make_photo", "mask_iou", "read_photos", "BACKGROUNDS", "TRAIN_BACKGROUNDS"]

BACKGROUNDS = ("coffee", "chelsea", "rocket", "astronaut", "brick", "grass", "gravel", "camera")
"""scikit-image's photographs the backgrounds of the photo-like test sets are cut from
(scenes, a person, textures)."""

TRAIN_BACKGROUNDS = (
    "stereo_motorcycle",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "colorwheel",
    "coins",
    "moon",
    "page",
    "text",
    "clock",
    "cell",
    "gradient",
    "noise",
    "stripes",
)
"""Backgrounds for training on photo-like pictures (`training.train_segmentation`), none of
`BACKGROUNDS`: scikit-image's other photographs, and drawn ones (a smooth colour gradient,
smoothed colour noise, stripes), as walls, floors and fabrics are."""

_DRAWN = ("gradient", "noise", "stripes")


def _drawn(rng: np.random.Generator, name: str) -> np.ndarray:
    """A drawn background (SIZE, SIZE, 3) float in [0, 255]."""
    from scipy import ndimage

    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    a, b = rng.uniform(0, 255, size=(2, 3))
    if name == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * x + np.sin(angle) * y)[..., None]
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
        return a * (1 - t) + b * t
    if name == "noise":
        noise = rng.normal(size=(SIZE, SIZE, 3))
        sigma = rng.uniform(2, 24)
        noise = ndimage.gaussian_filter(noise, (sigma, sigma, 0))
        noise = (noise - noise.mean()) / max(float(noise.std()), 1e-6)
        return np.clip((a + b) / 2 + 40 * noise, 0, 255)
    period = rng.uniform(0.03, 0.3)
    angle = rng.uniform(0, np.pi)
    phase = (np.cos(angle) * x + np.sin(angle) * y) / period
    t = (np.sin(2 * np.pi * phase) > 0)[..., None].astype(np.float64)
    return a * (1 - t) + b * t


SIZE = 320
"""Side of each photo in pixels."""


def _background(rng: np.random.Generator, name: str) -> np.ndarray:
    """A random window of a photograph, rescaled to SIZE, with a colour and light shift."""
    import skimage.data
    from PIL import Image

    if name in _DRAWN:
        return _drawn(rng, name)
    photo = getattr(skimage.data, name)()
    if isinstance(photo, tuple):  # a stereo pair: its left picture
        photo = photo[0]
    photo = np.asarray(photo)
    if photo.dtype == bool:
        photo = photo.astype(np.uint8) * 255
    if photo.ndim == 2:
        photo = np.repeat(photo[..., None], 3, axis=2)
    height, width = photo.shape[:2]
    side = int(rng.uniform(0.4, 1.0) * min(height, width))
    top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
    window = Image.fromarray(photo[top : top + side, left : left + side, :3])
    image = np.asarray(window.resize((SIZE, SIZE), Image.Resampling.BICUBIC), np.float32)
    gain = rng.uniform(0.75, 1.2) * rng.uniform(0.9, 1.1, size=3)
    return np.clip(image * gain + rng.uniform(-20, 20), 0, 255)


def _placed(render: np.ndarray, rng: np.random.Generator, fill: tuple[float, float], edge=False):
    """The render (RGBA uint8) scaled so its object spans ``fill`` of the photo and placed at
    random inside it (or, with ``edge``, partly out of it): colour (SIZE, SIZE, 3) float and
    alpha (SIZE, SIZE) float in [0, 1]."""
    from PIL import Image

    alpha = render[..., 3] > 127
    rows, cols = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
    crop = render[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = rng.uniform(*fill) * SIZE / max(crop.shape[:2])
    height, width = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    image = Image.fromarray(crop).resize((width, height), Image.Resampling.BICUBIC)
    canvas = Image.new("RGBA", (SIZE, SIZE))
    if edge:
        x = int(rng.choice([-width // 2, SIZE - width // 2]))
        y = int(rng.integers(-height // 3, SIZE - 2 * height // 3))
    else:
        x, y = int(rng.integers(0, SIZE - width + 1)), int(rng.integers(0, SIZE - height + 1))
    canvas.paste(image, (x, y))
    out = np.asarray(canvas, np.float32)
    return out[..., :3], out[..., 3] / 255.0


def make_photo(
    render: np.ndarray,
    rng: np.random.Generator,
    clutter: np.ndarray | None = None,
    background: str | None = None,
    backgrounds: tuple[str, ...] = BACKGROUNDS,
):
    """A photo-like picture (SIZE, SIZE, 3) uint8 of ``render`` on a photograph, and its
    truth mask (SIZE, SIZE) bool. ``clutter``: another render, put behind it at the edge;
    ``background``: the one to use (default: drawn from ``backgrounds``)."""
    from scipy import ndimage

    drawn = str(rng.choice(backgrounds))
    picture = _background(rng, background or drawn)
    if clutter is not None:
        colour, alpha = _placed(clutter, rng, (0.3, 0.5), edge=True)
        picture = picture * (1 - alpha[..., None]) + colour * alpha[..., None]
    colour, alpha = _placed(render, rng, (0.45, 0.8))
    shadow = ndimage.gaussian_filter(alpha, sigma=rng.uniform(2, 6))
    shadow = ndimage.shift(shadow, (rng.uniform(2, 10), rng.uniform(-8, 8)), order=1)
    picture = picture * (1 - rng.uniform(0.2, 0.5) * shadow[..., None])
    light = rng.uniform(0.8, 1.15) * rng.uniform(0.92, 1.08, size=3)
    picture = picture * (1 - alpha[..., None]) + np.clip(colour * light, 0, 255) * alpha[..., None]
    return np.clip(picture, 0, 255).round().astype(np.uint8), alpha > 0.5


def read_photos(folder: Path) -> list[dict]:
    """The photos a folder written by this module lists, each {id, category, photo, truth,
    clutter} with ``photo`` and ``truth`` as paths; DatasetError naming the folder when it
    is not such a folder."""
    from recon_core.data import DatasetError

    try:
        listed = json.loads((folder / "index.json").read_text(encoding="utf-8"))["photos"]
        return [
            dict(entry, photo=folder / entry["photo"], truth=folder / entry["truth"])
            for entry in listed
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(
            f"{folder}: not a folder of photos written by training.data.photos ({exc})"
        ) from None


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (0 for two empty ones)."""
    return float((a & b).sum() / max((a | b).sum(), 1))


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.data.photos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--out", type=Path, required=True, help="folder for the photos")
    parser.add_argument("--report", type=Path, help="folder for the mask report")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clutter", type=float, default=0.3, help="share of photos with clutter")
    parser.add_argument(
        "--segmentation",
        type=Path,
        help="segmentation weights to report on instead of the bundled ones "
        "(a fine-tuned candidate, training.train_segmentation)",
    )
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    from PIL import Image

    from recon_core.data import DatasetError, read_index, read_record
    from recon_core.files import atomic_write_bytes
    from recon_core.picture import PictureError, read_picture
    from recon_core.segmentation import SegmentationError, use_weights

    try:
        use_weights(args.segmentation)
    except SegmentationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    try:
        index = read_index(args.data)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    records = [r for r in index["records"] if r["split"] == args.split]
    if not records:
        print(f"error: {args.data}: no records in the {args.split} split", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    renders = [read_record(args.data / r["file"], ["renders"])[0]["renders"][0] for r in records]
    entries, rows = [], []
    for k, record in enumerate(records):
        clutter = None
        if len(records) > 1 and rng.random() < args.clutter:
            clutter = renders[int(rng.choice([j for j in range(len(records)) if j != k]))]
        picture, truth = make_photo(renders[k], rng, clutter)
        name = f"{k:03d}_{record['category']}"
        buffer = io.BytesIO()
        Image.fromarray(picture).save(buffer, format="JPEG", quality=int(rng.integers(85, 96)))
        atomic_write_bytes(args.out / f"{name}.jpg", lambda h, b=buffer: h.write(b.getvalue()))
        mask = io.BytesIO()
        Image.fromarray(truth.astype(np.uint8) * 255).save(mask, format="PNG")
        atomic_write_bytes(args.out / f"{name}_truth.png", lambda h, b=mask: h.write(b.getvalue()))
        entries.append(
            {
                "id": record["id"],
                "category": record["category"],
                "photo": f"{name}.jpg",
                "truth": f"{name}_truth.png",
                "clutter": clutter is not None,
            }
        )
        if args.report:
            row = {"photo": f"{name}.jpg", "category": record["category"]}
            for source in ("plain", "segment"):
                try:
                    found = read_picture(args.out / f"{name}.jpg", background=source).mask
                    row[source] = mask_iou(found, truth)
                except PictureError:
                    row[source] = 0.0
            rows.append(row)
    text = json.dumps(
        {"data": str(args.data), "split": args.split, "seed": args.seed, "photos": entries},
        indent=1,
    ).encode("utf-8")
    atomic_write_bytes(args.out / "index.json", lambda h: h.write(text))
    print(f"{args.out}: {len(entries)} photos")
    if args.report:
        means = {s: float(np.mean([r[s] for r in rows])) for s in ("plain", "segment")}
        cluttered = [r for r, e in zip(rows, entries, strict=True) if e["clutter"]]
        lines = [
            f"# Mask IoU on {len(rows)} photo-like pictures ({args.data}, {args.split} split)",
            "",
            "| mask source | mean IoU | median | under 0.8 | cluttered pictures |",
            "|---|---:|---:|---:|---:|",
        ]
        for source in ("plain", "segment"):
            values = np.array([r[source] for r in rows])
            lines.append(
                f"| {source} | {means[source]:.3f} | {np.median(values):.3f} | "
                f"{int((values < 0.8).sum())} | "
                f"{np.mean([r[source] for r in cluttered]) if cluttered else float('nan'):.3f} |"
            )
        report = "\n".join(lines) + "\n"
        metrics = json.dumps({"mean": means, "per_photo": rows}, indent=1).encode("utf-8")
        atomic_write_bytes(args.report / "report.md", lambda h: h.write(report.encode("utf-8")))
        atomic_write_bytes(args.report / "metrics.json", lambda h: h.write(metrics))
        print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
