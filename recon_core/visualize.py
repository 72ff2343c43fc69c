"""Small image helpers for previews (numpy in, uint8 RGB out)."""

from __future__ import annotations

import numpy as np

from recon_core.geometry import FIXED_VIEW_DISTANCE, ORTHO_HALF_EXTENT

__all__ = ["depth_image", "rgba_image", "resize_nearest", "hstack"]


def depth_image(depth: np.ndarray) -> np.ndarray:
    """Orthographic depth (H, W) around FIXED_VIEW_DISTANCE -> grey RGB, near is bright,
    empty (0) is black."""
    near = FIXED_VIEW_DISTANCE - ORTHO_HALF_EXTENT
    far = FIXED_VIEW_DISTANCE + ORTHO_HALF_EXTENT
    shade = np.clip((far - depth) / (far - near), 0, 1) * 200 + 55
    shade = np.where(depth > 0, shade, 0).astype(np.uint8)
    return np.repeat(shade[..., None], 3, axis=-1)


def rgba_image(rgba: np.ndarray) -> np.ndarray:
    """(4, H, W) or (H, W, 4) float in [0, 1] -> RGB uint8 over white."""
    if rgba.shape[0] == 4:
        rgba = np.moveaxis(rgba, 0, -1)
    alpha = rgba[..., 3:4]
    rgb = rgba[..., :3] * alpha + (1 - alpha)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def resize_nearest(image: np.ndarray, size: int) -> np.ndarray:
    rows = np.arange(size) * image.shape[0] // size
    cols = np.arange(size) * image.shape[1] // size
    return image[rows][:, cols]


def hstack(tiles: list[np.ndarray], size: int = 128) -> np.ndarray:
    return np.concatenate([resize_nearest(t, size) for t in tiles], axis=1)
