"""A closed mesh from a point cloud: occupancy by splatting, closing and hole filling, a light
smoothing, then marching cubes on the same padded grid as implicit extraction."""

from __future__ import annotations

import numpy as np

from recon_core.extraction import ExtractionError, Mesh, marching_cubes
from recon_core.geometry import PADDED_HALF_EXTENT

__all__ = ["mesh_from_points"]


def mesh_from_points(
    points: np.ndarray, resolution: int = 96, closing: int | None = None, smooth: float = 1.0
) -> Mesh:
    """Closed mesh around ``points`` (N, 3) in the object frame.

    The points mark the vertices of an (R+1)^3 grid over the padded box; a morphological
    closing of ``closing`` cells (default: enough to bridge the cloud's typical point
    spacing) joins them into a shell, whose inside is then filled; a Gaussian blur of
    ``smooth`` cells rounds the voxel steps (never emptying an occupied voxel, so a sheet one
    cell thick survives) before marching cubes at 0.5."""
    from scipy import ndimage
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    if len(points) < 4 or not np.isfinite(points).all():
        raise ExtractionError("empty result: the point cloud has too few or non-finite points")
    if not 16 <= resolution <= 512:
        raise ExtractionError(f"resolution must be between 16 and 512, got {resolution}")
    cell = 2 * PADDED_HALF_EXTENT / resolution
    if closing is None:
        sample = points[:: max(1, len(points) // 4000)]
        spacing = np.median(cKDTree(points).query(sample, k=2)[0][:, 1])
        closing = int(np.clip(np.ceil(1.5 * spacing / cell), 1, 6))
    index = np.round((points + PADDED_HALF_EXTENT) / cell).astype(np.int64)
    index = np.clip(index, 0, resolution)
    grid = np.zeros((resolution + 1,) * 3, dtype=bool)
    grid[index[:, 0], index[:, 1], index[:, 2]] = True
    margin = closing + 1  # room so the closing is not cut by the box
    grid = np.pad(grid, margin)
    grid = ndimage.binary_closing(grid, ndimage.generate_binary_structure(3, 1), closing)
    grid = ndimage.binary_fill_holes(grid)[margin:-margin, margin:-margin, margin:-margin]
    values = grid.astype(np.float32)
    if smooth > 0:  # rounds the voxel steps; occupied voxels stay inside (thin sheets too)
        values = np.maximum(ndimage.gaussian_filter(values, smooth), 0.55 * values)
    return marching_cubes(values, 0.5)
