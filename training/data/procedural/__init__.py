"""Procedural shapes: seeded, unlimited, coloured per part, watertight per part."""

from __future__ import annotations

import numpy as np

from recon_core.geometry import apply_transform, normalization_transform
from training.data.meshes import Shape
from training.data.procedural.categories import CATEGORIES, GENERATORS

__all__ = ["CATEGORIES", "make_shape", "shape_id"]


def shape_id(category: str, seed: int) -> str:
    return f"procedural/{category}/{seed:06d}"


def make_shape(category: str, seed: int) -> Shape:
    """The procedural shape ``seed`` of ``category``, normalised into the unit cube."""
    if category not in GENERATORS:
        raise ValueError(
            f"unknown procedural category {category!r}; known: {', '.join(CATEGORIES)}"
        )
    rng = np.random.default_rng([_stable(category), seed])
    parts = GENERATORS[category](rng)
    vertices, faces, colors, offset = [], [], [], 0
    for part in parts:
        vertices.append(np.asarray(part.mesh.vertices, dtype=np.float64))
        faces.append(np.asarray(part.mesh.faces, dtype=np.int64) + offset)
        colors.append(np.repeat(part.color[None], len(part.mesh.faces), axis=0))
        offset += len(part.mesh.vertices)
    vertices = np.concatenate(vertices)
    norm = normalization_transform(vertices)
    return Shape(
        id=shape_id(category, seed),
        category=category,
        vertices=apply_transform(norm, vertices),
        faces=np.concatenate(faces),
        face_colors=np.concatenate(colors),
        meta={
            "source": "procedural",
            "seed": seed,
            "licence": "CC0-1.0",
            "author": "procedural generator",
            "parts": len(parts),
            "normalization": norm.tolist(),
        },
    )


def _stable(text: str) -> int:
    """A process-independent integer for ``text`` (Python's hash() is salted per process)."""
    return int.from_bytes(text.encode("utf-8")[:8].ljust(8, b"\0"), "little") % (2**31)
