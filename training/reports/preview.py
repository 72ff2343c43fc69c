"""Preview sheets of prepared records, for a person to check what a dataset holds.

    python -m training.reports.preview DATASET --out sheet.png [--per-category 1] [--ids ID ...]

One row per record: six input renders; the eight fixed-view depth maps; four novel-view
depth maps; occupancy slices through the centre (XY seen from above, XZ from the front,
YZ from the right side: the object's back is on the right), occupancy samples near each
plane drawn red inside and grey outside over the 64^3 voxel slice in blue.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from recon_core.data import read_index, read_record, unpack_voxels
from recon_core.geometry import FIXED_VIEW_DISTANCE, ORTHO_HALF_EXTENT, PADDED_HALF_EXTENT

__all__ = ["record_row", "dataset_sheet", "main"]

TILE = 128


def _depth_tile(depth: np.ndarray) -> np.ndarray:
    near, far = FIXED_VIEW_DISTANCE - ORTHO_HALF_EXTENT, FIXED_VIEW_DISTANCE + ORTHO_HALF_EXTENT
    shade = np.clip((far - depth) / (far - near), 0, 1) * 200 + 55
    shade[depth <= 0] = 0
    return np.repeat(shade[..., None], 3, axis=2).astype(np.uint8)


def _render_tile(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return (rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)


def _slice_tile(
    points: np.ndarray, labels: np.ndarray, voxels: np.ndarray, axis: int
) -> np.ndarray:
    """Plane ``axis`` = 0 seen so that image right/up are the remaining axes (for the YZ
    plane: +Y right, +Z up; XZ: +X right, +Z up; XY: +X right, +Y up)."""
    other = [a for a in range(3) if a != axis]
    res = voxels.shape[0]
    layer = np.take(voxels, res // 2, axis=axis)  # indexed by the two other axes
    tile = np.full((TILE, TILE, 3), 255, dtype=np.uint8)
    cells = np.kron(layer.T[::-1], np.ones((TILE // res, TILE // res), dtype=bool))
    tile[cells] = (200, 215, 255)
    near = np.abs(points[:, axis]) < 0.01
    uv = (points[near][:, other] + PADDED_HALF_EXTENT) / (2 * PADDED_HALF_EXTENT) * TILE
    col = np.clip(uv[:, 0].astype(int), 0, TILE - 1)
    row = np.clip(TILE - 1 - uv[:, 1].astype(int), 0, TILE - 1)
    inside = labels[near].astype(bool)
    tile[row[~inside], col[~inside]] = (150, 150, 150)
    tile[row[inside], col[inside]] = (220, 30, 30)
    return tile


def record_row(path: Path) -> tuple[np.ndarray, dict]:
    """One preview row (TILE, 21 * TILE, 3) for a record, and its meta."""
    arrays, meta = read_record(path)
    tiles = [_render_tile(r) for r in arrays["renders"][:6]]
    tiles += [_depth_tile(d) for d in arrays["fixed_depth"][:8]]
    tiles += [_depth_tile(d) for d in arrays["novel_depth"][:4]]
    points = arrays["occupancy_points"].astype(np.float32)
    labels = np.unpackbits(arrays["occupancy_labels"], count=len(points))
    voxels = unpack_voxels(arrays["voxels"], int(meta["voxel_resolution"]))
    tiles += [_slice_tile(points, labels, voxels, axis) for axis in (2, 1, 0)]
    tiles = [t if t.shape[0] == TILE else _resize(t) for t in tiles]
    return np.concatenate(tiles, axis=1), meta


def _resize(tile: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(tile).resize((TILE, TILE)))


def dataset_sheet(root: Path, ids: Iterable[str] | None = None, per_category: int = 1):
    """A PIL image with a labelled row per chosen record."""
    from PIL import Image, ImageDraw

    index = read_index(root)
    records = index["records"]
    if ids:
        wanted = list(ids)
        by_id = {r["id"]: r for r in records}
        missing = [i for i in wanted if i not in by_id]
        if missing:
            raise SystemExit(f"error: {root}: no records {missing}")
        chosen = [by_id[i] for i in wanted]
    else:
        chosen, seen = [], {}
        for r in records:
            key = (r["source"], r["category"])
            if seen.get(key, 0) < per_category:
                chosen.append(r)
                seen[key] = seen.get(key, 0) + 1
    if not chosen:
        raise SystemExit(f"error: {root}: no records to show")
    label_h = 16
    rows = []
    for r in chosen:
        row, meta = record_row(root / r["file"])
        rows.append(
            (
                row,
                f"{r['id']}  [{r['category']}, {r['split']}]  "
                f"inside {meta.get('inside_fraction', 0):.3f}",
            )
        )
    width = rows[0][0].shape[1]
    sheet = Image.new("RGB", (width, len(rows) * (TILE + label_h) + label_h), "white")
    draw = ImageDraw.Draw(sheet)
    headings = ["input renders", "fixed views (depth)", "novel views", "XY / XZ / YZ slices"]
    for x, text in zip((0, 6 * TILE, 14 * TILE, 18 * TILE), headings, strict=False):
        draw.text((x + 4, 2), text, fill="black")
    for k, (row, text) in enumerate(rows):
        y = label_h + k * (TILE + label_h)
        draw.text((4, y + 2), text, fill="black")
        sheet.paste(Image.fromarray(row), (0, y + label_h))
    return sheet


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.reports.preview",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--per-category", type=int, default=1)
    parser.add_argument("--ids", nargs="+", help="show these records instead")
    args = parser.parse_args(None if argv is None else list(argv))
    sheet = dataset_sheet(args.dataset, args.ids, args.per_category)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"preview sheet: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
