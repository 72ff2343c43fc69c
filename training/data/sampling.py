"""Inside/outside, occupancy samples, voxel grids and outer-surface points for one shape.

Inside means *not reachable from outside*: the surface is voxelised at ``resolution``^3 over
the padded box, small holes are closed, and the free space connected to the box border is
flood-filled. Everything the flood cannot reach is solid, so non-watertight meshes work, a
closed wardrobe built from thin panels is a solid block (as a picture shows it), and interior
faces no camera can see are ignored.

Hole closing: the surface voxels are dilated by ``closing`` voxels before the flood, which
seals holes up to about ``2 * closing`` voxels wide; the flood is then grown back through
free space by ``restore`` voxels, which re-opens the thin band the dilation took from the
outside and any slot or gap up to ``2 * (restore - closing)`` voxels deep. Behind a sealed
hole the outside leaks at most ``restore - closing`` voxels inwards.

Point labels are exact away from the surface (a voxel with no surface in it lies wholly on
one side). In voxels the surface passes through, the point is compared with the nearest
surface sample: its face normal is oriented by looking ``2`` voxels along either side, and
the point is inside when it lies behind the surface. Sheets thinner than about two voxels
have no inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from recon_core.data import voxel_index
from recon_core.geometry import PADDED_HALF_EXTENT

__all__ = [
    "OccupancySettings",
    "SolidGrid",
    "sample_surface_grid",
    "sample_surface_random",
    "solid_grid",
    "label_points",
    "occupancy_samples",
    "outer_surface_samples",
    "downsample_voxels",
]

OUTSIDE, SURFACE, INSIDE = 0, 1, 2


@dataclass
class OccupancySettings:
    """How occupancy, voxels and surface points are computed and sampled."""

    resolution: int = 256
    """Flood-fill grid resolution over the padded box."""
    closing: int = 2
    """Surface dilation (voxels) before the flood: seals holes up to about twice this."""
    restore: int = 6
    """Geodesic growth (voxels) of the flooded outside after the flood."""
    uniform_points: int = 100_000
    """Occupancy samples uniform in the padded box (IoU is measured on these)."""
    near_points: int = 100_000
    """Occupancy samples near the surface (surface point plus Gaussian noise)."""
    near_sigmas: tuple[float, ...] = (0.005, 0.02)
    """Noise scales of the near-surface samples, equally shared."""
    surface_points: int = 100_000
    """Outer-surface points with normals kept for evaluation."""
    voxel_resolution: int = 64
    """Resolution of the stored voxel grid."""


@dataclass
class SolidGrid:
    """Per-voxel state over the padded box: 0 outside, 1 surface, 2 inside; plus the dense
    surface samples and their (unoriented) face normals used to label surface voxels."""

    state: np.ndarray
    samples: np.ndarray
    normals: np.ndarray
    tree: cKDTree

    @property
    def resolution(self) -> int:
        return self.state.shape[0]


def _face_normals(tri: np.ndarray) -> np.ndarray:
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(length, 1e-30)


def sample_surface_grid(
    vertices: np.ndarray, faces: np.ndarray, spacing: float
) -> tuple[np.ndarray, np.ndarray]:
    """Systematic samples on every triangle, no two neighbours further apart than
    ``spacing``, with vertices and edges included: (points (K, 3), face index (K,)).

    Each triangle is swept in rows parallel to its longest edge, so the count grows with its
    area and edge lengths, not with the square of its longest edge (slivers stay cheap).
    """
    tri = vertices[faces]
    edges = np.stack([tri[:, 2] - tri[:, 1], tri[:, 0] - tri[:, 2], tri[:, 1] - tri[:, 0]], 1)
    lengths = np.linalg.norm(edges, axis=2)
    longest = lengths.argmax(1)  # edge opposite vertex `longest`
    rows = np.arange(len(tri))
    apex = tri[rows, longest]
    base0 = tri[rows, (longest + 1) % 3]
    base1 = tri[rows, (longest + 2) % 3]
    base_len = lengths[rows, longest]
    area2 = np.linalg.norm(np.cross(base1 - base0, apex - base0), axis=1)
    height = area2 / np.maximum(base_len, 1e-30)
    n_along = np.maximum(np.ceil(base_len / spacing).astype(np.int64), 1)
    n_across = np.maximum(np.ceil(height / spacing).astype(np.int64), 1)
    counts = (n_along + 1) * (n_across + 1)
    face = np.repeat(rows, counts)
    start = np.repeat(np.cumsum(counts) - counts, counts)
    local = np.arange(counts.sum()) - start
    i = local % (n_along[face] + 1)
    j = local // (n_along[face] + 1)
    w = (j / n_across[face])[:, None]
    u = (i / n_along[face])[:, None]
    left = base0[face] + (apex[face] - base0[face]) * w
    right = base1[face] + (apex[face] - base1[face]) * w
    return left + (right - left) * u, face


def sample_surface_random(
    vertices: np.ndarray, faces: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted uniform samples: (points (count, 3), face index (count,))."""
    tri = vertices[faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    face = rng.choice(len(faces), size=count, p=area / area.sum())
    r1, r2 = rng.random(count), rng.random(count)
    s = np.sqrt(r1)
    a, b, c = 1.0 - s, s * (1.0 - r2), s * r2
    t = tri[face]
    return a[:, None] * t[:, 0] + b[:, None] * t[:, 1] + c[:, None] * t[:, 2], face


def solid_grid(vertices: np.ndarray, faces: np.ndarray, settings: OccupancySettings) -> SolidGrid:
    """Voxelise the surface, close small holes, flood the outside from the box border."""
    res = settings.resolution
    voxel = 2.0 * PADDED_HALF_EXTENT / res
    samples, _ = sample_surface_grid(vertices, faces, voxel / 2.0)
    idx = voxel_index(samples, res)
    shell = np.zeros((res, res, res), dtype=bool)
    shell[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    sealed = shell
    if settings.closing:  # dilation by a (2k+1)^3 cube, separably
        for axis in range(3):
            sealed = ndimage.maximum_filter1d(sealed, 2 * settings.closing + 1, axis=axis)
    labels, count = ndimage.label(~sealed)  # 6-connected free space
    border = np.concatenate(
        [
            labels[0].ravel(),
            labels[-1].ravel(),
            labels[:, 0].ravel(),
            labels[:, -1].ravel(),
            labels[:, :, 0].ravel(),
            labels[:, :, -1].ravel(),
        ]
    )
    reaches_border = np.zeros(count + 1, dtype=bool)
    reaches_border[border] = True
    reaches_border[0] = False
    outside = reaches_border[labels]
    if settings.restore:
        outside = ndimage.binary_dilation(outside, iterations=settings.restore, mask=~shell)
    state = np.full((res, res, res), INSIDE, dtype=np.uint8)
    state[outside] = OUTSIDE
    state[shell] = SURFACE
    # A coarser set (one voxel apart) is plenty to find the surface beside a point.
    samples, face = sample_surface_grid(vertices, faces, voxel)
    normals = _face_normals(vertices[faces])[face]
    return SolidGrid(state=state, samples=samples, normals=normals, tree=cKDTree(samples))


def _states_at(grid: SolidGrid, points: np.ndarray) -> np.ndarray:
    idx = voxel_index(points, grid.resolution)
    return grid.state[idx[:, 0], idx[:, 1], idx[:, 2]]


def _orient(grid: SolidGrid, q: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normals ``n`` of surface points ``q`` turned to point outwards, and a verdict per
    point: +1 outward side found, 0 thin sheet (outside on both sides), -1 buried (no
    outside within two voxels on either side)."""
    step = 2.0 * (2.0 * PADDED_HALF_EXTENT / grid.resolution)
    ahead = _states_at(grid, q + step * n) == OUTSIDE
    behind = _states_at(grid, q - step * n) == OUTSIDE
    oriented = np.where((behind & ~ahead)[:, None], -n, n)
    verdict = np.where(ahead ^ behind, 1, np.where(ahead & behind, 0, -1))
    return oriented, verdict


def label_points(grid: SolidGrid, points: np.ndarray) -> np.ndarray:
    """Inside (True) / outside (False) for ``points`` (N, 3)."""
    state = _states_at(grid, points)
    inside = state == INSIDE
    on_surface = np.flatnonzero(state == SURFACE)
    if len(on_surface):
        p = points[on_surface]
        _, nearest = grid.tree.query(p)
        normal, verdict = _orient(grid, grid.samples[nearest], grid.normals[nearest])
        behind = np.einsum("ij,ij->i", p - grid.samples[nearest], normal) < 0
        inside[on_surface] = np.where(verdict == 1, behind, verdict == -1)
    return inside


def occupancy_samples(
    grid: SolidGrid,
    vertices: np.ndarray,
    faces: np.ndarray,
    settings: OccupancySettings,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform then near-surface sample points (float16, labelled after rounding so the
    stored coordinates and labels agree) and their inside labels."""
    uniform = rng.uniform(-PADDED_HALF_EXTENT, PADDED_HALF_EXTENT, (settings.uniform_points, 3))
    base, _ = sample_surface_random(vertices, faces, settings.near_points, rng)
    sigmas = np.repeat(
        np.asarray(settings.near_sigmas), -(-settings.near_points // len(settings.near_sigmas))
    )[: settings.near_points]
    near = base + rng.normal(size=base.shape) * sigmas[:, None]
    points = np.clip(np.concatenate([uniform, near]), -PADDED_HALF_EXTENT, PADDED_HALF_EXTENT)
    points = points.astype(np.float16)
    return points, label_points(grid, points.astype(np.float64))


def outer_surface_samples(
    grid: SolidGrid,
    vertices: np.ndarray,
    faces: np.ndarray,
    count: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` area-uniform samples of the surface that can be seen from outside, with
    outward unit normals. Interior faces are rejected; sampling repeats until enough."""
    normals_all = _face_normals(vertices[faces])
    kept_points, kept_normals, total = [], [], 0
    for _ in range(50):
        points, face = sample_surface_random(vertices, faces, max(count, 10_000), rng)
        n, verdict = _orient(grid, points, normals_all[face])
        keep = verdict >= 0
        kept_points.append(points[keep])
        kept_normals.append(n[keep])
        total += int(keep.sum())
        if total >= count:
            break
    points = np.concatenate(kept_points)[:count]
    normals = np.concatenate(kept_normals)[:count]
    if len(points) < count:
        raise ValueError("too little outer surface to sample")
    return points.astype(np.float32), normals.astype(np.float16)


def downsample_voxels(state: np.ndarray, resolution: int) -> np.ndarray:
    """Conservative coarse grid: a coarse voxel is occupied when any fine voxel in it is
    surface or inside (so thin parts survive, as in surface voxelisation)."""
    factor = state.shape[0] // resolution
    if factor * resolution != state.shape[0]:
        raise ValueError(f"grid {state.shape[0]} is not a multiple of {resolution}")
    solid = state != OUTSIDE
    blocks = solid.reshape(resolution, factor, resolution, factor, resolution, factor)
    return blocks.any(axis=(1, 3, 5))
