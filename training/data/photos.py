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
import functools
import io
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = [
    "main",
    "make_photo",
    "mask_iou",
    "read_photos",
    "BACKGROUNDS",
    "PHOTO_BACKGROUNDS",
    "TRAIN_BACKGROUNDS",
    "WORLDS",
]

BACKGROUNDS = ("coffee", "chelsea", "rocket", "astronaut", "brick", "grass", "gravel", "camera")
"""scikit-image's photographs the backgrounds of the photo-like test sets are cut from
(scenes, a person, textures)."""

PHOTO_BACKGROUNDS = (
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
"""The first fine-tuning's backgrounds: scikit-image's other photographs, and drawn ones (a
smooth colour gradient, smoothed colour noise, stripes)."""

WORLDS = ("city", "courtyard", "forest", "interior", "night", "studio", "sunrise", "sunset")
"""Blender's bundled environment photographs (`datafiles/studiolights/world`, CC0 from Poly
Haven): a hotel room, a courtyard, a garden, a city, a studio... as ``world-NAME``."""

TRAIN_BACKGROUNDS = (
    *PHOTO_BACKGROUNDS,
    *(f"world-{name}" for name in WORLDS),
    "wood",
    "tiles",
    "pebbles",
    "fibres",
    "room",
    "frames",
)
"""Backgrounds for training on photo-like pictures (`training.train_segmentation`,
`training.data.photo_views`), none of `BACKGROUNDS`: `PHOTO_BACKGROUNDS`, windows of
Blender's environment photographs (rooms, yards, streets), and drawn surfaces that walls,
floors and furniture show (wood grain, tiles, pebbles, grass or carpet fibres, a wall
meeting a floor, thin frames and poles)."""

_DRAWN = ("gradient", "noise", "stripes", "wood", "tiles", "pebbles", "fibres", "room", "frames")


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
    if name == "stripes":
        period = rng.uniform(0.03, 0.3)
        angle = rng.uniform(0, np.pi)
        phase = (np.cos(angle) * x + np.sin(angle) * y) / period
        t = (np.sin(2 * np.pi * phase) > 0)[..., None].astype(np.float64)
        return a * (1 - t) + b * t
    return _SURFACES[name](rng, *_surface_colours(rng))


def _surface_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two colours as surfaces have them: mostly muted, one a darker or lighter shade of the
    other."""
    a = rng.uniform(30, 230) + rng.normal(0, 25, size=3)
    b = a * rng.uniform(0.4, 1.6) + rng.normal(0, 15, size=3)
    return np.clip(a, 0, 255), np.clip(b, 0, 255)


def _smooth_noise(rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian-smoothed noise (SIZE, SIZE) of unit deviation."""
    from scipy import ndimage

    noise = ndimage.gaussian_filter(rng.normal(size=(SIZE, SIZE)), sigma)
    return (noise - noise.mean()) / max(float(noise.std()), 1e-6)


def _wood(rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Wood grain: bands along a random direction, bent by smooth noise."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    angle = rng.uniform(0, np.pi)
    across = -np.sin(angle) * x + np.cos(angle) * y
    phase = across * rng.uniform(3, 15) + rng.uniform(0.5, 3) * _smooth_noise(rng, 30)
    t = ((np.sin(2 * np.pi * phase) + 1) / 2) ** rng.uniform(1, 4)
    t = t + 0.15 * _smooth_noise(rng, 1.5)
    return np.clip(a * (1 - t[..., None]) + b * t[..., None], 0, 255)


def _tiles(rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Tiles or bricks: a grid of jittered colours between grout lines."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    height = rng.uniform(12, 90)
    width = height * rng.choice([1.0, rng.uniform(1.5, 3.0)])
    row = np.floor((y + rng.uniform(0, height)) / height)
    shift = rng.choice([0.0, 0.5]) * width * (row % 2)
    column = np.floor((x + shift + rng.uniform(0, width)) / width)
    cell = (row * 7919 + column * 104729).astype(np.int64) % 4096
    jitter = np.random.default_rng(int(rng.integers(2**31))).normal(size=(4096, 3)) * 14
    picture = a + jitter[cell]
    grout = rng.uniform(1, 4)
    edge = np.minimum((y + rng.uniform(0, height)) % height, (x + shift) % width) < grout
    picture[edge] = b
    return np.clip(picture, 0, 255)


def _pebbles(rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pebbles or gravel: cells around random seeds, each its own shade, dark between."""
    from scipy.spatial import cKDTree

    seeds = rng.uniform(0, SIZE, size=(int(rng.integers(40, 900)), 2))
    grid = np.stack(np.mgrid[0:SIZE, 0:SIZE], -1).reshape(-1, 2)
    distance, nearest = cKDTree(seeds).query(grid, k=2)
    shade = rng.uniform(0, 1, size=(len(seeds), 1))
    colour = a * (1 - shade) + b * shade + rng.normal(size=(len(seeds), 3)) * 10
    gap = np.clip((distance[:, 1] - distance[:, 0]) / rng.uniform(1, 6), 0, 1)[:, None]
    picture = colour[nearest[:, 0]] * (0.35 + 0.65 * gap)
    return np.clip(picture.reshape(SIZE, SIZE, 3), 0, 255)


def _fibres(rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Grass, fur or carpet: many short strokes around one direction."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.uint8(np.clip(_drawn(rng, "noise"), 0, 255)))
    draw = ImageDraw.Draw(image)
    count = int(rng.integers(800, 4000))
    start = rng.uniform(-20, SIZE + 20, size=(count, 2))
    angle = rng.uniform(0, np.pi) + rng.uniform(0.05, 1.2) * rng.normal(size=count)
    length = rng.uniform(4, 40) * rng.uniform(0.5, 1.5, size=count)
    end = start + length[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1)
    shade = rng.uniform(0, 1, size=(count, 1))
    colour = np.clip(a * (1 - shade) + b * shade, 0, 255).astype(int)
    width = int(rng.integers(1, 4))
    for p, q, c in zip(start, end, colour, strict=True):
        draw.line([tuple(p), tuple(q)], fill=tuple(c), width=width)
    return np.asarray(image, np.float64)


_FLAT = ("gradient", "noise", "stripes", "wood", "tiles", "pebbles", "fibres")


def _room(rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A wall meeting a floor at a random height, now and then with a skirting board."""
    wall, floor = (_drawn(rng, str(rng.choice(_FLAT))) for _ in range(2))
    horizon = int(rng.uniform(0.25, 0.85) * SIZE)
    picture = np.concatenate([wall[:horizon], floor[horizon:]], 0)
    if rng.random() < 0.5:
        picture[max(0, horizon - int(rng.integers(4, 24))) : horizon] = a
    return picture


def _frames(rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Thin frames and poles standing in the scene: window frames, shelves, other furniture's
    legs, cables."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.uint8(_drawn(rng, str(rng.choice(_FLAT)))))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 14))):
        colour = tuple(int(v) for v in rng.uniform(0, 255, size=3))
        width = int(rng.integers(1, 8))
        x0, y0, x1, y1 = rng.uniform(-20, SIZE + 20, size=4)
        if rng.random() < 0.5:
            draw.rectangle(
                [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=colour, width=width
            )
        else:
            draw.line([(x0, y0), (x1, y1)], fill=colour, width=width)
    return np.asarray(image, np.float64)


_SURFACES = {
    "wood": _wood,
    "tiles": _tiles,
    "pebbles": _pebbles,
    "fibres": _fibres,
    "room": _room,
    "frames": _frames,
}


SIZE = 320
"""Side of each photo in pixels."""


def _background(rng: np.random.Generator, name: str) -> np.ndarray:
    """A random window of a photograph, rescaled to SIZE, with a colour and light shift."""
    import skimage.data
    from PIL import Image

    if name in _DRAWN:
        return _drawn(rng, name)
    if name.startswith("world-"):
        return _world_window(rng, name.removeprefix("world-"))
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


@functools.cache
def _world(name: str) -> np.ndarray:
    """One of `WORLDS` (equirectangular, 1024 x 512): linear RGB float32, top row first."""
    import bpy

    folder = Path(bpy.utils.system_resource("DATAFILES", path="studiolights/world"))
    image = bpy.data.images.load(str(folder / f"{name}.exr"))
    try:
        width, height = image.size
        pixels = np.empty(width * height * image.channels, np.float32)
        image.pixels.foreach_get(pixels)
        channels = image.channels
    finally:
        bpy.data.images.remove(image)
    return np.ascontiguousarray(pixels.reshape(height, width, channels)[::-1, :, :3])


def _world_window(rng: np.random.Generator, name: str) -> np.ndarray:
    """A window of an environment photograph around its horizon, exposed at random and
    tone-mapped, rescaled to SIZE, with a colour and light shift."""
    from PIL import Image

    world = _world(name)
    height, width = world.shape[:2]
    side = int(rng.uniform(0.12, 0.3) * width)
    top = int(rng.integers(int(0.2 * height), max(int(0.8 * height) - side, int(0.2 * height)) + 1))
    top = min(top, height - side)
    left = int(rng.integers(0, width - side + 1))
    window = np.maximum(world[top : top + side, left : left + side], 0.0)
    exposure = rng.uniform(0.5, 2.0) * 0.4 / max(float(np.median(window)), 1e-4)
    tone = (1 - np.exp(-window * exposure)) ** (1 / 2.2)
    image = Image.fromarray(np.uint8(np.clip(tone * 255, 0, 255)))
    image = np.asarray(image.resize((SIZE, SIZE), Image.Resampling.BICUBIC), np.float32)
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
        help="u2netp weights to report on instead of the bundled ones "
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
