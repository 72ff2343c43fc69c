"""Framing of input pictures, shared by the training renders and user images.

Every network input shows the object centred, its longer bounding-box side spanning
``OBJECT_FILL`` of the square image, on a transparent background (alpha is the mask).
"""

from __future__ import annotations

import numpy as np

__all__ = ["OBJECT_FILL", "square_crop_box", "crop_resize", "crop_intrinsics"]

OBJECT_FILL = 0.8
"""Fraction of the framed image's side taken by the object's longer bounding-box side."""


def square_crop_box(mask: np.ndarray, fill: float = OBJECT_FILL) -> tuple[float, float, float]:
    """Square window (x0, y0, side) in pixels centred on the bounding box of ``mask`` (H, W)
    whose longer side becomes ``fill`` of the window. Raises ValueError on an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        raise ValueError("empty mask: no object in the image")
    y0, y1 = rows[0], rows[-1] + 1
    x0, x1 = cols[0], cols[-1] + 1
    side = max(x1 - x0, y1 - y0) / fill
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return cx - side / 2.0, cy - side / 2.0, side


def crop_resize(rgba: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """Cut the square ``box`` (x0, y0, side) out of ``rgba`` (H, W, 4) uint8, padding with
    transparent black outside the image, and resample it to ``size`` x ``size`` (area
    filter when shrinking, bicubic when enlarging). Colour is premultiplied by alpha while
    resampling so the background never bleeds into the object's edge."""
    from PIL import Image

    x0, y0, side = box
    height, width = rgba.shape[:2]
    pad_left = int(np.ceil(max(0.0, -x0)))
    pad_top = int(np.ceil(max(0.0, -y0)))
    pad_right = int(np.ceil(max(0.0, x0 + side - width)))
    pad_bottom = int(np.ceil(max(0.0, y0 + side - height)))
    image = Image.fromarray(np.ascontiguousarray(rgba), "RGBA").convert("RGBa")
    if pad_left or pad_top or pad_right or pad_bottom:
        canvas = Image.new("RGBa", (width + pad_left + pad_right, height + pad_top + pad_bottom))
        canvas.paste(image, (pad_left, pad_top))
        image = canvas
    left, top = x0 + pad_left, y0 + pad_top
    resample = Image.Resampling.BOX if side >= size else Image.Resampling.BICUBIC
    out = image.resize((size, size), resample=resample, box=(left, top, left + side, top + side))
    return np.asarray(out.convert("RGBA"))


def crop_intrinsics(
    intrinsic: np.ndarray, box: tuple[float, float, float], size: int
) -> np.ndarray:
    """Intrinsics (3, 3) of the image cut out by `crop_resize`."""
    x0, y0, side = box
    scale = size / side
    out = intrinsic.astype(np.float64).copy()
    out[0, 0] *= scale
    out[1, 1] *= scale
    out[0, 2] = (intrinsic[0, 2] - x0) * scale
    out[1, 2] = (intrinsic[1, 2] - y0) * scale
    return out
