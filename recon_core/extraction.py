"""Mesh extraction from an occupancy function: coarse-to-fine evaluation + marching cubes.

The field is evaluated on the vertices of a grid over the padded box. Starting coarse (32^3
by default), a cell is refined when its corners straddle the iso level, or when a corner's
estimated distance to the iso surface (its logit's gap to the iso level divided by the local
logit gradient, from central differences) is under ``band_cells`` cells; elsewhere the
finer grid takes the trilinear upsampling of the coarser one, whose sign is already right
there. The distance band catches parts thinner than a coarse cell (chair spindles), which
show no sign change yet but a logit that climbs towards the level. It replaced a fixed band
in logits: a decoder trained with BCE on near-surface samples keeps small logits far from
the surface, so that band refined most of the grid (figures in docs/experiments.md,
"Defaults chosen by measurement").
With ``symmetric``, the field is made mirror-symmetric across the object's left-right plane
x = 0 (the average of its logits at a point and at its mirror image), for a mesh that is
symmetric to the vertex: the grid's vertices mirror onto vertices (index i onto R - i), the
points evaluated are a mirror-symmetric set, and each is averaged with its partner, so it
costs no more decoder evaluations than the field as it is.
Marching cubes (scikit-image) then runs on the grid padded with an outside layer, so the
mesh is closed.

The decoder is evaluated in chunks of 4096 points on the CPU, where they stay in cache
(docs/benchmarks.md), and 65536 on a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from recon_core.geometry import PADDED_HALF_EXTENT

__all__ = [
    "Mesh",
    "latent_field",
    "ExtractionStats",
    "ExtractionError",
    "EmptyFieldError",
    "evaluate_grid",
    "extract_mesh",
    "iso_level_logit",
    "marching_cubes",
    "coarse_resolution",
    "decimate",
    "is_closed",
    "BAND_CELLS",
    "CPU_BATCH",
    "GPU_BATCH",
    "default_batch",
]


class ExtractionError(ValueError):
    """Bad extraction settings or an unusable field."""


class Mesh(NamedTuple):
    """A triangle mesh in the object frame: vertices (V, 3) float32, faces (F, 3) int64,
    faces wound so that their normals point outwards."""

    vertices: np.ndarray
    faces: np.ndarray


class ExtractionStats(NamedTuple):
    points_evaluated: int
    dense_points: int
    resolution: int
    iso: float | None = None
    """The occupancy level the mesh was extracted at."""


class EmptyFieldError(ExtractionError):
    """Nothing of the field reaches the iso level; ``highest`` is the highest occupancy
    probability found on the grid."""

    def __init__(self, message: str, highest: float):
        super().__init__(message)
        self.highest = highest


BAND_CELLS = 1.0
"""Default refinement band: estimated distance to the iso surface, in cells of the level."""

Field = Callable[[torch.Tensor], torch.Tensor]
"""points (N, 3) -> occupancy logits (N,)."""


def coarse_resolution(resolution: int, start: int = 32) -> int:
    """The coarsest grid from which doubling reaches ``resolution``: the smallest
    ``resolution / 2^k`` that is an integer and at least ``start`` (``resolution`` itself
    when it is odd or already coarse)."""
    coarse = resolution
    while coarse % 2 == 0 and coarse // 2 >= start:
        coarse //= 2
    return coarse


CPU_BATCH = 4096
"""Decoder points per chunk on a CPU: they stay in cache (see the module notes)."""
GPU_BATCH = 65536
"""Decoder points per chunk on a GPU."""


def default_batch(device) -> int:
    """The decoder chunk size for ``device``: `GPU_BATCH` on CUDA, `CPU_BATCH` otherwise."""
    return GPU_BATCH if torch.device(device).type == "cuda" else CPU_BATCH


def _grid_points(resolution: int, device) -> torch.Tensor:
    axis = torch.linspace(-PADDED_HALF_EXTENT, PADDED_HALF_EXTENT, resolution + 1, device=device)
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)


def _evaluate(field: Field, points: torch.Tensor, batch: int) -> torch.Tensor:
    out = torch.empty(points.shape[0], dtype=torch.float32, device=points.device)
    with torch.no_grad():
        for start in range(0, points.shape[0], batch):
            out[start : start + batch] = field(points[start : start + batch]).float()
    return out


def _mirror_average(values: torch.Tensor, where: torch.Tensor | None = None) -> torch.Tensor:
    """A vertex grid (index order x, y, z) averaged with its mirror image across x = 0,
    everywhere or on the mirror-symmetric mask ``where``."""
    mirrored = values.flip(0)
    if where is None:
        return 0.5 * (values + mirrored)
    values[where] = 0.5 * (values[where] + mirrored[where])
    return values


def _any_corner(flags: torch.Tensor) -> torch.Tensor:
    """(n+1)^3 booleans on vertices -> n^3 on cells: whether any of a cell's 8 corners is
    set (eight shifted views, cheaper on the CPU than max_pool3d)."""
    out = flags[:-1, :-1, :-1].clone()
    for i, j, k in [(i, j, k) for i in (0, 1) for j in (0, 1) for k in (0, 1)][1:]:
        out |= flags[i : i + out.shape[0], j : j + out.shape[1], k : k + out.shape[2]]
    return out


def evaluate_grid(
    field: Field,
    resolution: int,
    iso_logit: float = 0.0,
    start: int = 32,
    batch: int | None = None,
    device="cpu",
    band_cells: float = BAND_CELLS,
    band: float | None = None,
    symmetric: bool = False,
) -> tuple[torch.Tensor, ExtractionStats]:
    """Logits on the (R+1)^3 vertex grid of the padded box, coarse to fine (see the module
    notes). ``band`` (logits), when given, replaces the distance band ``band_cells``;
    ``symmetric``: the field averaged with its mirror image across x = 0."""
    if not 16 <= resolution <= 512:
        raise ExtractionError(f"resolution must be between 16 and 512, got {resolution}")
    if batch is None:
        batch = default_batch(device)
    res = coarse_resolution(resolution, start)
    values = _evaluate(field, _grid_points(res, device).reshape(-1, 3), batch)
    values = values.view(res + 1, res + 1, res + 1)
    if symmetric:
        values = _mirror_average(values)
    evaluated = values.numel()
    while res < resolution:
        inside = values > iso_logit
        gap = (values - iso_logit).abs()
        if band is None:  # estimated distance to the iso surface, in cells
            slope = torch.sqrt(sum(g * g for g in torch.gradient(values))).clamp_min(1e-6)
            gap, level_band = gap / slope, band_cells
        else:
            level_band = band
        # a cell is refined when its corners straddle the level or one of them is near it
        active = _any_corner(inside) & _any_corner(~inside) | _any_corner(gap < level_band)
        fine = 2 * res
        values = F.interpolate(
            values[None, None], size=(fine + 1,) * 3, mode="trilinear", align_corners=True
        )[0, 0]
        cells = active[:, None, :, None, :, None].expand(-1, 2, -1, 2, -1, 2)
        cells = cells.reshape(fine, fine, fine)  # each cell as its 8 children
        touched = _any_corner(F.pad(cells, (1, 1, 1, 1, 1, 1)))  # vertices of active cells
        index = torch.arange(fine + 1, device=values.device)
        odd = index % 2 == 1
        new = odd[:, None, None] | odd[None, :, None] | odd[None, None, :]
        need = touched & new
        if symmetric:  # already mirror-symmetric with the values; kept so exactly
            need |= need.flip(0)
        if need.any():
            ijk = need.nonzero()
            points = ijk.float() * (2 * PADDED_HALF_EXTENT / fine) - PADDED_HALF_EXTENT
            values[need] = _evaluate(field, points, batch)
            if symmetric:
                values = _mirror_average(values, need)
            evaluated += int(ijk.shape[0])
        res = fine
    return values, ExtractionStats(evaluated, (resolution + 1) ** 3, resolution)


def marching_cubes(values: np.ndarray, iso_logit: float = 0.0) -> Mesh:
    """Closed mesh of ``values > iso_logit`` on the (R+1)^3 vertex grid of the padded box.
    Raises ExtractionError when the field is all inside or all outside."""
    from skimage import measure

    values = np.asarray(values, dtype=np.float32)
    inside = values > iso_logit
    if not inside.any():
        raise ExtractionError("empty result: no point of the field is inside")
    if inside.all():
        raise ExtractionError("empty result: the whole box is inside (no surface)")
    if not np.isfinite(values).all():
        raise ExtractionError("the field has non-finite values")
    low = min(float(values.min()), iso_logit) - 1.0
    padded = np.pad(values, 1, constant_values=low)
    resolution = values.shape[0] - 1
    step = 2 * PADDED_HALF_EXTENT / resolution
    vertices, faces, _, _ = measure.marching_cubes(
        padded,
        level=iso_logit,
        spacing=(step, step, step),
        gradient_direction="ascent",
        allow_degenerate=False,
    )
    vertices = vertices - step - PADDED_HALF_EXTENT
    return Mesh(vertices.astype(np.float32), faces.astype(np.int64))


def iso_level_logit(iso: float) -> float:
    """The logit of an iso level (an occupancy probability); refuses one outside (0, 1)."""
    if not 0.0 < iso < 1.0 or not math.isfinite(iso):
        raise ExtractionError(f"iso level must be strictly between 0 and 1, got {iso}")
    return math.log(iso / (1.0 - iso))


def extract_mesh(
    field: Field,
    resolution: int = 128,
    iso: float = 0.5,
    start: int = 32,
    batch: int | None = None,
    device="cpu",
    band_cells: float = BAND_CELLS,
    band: float | None = None,
    symmetric: bool = False,
) -> tuple[Mesh, ExtractionStats]:
    """Mesh of the region where the occupancy probability exceeds ``iso`` (see
    `evaluate_grid` for ``start``, ``band_cells``, ``band`` and ``symmetric``)."""
    iso_logit = iso_level_logit(iso)
    values, stats = evaluate_grid(
        field, resolution, iso_logit, start, batch, device, band_cells, band, symmetric
    )
    values = values.cpu().numpy()
    highest = float(values.max())
    if math.isfinite(highest) and highest <= iso_logit:
        # A thin or uncertain shape: say how far off it is, so the user can lower the level.
        probability = 1.0 / (1.0 + math.exp(min(-highest, 700.0)))
        shown = math.floor(100.0 * probability) / 100.0
        raise EmptyFieldError(
            f"empty result: the occupancy stays below the iso level {iso:g} everywhere "
            f"(highest {shown:.2f}); a lower iso level may keep the shape",
            probability,
        )
    return marching_cubes(values, iso_logit), stats._replace(iso=iso)


def is_closed(faces: np.ndarray) -> bool:
    """Whether every edge of the triangles (F, 3) lies in exactly two of them."""
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return len(faces) > 0 and bool((counts == 2).all())


def decimate(mesh: Mesh, faces: int) -> Mesh:
    """The mesh reduced to at most ``faces`` triangles by quadric edge collapse
    (fast-simplification, a maintained C++ implementation of Garland-Heckbert), still
    closed. A mesh under the budget comes back as it is; one that cannot be brought under it
    without opening the surface raises ExtractionError."""
    try:
        import fast_simplification
    except ImportError:
        raise ExtractionError(
            "a face budget needs fast-simplification (pip install fast-simplification)"
        ) from None
    if faces < 4:
        raise ExtractionError(f"a face budget needs at least 4 faces, got {faces}")
    if len(mesh.faces) <= faces:
        return mesh
    # the library can land a few faces over the requested count: then aim a little lower
    for share in (1.0, 0.98, 0.9):
        reduction = 1.0 - share * faces / len(mesh.faces)
        vertices, triangles = fast_simplification.simplify(
            mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32), reduction
        )
        if len(triangles) <= faces:
            break
    if len(triangles) > faces or not is_closed(triangles):
        raise ExtractionError(
            f"cannot reduce this mesh to {faces} faces and keep it closed (it has "
            f"{len(mesh.faces)}); ask for more faces or a lower resolution"
        )
    return Mesh(vertices.astype(np.float32), triangles.astype(np.int64))


def latent_field(decoder, latent: torch.Tensor):
    """The field of one code (Z,) or (1, Z): points (N, 3) -> occupancy logits (N,), on the
    code's device; with the conditioning folded into the weights where the decoder can."""
    if hasattr(decoder, "specialize"):
        return decoder.specialize(latent)
    return lambda points: decoder(latent.reshape(1, -1), points[None].to(latent.device))[0]
