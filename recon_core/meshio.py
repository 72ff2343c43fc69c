"""Writing meshes and point clouds (OBJ, binary PLY), atomically."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from recon_core.data import atomic_write_bytes

__all__ = ["write_obj", "write_ply"]


def write_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Wavefront OBJ with 1-based triangle indices."""
    buffer = io.StringIO()
    buffer.write("# written by image-to-3d\n")
    np.savetxt(buffer, np.asarray(vertices, np.float64), fmt="v %.6f %.6f %.6f")
    np.savetxt(buffer, np.asarray(faces, np.int64) + 1, fmt="f %d %d %d")
    data = buffer.getvalue().encode("ascii")
    atomic_write_bytes(path, lambda handle: handle.write(data))
    return Path(path)


def write_ply(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray | None = None,
    colors: np.ndarray | None = None,
) -> Path:
    """Binary little-endian PLY: vertices (V, 3), optional triangles (F, 3) and per-vertex
    RGB colours (V, 3) uint8."""
    vertices = np.asarray(vertices, np.float32)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    records = np.empty(len(vertices), dtype=fields)
    records["x"], records["y"], records["z"] = vertices.T
    if colors is not None:
        colors = np.asarray(colors, np.uint8)
        records["red"], records["green"], records["blue"] = colors.T
    header = [
        "ply",
        "format binary_little_endian 1.0",
        f"element vertex {len(vertices)}",
        "property float x",
        "property float y",
        "property float z",
    ]
    if colors is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    body = records.tobytes()
    if faces is not None and len(faces):
        header += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
        tris = np.empty(len(faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
        tris["n"], tris["v"] = 3, np.asarray(faces, np.int32)
        body += tris.tobytes()
    data = ("\n".join(header) + "\nend_header\n").encode("ascii") + body
    atomic_write_bytes(path, lambda handle: handle.write(data))
    return Path(path)
