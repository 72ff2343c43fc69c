"""Render the example pictures in ``examples/``: test-split Sweet Home 3D shapes (never seen
in training) as transparent PNGs, a few of them on plain backgrounds as JPEGs without
alpha, the way a photo of an object on a table or a studio sweep looks, and a few
composited onto photographs (`training.data.photos.make_photo`), for the segmentation
network to cut out.

    python -m training.tools.examples --data data/sweethome3d --out examples
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["main", "EXAMPLES"]

EXAMPLES = (
    # (shape id, azimuth, elevation, background or None for alpha)
    ("sweethome3d/Blend Swap CC-0#armchair", 35.0, 20.0, None),
    ("sweethome3d/Blend Swap CC-0#thonet", 320.0, 15.0, None),
    ("sweethome3d/Blend Swap CC-0#sofa", 25.0, 25.0, None),
    ("sweethome3d/Blend Swap CC-0#desklamp", 300.0, 20.0, None),
    ("sweethome3d/Blend Swap CC-0#islandExtension", 30.0, 30.0, None),
    ("sweethome3d/Blend Swap CC-0#wardrobeWithSlidingDoors", 330.0, 15.0, None),
    ("sweethome3d/Blend Swap CC-0#chair2", 40.0, 20.0, "white"),
    ("sweethome3d/Blend Swap CC-0#upperCabinet", 20.0, 10.0, "studio"),
)
SIZE = 384
PHOTOS = (
    # (example name, scikit-image photograph, seed)
    ("sofa", "brick", 3),
    ("desklamp", "rocket", 11),
    ("armchair", "gravel", 7),
)
PHOTO_CREDITS = {
    "brick": "CC0Textures (CC0)",
    "gravel": "CC0Textures (CC0)",
    "rocket": "SpaceX (public domain)",
}


def _background(kind: str, size: int) -> np.ndarray:
    if kind == "white":
        return np.full((size, size, 3), 242.0)
    rows = np.linspace(0.0, 1.0, size)[:, None, None]
    return np.broadcast_to(205.0 - 70.0 * rows**1.5, (size, size, 3)).copy()  # a sweep


def _photo_examples(out: Path, entries: dict[str, dict]) -> list[str]:
    """The photo-like pictures, made from the transparent examples just written; their
    README lines."""
    from PIL import Image

    from recon_core.files import atomic_write_bytes
    from training.data.photos import make_photo

    lines = [
        "",
        "Photo-like pictures: the renders above composited onto photographs by",
        "`training.data.photos.make_photo` (relit, with a soft shadow, saved as JPEG), for the",
        "segmentation network to cut out again. The backgrounds come from scikit-image's data.",
        "",
        "| file | model | background | seed |",
        "|---|---|---|---|",
    ]
    for name, background, seed in PHOTOS:
        render = np.asarray(Image.open(out / f"{name}.png").convert("RGBA"))
        photo, _ = make_photo(render, np.random.default_rng(seed), background=background)
        target = out / f"{name}_{background}.jpg"
        image = Image.fromarray(photo)
        atomic_write_bytes(target, lambda handle, im=image: im.save(handle, "JPEG", quality=90))
        entry = entries[name]
        lines.append(
            f"| {target.name} | {name} ({entry['author']}, {entry['licence']}) | "
            f"{background} ({PHOTO_CREDITS[background]}) | {seed} |"
        )
        print(target)
    return lines


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.tools.examples",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("data/sweethome3d"),
        help="prepared Sweet Home 3D dataset (for the splits)",
    )
    parser.add_argument("--out", type=Path, default=Path("examples"))
    args = parser.parse_args(None if argv is None else list(argv))
    from PIL import Image

    from recon_core.data import read_index
    from recon_core.files import atomic_write_bytes
    from recon_core.geometry import Camera, look_at, perspective_intrinsics, view_direction
    from training.data.pipeline import load_shape
    from training.data.prepare import _parser as prepare_parser
    from training.data.prepare import source_specs
    from training.data.render import BlenderRenderer, RenderSettings

    test = {r["id"]: r for r in read_index(args.data)["records"] if r["split"] == "test"}
    specs = {
        s.id: s
        for s in source_specs(
            prepare_parser().parse_args(["--source", "sweethome3d", "--out", str(args.out)])
        )
    }
    renderer = BlenderRenderer(RenderSettings(views=1, size=SIZE, supersample=2))
    args.out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Example pictures",
        "",
        "Renders of test-split shapes of the Sweet Home 3D library (no bundled model saw "
        "them in training), made by `python -m training.tools.examples`.",
        "",
        "| file | model | author | licence | background |",
        "|---|---|---|---|---|",
    ]
    rng = np.random.default_rng(7)
    for shape_id, azimuth, elevation, background in EXAMPLES:
        if shape_id not in test:
            print(f"error: {shape_id} is not in the test split of {args.data}", file=sys.stderr)
            return 2
        shape = load_shape(specs[shape_id])
        eye = 2.2 * view_direction(math.radians(azimuth), math.radians(elevation))
        size = SIZE * 2
        fov = 2.0 * math.asin(0.87 / 2.2) * 1.05
        camera = Camera(look_at(eye), perspective_intrinsics(fov, size), "perspective", size, size)
        rgba = renderer.render(shape, [camera], rng)[0][0]
        name = shape_id.split("#")[-1]
        if background is None:
            target, image = args.out / f"{name}.png", Image.fromarray(rgba)
        else:
            alpha = rgba[..., 3:4].astype(np.float64) / 255.0
            rgb = rgba[..., :3] * alpha + _background(background, SIZE) * (1.0 - alpha)
            target = args.out / f"{name}_{background}.jpg"
            image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
        fmt = "PNG" if target.suffix == ".png" else "JPEG"
        atomic_write_bytes(target, lambda handle, im=image, f=fmt: im.save(handle, format=f))
        entry = test[shape_id]
        lines.append(
            f"| {target.name} | {name} | {entry['author']} | {entry['licence']} | "
            f"{background or 'transparent'} |"
        )
        print(target)
    lines += _photo_examples(args.out, {s.split("#")[-1]: test[s] for s, *_ in EXAMPLES})
    text = ("\n".join(lines) + "\n").encode("utf-8")
    atomic_write_bytes(args.out / "README.md", lambda handle: handle.write(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
