"""Framing of input pictures, shared by the training renders and user images.

Every network input shows the object centred, its longer bounding-box side spanning
``OBJECT_FILL`` of the square image, on a transparent background (alpha is the mask).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "OBJECT_FILL",
    "square_crop_box",
    "window_bounds",
    "crop_resize",
    "crop_intrinsics",
    "network_input",
]

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


def _box_weights(start: float, side: float, size: int, length: int) -> np.ndarray:
    """(size, length) weights: how much of input pixel j lies under output pixel i of the
    window [start, start + side), normalised by the output pixel's footprint."""
    step = side / size
    lo = start + step * np.arange(size)[:, None]
    hi = lo + step
    j = np.arange(length)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None)
    return overlap / step


def _along(image: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """``weights`` (size, length) applied along ``axis`` (0 or 1) of ``image`` (H, W, 4)
    float32. Each output pixel reads only the few input pixels under it, so the weights are
    a band: as a sparse matrix the product costs the input's size, where a dense one would
    cost that times the output's side."""
    from scipy import sparse

    band = sparse.csr_matrix(weights.astype(np.float32))
    moved = np.moveaxis(image, axis, 0)
    out = band @ moved.reshape(moved.shape[0], -1)
    return np.moveaxis(np.asarray(out, np.float32).reshape(len(weights), *moved.shape[1:]), 0, axis)


BLOCKS_PER_PIXEL = 8
"""`crop_resize` first averages blocks of input pixels (Pillow's `Image.reduce`, on colour
premultiplied by alpha) when an output pixel spans at least twice this many input pixels
across (a photo framed for the network): blocks as large as leave this many of them across
an output pixel, so that the exact filter runs on a picture a few times the output's size.
Without it, a 21-megapixel photo framed to 128 pixels went through a 350 MB float copy.
Training renders (about 5 input pixels an output pixel at most) never take this path."""


def _shrunk(rgba: np.ndarray, factor: int) -> np.ndarray:
    """Premultiplied float32 image of ``rgba``, each pixel the mean of a ``factor`` x
    ``factor`` block (a block cut by the image's edge: the mean of its pixels inside)."""
    from PIL import Image

    region = np.ascontiguousarray(rgba)
    reduced = Image.fromarray(region, "RGBA").convert("RGBa").reduce(factor)
    return np.asarray(reduced, dtype=np.float32) / 255.0


def window_bounds(
    box: tuple[float, float, float], height: int, width: int
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right): the pixels of an image (height, width) that the square
    ``box`` (x0, y0, side) touches (empty when it misses the image)."""
    x0, y0, side = box
    top, bottom = max(0, int(np.floor(y0))), min(height, int(np.ceil(y0 + side)))
    left, right = max(0, int(np.floor(x0))), min(width, int(np.ceil(x0 + side)))
    return top, bottom, left, right


def crop_resize(rgba: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """Cut the square ``box`` (x0, y0, side) out of ``rgba`` (H, W, 4) uint8 and resample it
    to ``size`` x ``size`` with an area (box) filter; outside the image is transparent.
    Colour is premultiplied by alpha while resampling so the background never bleeds into
    the object's edge. Pure numpy for training renders, in and out of Blender: the filter is
    exact unless an output pixel spans ``2 * BLOCKS_PER_PIXEL`` input pixels across or more;
    then blocks of input pixels are averaged first (see `BLOCKS_PER_PIXEL`), and an output
    pixel differs from the exact filter's by a couple of levels of alpha, and of colour by
    at most the contrast of an edge inside it times the blocks' share of its side."""
    x0, y0, side = box
    top, bottom, left, right = window_bounds(box, *rgba.shape[:2])
    if top >= bottom or left >= right:
        return np.zeros((size, size, 4), dtype=np.uint8)
    factor = int(side / size) // BLOCKS_PER_PIXEL
    if factor >= 2:
        rows, cols = -(-(bottom - top) // factor), -(-(right - left) // factor)
        window = rgba[top : top + rows * factor, left : left + cols * factor]
        image = _shrunk(window, factor)
        y_start, x_start, span = (y0 - top) / factor, (x0 - left) / factor, side / factor
    else:
        image = rgba[top:bottom, left:right].astype(np.float32) / 255.0
        image[..., :3] *= image[..., 3:4]
        y_start, x_start, span = y0 - top, x0 - left, side
    out = _along(image, _box_weights(y_start, span, size, image.shape[0]), 0)  # rows
    out = _along(out, _box_weights(x_start, span, size, image.shape[1]), 1)  # then columns
    alpha = out[..., 3:4]
    out[..., :3] = np.where(alpha > 1e-8, out[..., :3] / np.maximum(alpha, 1e-8), 0.0)
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


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


def network_input(images: np.ndarray, size: int | None = None):
    """Framed RGBA images (N, H, W, 4), uint8 or float in [0, 1] -> torch float tensor
    (N, 4, size, size), resized with an area filter. The data loader and inference both
    use it, so a network sees training and user pictures resampled the same way."""
    import torch
    import torch.nn.functional as F

    tensor = torch.as_tensor(np.asarray(images))
    tensor = tensor.float() / 255.0 if tensor.dtype == torch.uint8 else tensor.float()
    tensor = tensor.permute(0, 3, 1, 2)
    if size is not None and tensor.shape[-1] != size:
        tensor = F.interpolate(tensor, size=(size, size), mode="area")
    return tensor.contiguous()
