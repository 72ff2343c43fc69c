"""Shapes as the data pipeline sees them: triangles in the object frame plus what renders them.

Every source (procedural, Sweet Home 3D, a folder of files) produces `Shape` objects. The
geometry (vertices, faces) is already rotated into the object frame and normalised; the
renderer either imports the original file with Blender (so materials and textures look as
artists see them) and applies ``file_to_object``, or builds the mesh from the arrays with
per-face colours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recon_core.geometry import apply_transform, axis_conversion, normalization_transform

__all__ = [
    "Shape",
    "MeshError",
    "MESH_SUFFIXES",
    "load_mesh_file",
    "clean_triangles",
    "first_line",
    "source_transform",
    "shape_from_file",
]

MESH_SUFFIXES = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")

MAX_FACES = 2_000_000
"""Default limit: meshes with more triangles than this are skipped as too large."""

_BYTES_PER_FACE = 200
"""A file larger than ``max_faces * _BYTES_PER_FACE`` bytes is refused before parsing (a
text OBJ triangle with its vertices takes well under this), so that a huge file cannot
exhaust memory while being read."""


class MeshError(ValueError):
    """A mesh that cannot be used: unreadable, empty, zero-area, non-finite or too large."""


@dataclass
class Shape:
    """One shape ready for preparation.

    ``vertices`` (V, 3) float64 in the object frame, normalised into [-0.5, 0.5]^3;
    ``faces`` (F, 3) int64; ``face_colors`` (F, 3) uint8 or None (used when the renderer
    builds the mesh from arrays); ``render_file`` the original file for Blender to import
    (None: build from arrays) and ``file_to_object`` the 4x4 taking that file's coordinates
    (as read, before any importer axis conversion) to the normalised object frame.
    """

    id: str
    category: str
    vertices: np.ndarray
    faces: np.ndarray
    face_colors: np.ndarray | None = None
    render_file: Path | None = None
    file_to_object: np.ndarray = field(default_factory=lambda: np.eye(4))
    meta: dict[str, Any] = field(default_factory=dict)


def first_line(exc: BaseException) -> str:
    """An exception's message cut to one line for a one-line reason (its type if empty)."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def clean_triangles(
    vertices: np.ndarray, faces: np.ndarray, where: str, max_faces: int = MAX_FACES
) -> np.ndarray:
    """Indices of the usable faces: those with in-range indices and non-zero area. Raises
    MeshError when nothing usable is left."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(vertices) == 0 or len(faces) == 0:
        raise MeshError(f"{where}: empty mesh (no triangles)")
    if len(faces) > max_faces:
        raise MeshError(f"{where}: {len(faces)} triangles, more than the limit of {max_faces}")
    if not np.all(np.isfinite(vertices)):
        raise MeshError(f"{where}: vertices contain NaN or infinity")
    kept = np.flatnonzero(np.all((faces >= 0) & (faces < len(vertices)), axis=1))
    tri = vertices[faces[kept]]
    area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    extent = float(np.ptp(tri.reshape(-1, 3), axis=0).max()) if len(kept) else 0.0
    kept = kept[area2 > 1e-14 * max(extent, 1e-30) ** 2]
    if len(kept) == 0 or extent <= 0.0:
        raise MeshError(f"{where}: zero-area mesh (all triangles degenerate)")
    return kept


def load_mesh_file(
    path: Path, max_faces: int = MAX_FACES
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read the triangles of a mesh file (OBJ, PLY, STL, OFF, glTF/GLB) in the file's own
    coordinates (scene-graph transforms applied): vertices (V, 3), faces (F, 3) and the
    file's per-face RGB colours (F, 3) uint8 where it has face or vertex colours, else None.
    Raises MeshError with a one-line reason."""
    import trimesh

    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise MeshError(f"{path}: unsupported mesh format {path.suffix!r}")
    try:
        size = path.stat().st_size
        if size == 0:
            raise MeshError(f"{path}: empty file")
        if size > max_faces * _BYTES_PER_FACE:
            raise MeshError(
                f"{path}: file of {size / 1e6:.0f} MB is too large "
                f"(limit {max_faces * _BYTES_PER_FACE / 1e6:.0f} MB for "
                f"{max_faces} triangles)"
            )
        kwargs = {"skip_materials": True} if path.suffix.lower() == ".obj" else {}
        loaded = trimesh.load(path, force="mesh", process=False, **kwargs)
    except MeshError:
        raise
    except Exception as exc:  # trimesh raises many types for broken files
        raise MeshError(f"{path}: unreadable mesh ({first_line(exc)})") from exc
    vertices = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float64)
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))), dtype=np.int64)
    colors = None
    visual = getattr(loaded, "visual", None)
    if getattr(visual, "kind", None) in ("face", "vertex") and len(faces):
        try:
            colors = np.asarray(visual.face_colors, dtype=np.uint8)[:, :3]
        except (ValueError, IndexError, AttributeError):
            colors = None
        if colors is not None and len(colors) != len(faces):
            colors = None
    return vertices, faces, colors


def source_transform(
    vertices: np.ndarray,
    up: str = "+z",
    front: str = "-y",
    rotation: np.ndarray | None = None,
    stretch_to: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """4x4 from a file's coordinates to the object frame (before normalisation).

    ``rotation`` (3, 3), applied first, is a source's own fix-up (Sweet Home 3D's
    ``modelRotation``); ``stretch_to`` then scales the rotated bounding box's axes to these
    proportions (Sweet Home 3D's width/height/depth, in the source's axes); finally the
    source's ``up``/``front`` axes are turned into +Z/-Y. ``vertices`` (N, 3) are the
    file's used vertices, needed for the stretch."""
    rotation = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
    scale = np.ones(3)
    if stretch_to is not None:
        extent = np.ptp(np.asarray(vertices) @ rotation.T, axis=0)
        target = np.asarray(stretch_to, dtype=np.float64)
        if np.all(target > 0) and np.all(extent > 1e-9 * max(extent.max(), 1e-30)):
            scale = target / extent
            scale /= scale.max()  # only proportions matter: normalisation follows
    transform = np.eye(4)
    transform[:3, :3] = axis_conversion(up, front) @ np.diag(scale) @ rotation
    return transform


def shape_from_file(
    path: Path,
    shape_id: str,
    category: str,
    up: str = "+z",
    front: str = "-y",
    rotation: np.ndarray | None = None,
    stretch_to: tuple[float, float, float] | None = None,
    meta: dict[str, Any] | None = None,
    render_with_blender: bool = True,
    max_faces: int = MAX_FACES,
) -> Shape:
    """Load ``path``, turn it into the object frame (`source_transform`), normalise, and
    return a Shape that Blender renders from the file itself."""
    vertices, faces, colors = load_mesh_file(path, max_faces)
    kept = clean_triangles(vertices, faces, str(path), max_faces)
    faces = faces.reshape(-1, 3)[kept]
    colors = None if colors is None else colors[kept]
    used = np.unique(faces.ravel())
    compact = np.full(len(vertices), -1, dtype=np.int64)
    compact[used] = np.arange(len(used))
    vertices, faces = vertices[used], compact[faces]
    pre = source_transform(vertices, up, front, rotation, stretch_to)
    vertices = apply_transform(pre, vertices)
    norm = normalization_transform(vertices)
    full = norm @ pre
    return Shape(
        id=shape_id,
        category=category,
        vertices=apply_transform(norm, vertices),
        faces=faces,
        face_colors=colors,
        render_file=Path(path) if render_with_blender else None,
        file_to_object=full,
        meta=dict(meta or {}, source_file=str(path), normalization=full.tolist()),
    )
