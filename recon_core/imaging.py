"""Framing of input pictures, shared by the training renders and user images.

Every network input shows the object centred, its longer bounding-box side spanning
``OBJECT_FILL`` of the square image, on a transparent background (alpha is the mask).
"""

from __future__ import annotations

import numpy as np

__all__ = ["OBJECT_FILL", "square_crop_box", "crop_resize", "crop_intrinsics", "network_input"]

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


def crop_resize(rgba: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """Cut the square ``box`` (x0, y0, side) out of ``rgba`` (H, W, 4) uint8 and resample it
    to ``size`` x ``size`` with an exact area (box) filter; outside the image is transparent.
    Colour is premultiplied by alpha while resampling so the background never bleeds into
    the object's edge. Pure numpy: the same code frames training renders and user pictures,
    in and out of Blender."""
    x0, y0, side = box
    height, width = rgba.shape[:2]
    top, bottom = max(0, int(np.floor(y0))), min(height, int(np.ceil(y0 + side)))
    left, right = max(0, int(np.floor(x0))), min(width, int(np.ceil(x0 + side)))
    if top >= bottom or left >= right:
        return np.zeros((size, size, 4), dtype=np.uint8)
    image = rgba[top:bottom, left:right].astype(np.float32) / 255.0
    image[..., :3] *= image[..., 3:4]
    rows = _box_weights(y0 - top, side, size, bottom - top).astype(np.float32)
    cols = _box_weights(x0 - left, side, size, right - left).astype(np.float32)
    out = (rows @ image.reshape(bottom - top, -1)).reshape(size, right - left, 4)
    out = (out.transpose(0, 2, 1) @ cols.T).transpose(0, 2, 1)  # then columns
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
