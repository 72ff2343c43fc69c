"""Shape-level augmentation: per-axis scaled and mirrored variants of the library's shapes.

A chair of the library stands for a family of chairs: narrower, deeper, taller. Each
variant stretches a shape along the object frame's axes so that its proportions (the
normalised bounding box's sides) land inside the range that the category's own models span,
and optionally mirrors it left to right (x -> -x, the front stays at -Y). Variants inherit
their base shape's split (`recon_core.data.split_of` reads the base id before
``VARIANT_MARK``), so a test shape's variant never trains.

Two users of one definition:
- `training.data.prepare --variants N` builds real records of the variants (renders, depth,
  occupancy) from the transformed source mesh;
- `training.reports.oracle --variants N` scores the same variants from a record's stored samples,
  transformed exactly (inside/outside is invariant under the map), to measure how much
  coverage they add before anything is rendered.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from recon_core.data import VARIANT_MARK, read_index, read_record
from recon_core.geometry import PADDED_HALF_EXTENT, apply_transform, normalization_transform
from training.data.pipeline import shape_rng

__all__ = [
    "category_ranges",
    "variant_specs",
    "vary_shape",
    "ProportionRanges",
    "proportion_ranges",
    "variant_matrices",
    "shape_variants",
    "variant_id",
    "transform_samples",
]

MAX_STRETCH = 1.5
"""A variant's side changes by at most this factor relative to the others (1/1.5 .. 1.5):
a stool stretched into a bench is another object, not a variant."""

QUANTILES = (0.05, 0.95)
"""The part of a category's proportions a variant may reach: the outermost 5% either side
are single odd models, not the category's range."""


class ProportionRanges(dict):
    """Category -> (low, high) arrays (3,) of the normalised bounding box's sides."""


def normalised_extent(surface_points: np.ndarray) -> np.ndarray:
    """The sides (3,) of a shape's bounding box, the longest scaled to 1."""
    extent = np.ptp(np.asarray(surface_points, np.float64), axis=0)
    return extent / max(float(extent.max()), 1e-12)


def proportion_ranges(extents: Iterable[tuple[str, np.ndarray]]) -> ProportionRanges:
    """The range of each category's proportions from (category, normalised extent) pairs."""
    by_category: dict[str, list[np.ndarray]] = defaultdict(list)
    for category, extent in extents:
        by_category[category].append(np.asarray(extent, np.float64))
    ranges = ProportionRanges()
    for category, values in by_category.items():
        stacked = np.stack(values)
        ranges[category] = (
            np.quantile(stacked, QUANTILES[0], axis=0),
            np.quantile(stacked, QUANTILES[1], axis=0),
        )
    return ranges


def category_ranges(records: list[tuple[dict, np.ndarray]]) -> ProportionRanges:
    """Each category's proportion range from (index entry, normalised extent) pairs: from
    its models of real sources where it has any (procedural shapes are the project's own
    guesses), else from all its models."""
    real = [(e["category"], x) for e, x in records if e.get("source") != "procedural"]
    ranges = proportion_ranges(real)
    for category, bounds in proportion_ranges((e["category"], x) for e, x in records).items():
        ranges.setdefault(category, bounds)
    return ranges


def variant_id(base_id: str, k: int) -> str:
    """The id of a base shape's ``k``-th variant (k >= 1)."""
    return f"{base_id}{VARIANT_MARK}{k}"


def variant_matrices(
    extent: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    count: int,
    rng: np.random.Generator,
    mirror: bool = True,
) -> list[np.ndarray]:
    """``count`` 3x3 diagonal maps of the object frame, each a per-axis scale (and, every
    second one when ``mirror``, a left-right mirror) that takes a shape of normalised
    ``extent`` to proportions drawn inside ``bounds`` (the category's `proportion_ranges`).
    The scale is relative: normalisation follows."""
    extent = np.maximum(np.asarray(extent, np.float64), 1e-6)
    low, high = (np.asarray(b, np.float64) for b in bounds)
    matrices = []
    for k in range(count):
        target = rng.uniform(np.minimum(low, extent), np.maximum(high, extent))
        scale = target / extent
        scale = np.clip(scale / np.exp(np.mean(np.log(scale))), 1 / MAX_STRETCH, MAX_STRETCH)
        if mirror and k % 2 == 1:
            scale = scale * np.array([-1.0, 1.0, 1.0])
        matrices.append(np.diag(scale))
    return matrices


def shape_variants(
    shape_id: str,
    extent: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    count: int,
    seed: int = 0,
) -> list[np.ndarray]:
    """The ``count`` variant maps (`variant_matrices`) of one shape, drawn from its own
    random stream (``seed`` and its id): `training.data.prepare --variants` builds, and
    `training.reports.oracle --variants` scores, the very same variants."""
    return variant_matrices(extent, bounds, count, shape_rng(seed, shape_id))


