"""Preview images of results without Blender: a mesh or a point cloud drawn by a small
point-splatting z-buffer renderer (numpy), from three viewpoints beside the input picture."""

from __future__ import annotations

import math

import numpy as np

from recon_core.geometry import Camera, look_at, perspective_intrinsics, project, view_direction

__all__ = ["render_splats", "preview_camera", "preview_sheet", "PREVIEW_VIEWS"]

PREVIEW_VIEWS = ((30.0, 20.0), (150.0, 20.0), (270.0, 60.0))
"""(azimuth, elevation) in degrees: front-right, back-left and a high side view."""
_LIGHT = np.array([0.4, -0.6, 0.7]) / np.linalg.norm([0.4, -0.6, 0.7])


def render_splats(
    points: np.ndarray,
    camera: Camera,
    colours: np.ndarray | None = None,
    normals: np.ndarray | None = None,
    radius: int = 1,
    background: int = 255,
) -> np.ndarray:
    """RGB image (H, W, 3) uint8 of points drawn as (2r+1)^2 squares, nearest first; shaded
    by a headlight-like key light when normals are given."""
    uv, depth = project(points, camera.extrinsic, camera.intrinsic, camera.projection)
    base = np.full((len(points), 3), 170.0) if colours is None else colours.astype(np.float64)
    if normals is not None:
        to_camera = camera.position[None, :] - points
        facing = np.sign(np.einsum("ij,ij->i", normals, to_camera))[:, None]
        lambert = np.abs(normals @ _LIGHT)[:, None] * 0.6 + 0.4
        base = base * np.where(facing >= 0, lambert, 0.5)
    else:
        near, far = depth.min(initial=0.0), depth.max(initial=1.0)
        base = base * (1.0 - 0.4 * ((depth - near) / max(far - near, 1e-9)))[:, None]
    width, height = camera.width, camera.height
    ij = np.floor(uv).astype(np.int64)
    pixels, depths, sources = [], [], []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            x, y = ij[:, 0] + dx, ij[:, 1] + dy
            ok = (x >= 0) & (x < width) & (y >= 0) & (y < height) & (depth > 0)
            pixels.append(y[ok] * width + x[ok])
            depths.append(depth[ok])
            sources.append(np.flatnonzero(ok))
    pixel, order_depth, source = map(np.concatenate, (pixels, depths, sources))
    order = np.lexsort((order_depth, pixel))  # by pixel, nearest first
    pixel, source = pixel[order], source[order]
    first = np.ones(len(pixel), dtype=bool)
    first[1:] = pixel[1:] != pixel[:-1]
    image = np.full((height * width, 3), background, dtype=np.uint8)
    image[pixel[first]] = np.clip(base[source[first]], 0, 255).astype(np.uint8)
    return image.reshape(height, width, 3)


def preview_camera(azimuth: float, elevation: float, size: int) -> Camera:
    """A perspective camera framing the unit box from (azimuth, elevation) in degrees."""
    distance = 2.4
    eye = distance * view_direction(math.radians(azimuth), math.radians(elevation))
    fov = 2.0 * math.asin(0.62 / distance)
    return Camera(look_at(eye), perspective_intrinsics(fov, size), "perspective", size, size)


def preview_sheet(
    picture_rgb: np.ndarray,
    points: np.ndarray,
    colours: np.ndarray | None = None,
    normals: np.ndarray | None = None,
    size: int = 256,
) -> np.ndarray:
    """One row: the input picture, then the result from `PREVIEW_VIEWS`."""
    from PIL import Image

    picture = Image.fromarray(picture_rgb).convert("RGB")
    scale = size / max(picture.size)
    picture = picture.resize(
        (max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
        Image.Resampling.LANCZOS,
    )
    tile = np.full((size, size, 3), 255, dtype=np.uint8)
    h, w = picture.height, picture.width
    tile[(size - h) // 2 : (size - h) // 2 + h, (size - w) // 2 : (size - w) // 2 + w] = picture
    radius = 1 if normals is not None else 2
    views = [
        render_splats(points, preview_camera(a, e, size), colours, normals, radius)
        for a, e in PREVIEW_VIEWS
    ]
    return np.concatenate([tile, *views], axis=1)