def renormalising(matrix: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """``matrix`` followed by the uniform scale that brings the longest side back to 1
    (shapes are centred on their bounding box, and a diagonal map keeps the centre)."""
    sides = np.abs(np.diag(matrix)) * np.asarray(extent, np.float64)
    return matrix / max(float(sides.max()), 1e-12)


def transform_samples(arrays: dict[str, np.ndarray], matrix: np.ndarray) -> dict[str, np.ndarray]:
    """A record's stored geometry mapped by the diagonal ``matrix`` (already renormalised):
    occupancy points (labels unchanged: inside stays inside), surface points and normals
    (by the inverse transpose), and the voxel grid resampled at the mapped cell centres."""
    diagonal = np.diag(np.asarray(matrix, np.float64))
    out = {}
    if "occupancy_points" in arrays:
        out["occupancy_points"] = arrays["occupancy_points"].astype(np.float64) * diagonal
    if "occupancy_labels" in arrays:
        out["occupancy_labels"] = arrays["occupancy_labels"]
    if "surface_points" in arrays:
        out["surface_points"] = arrays["surface_points"].astype(np.float64) * diagonal
    if "surface_normals" in arrays:
        normals = arrays["surface_normals"].astype(np.float64) / diagonal
        out["surface_normals"] = normals / np.maximum(
            np.linalg.norm(normals, axis=1, keepdims=True), 1e-12
        )
    if "voxels" in arrays:
        out["voxels"] = np.packbits(resample_voxels(np.unpackbits(arrays["voxels"]), diagonal))
    return out


def resample_voxels(flat: np.ndarray, diagonal: np.ndarray) -> np.ndarray:
    """A flat cubic voxel grid over the padded box, mapped by ``diagonal``: each cell takes
    the value of the source cell its centre comes from (outside the box: empty)."""
    side = round(len(flat) ** (1 / 3))
    grid = flat.reshape(side, side, side).astype(bool)
    cell = 2 * PADDED_HALF_EXTENT / side
    centres = -PADDED_HALF_EXTENT + (np.arange(side) + 0.5) * cell
    axes = []
    for axis in range(3):
        source = centres / diagonal[axis]
        index = np.floor((source + PADDED_HALF_EXTENT) / cell).astype(np.int64)
        valid = (index >= 0) & (index < side)
        axes.append((np.clip(index, 0, side - 1), valid))
    (ix, vx), (iy, vy), (iz, vz) = axes
    out = grid[np.ix_(ix, iy, iz)] & vx[:, None, None] & vy[None, :, None] & vz[None, None, :]
    return out.reshape(-1)


def vary_shape(shape, matrix: np.ndarray, shape_id: str):
    """A `training.data.meshes.Shape` mapped by the 3x3 ``matrix`` and normalised again, under
    ``shape_id``. A mirror turns its triangles round so that they still face outwards; a
    shape Blender renders from its file gets the map in ``file_to_object``."""
    matrix = np.asarray(matrix, np.float64)
    linear = np.eye(4)
    linear[:3, :3] = matrix
    vertices = apply_transform(linear, shape.vertices)
    norm = normalization_transform(vertices)
    full = norm @ linear @ shape.file_to_object
    mirrored = np.linalg.det(matrix) < 0
    return dataclasses.replace(
        shape,
        id=shape_id,
        vertices=apply_transform(norm, vertices),
        faces=shape.faces[:, ::-1].copy() if mirrored else shape.faces,
        file_to_object=full,
        meta=dict(
            shape.meta,
            id=shape_id,
            normalization=full.tolist(),
            variant_of=shape.id,
            variant_map=np.diag(matrix).tolist(),
        ),
    )


def variant_specs(specs: list, root: Path, count: int, seed: int = 0) -> list:
    """``count`` variants of each train-split spec whose record ``root`` holds, drawn inside
    the proportion ranges of the train records' categories (real sources' models where a
    category has any). Deterministic for a seed and a variant's id."""
    from training.data.pipeline import ShapeSpec

    if count <= 0:
        return []
    entries = {
        e["id"]: e
        for e in read_index(root)["records"]
        if VARIANT_MARK not in e["id"] and e["split"] == "train"
    }
    extents = {}
    for shape_id, entry in entries.items():
        arrays, _ = read_record(root / entry["file"], ("surface_points",))
        extents[shape_id] = normalised_extent(arrays["surface_points"])
    ranges = category_ranges([(e, extents[i]) for i, e in entries.items()])
    out = []
    for spec in specs:
        if spec.id not in extents:
            continue
        bounds = ranges[entries[spec.id]["category"]]
        for k, matrix in enumerate(
            shape_variants(spec.id, extents[spec.id], bounds, count, seed), start=1
        ):
            out.append(
                ShapeSpec(
                    id=variant_id(spec.id, k),
                    category=spec.category,
                    kind=spec.kind,
                    params=dict(spec.params, variant=np.diag(matrix).tolist()),
                    meta=dict(spec.meta),
                )
            )
    return out
