"""Writing meshes and point clouds (OBJ, binary PLY, glTF binary), atomically."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np

from recon_core.files import atomic_write_bytes

__all__ = ["obj_bytes", "ply_bytes", "glb_bytes", "result_bytes", "write_result", "FORMATS"]

FORMATS = ("glb", "obj", "ply")


def obj_bytes(
    path: str | Path, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray | None = None
) -> bytes:
    """Wavefront OBJ with 1-based triangle indices; vertex colours as the common
    ``v x y z r g b`` extension (Blender, MeshLab) when given."""
    buffer = io.StringIO()
    buffer.write("# written by image-to-3d\n")
    if colors is None:
        np.savetxt(buffer, np.asarray(vertices, np.float64), fmt="v %.6f %.6f %.6f")
    else:
        rows = np.concatenate(
            [np.asarray(vertices, np.float64), np.asarray(colors, np.float64) / 255.0], axis=1
        )
        np.savetxt(buffer, rows, fmt="v %.6f %.6f %.6f %.4f %.4f %.4f")
    np.savetxt(buffer, np.asarray(faces, np.int64) + 1, fmt="f %d %d %d")
    data = buffer.getvalue().encode("ascii")
    return data


def ply_bytes(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray | None = None,
    colors: np.ndarray | None = None,
) -> bytes:
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
    return data


# glTF is +Y up with the front facing +Z; the object frame is +Z up with the front at -Y.
_TO_GLTF = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def glb_bytes(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray | None = None,
    colors: np.ndarray | None = None,
) -> bytes:
    """glTF 2.0 binary: a triangle mesh, or points when ``faces`` is None, with optional
    per-vertex RGB colours (COLOR_0) and an unlit-looking rough material that shows them.
    Coordinates are converted to glTF's +Y up, so importers place the object upright."""
    positions = (np.asarray(vertices, np.float64) @ _TO_GLTF.T).astype(np.float32)
    blobs, views, accessors = [], [], []

    def add(array: np.ndarray, component: int, kind: str, target: int | None, **extra) -> int:
        data = np.ascontiguousarray(array).tobytes()
        offset = sum(len(b) for b in blobs)
        blobs.append(data + b"\0" * (-len(data) % 4))
        view = {"buffer": 0, "byteOffset": offset, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        views.append(view)
        accessors.append(
            {
                "bufferView": len(views) - 1,
                "componentType": component,
                "count": len(array),
                "type": kind,
                **extra,
            }
        )
        return len(accessors) - 1

    attributes = {
        "POSITION": add(
            positions,
            5126,
            "VEC3",
            34962,
            min=positions.min(axis=0).tolist(),
            max=positions.max(axis=0).tolist(),
        )
    }
    if colors is not None:
        rgba = np.concatenate(
            [np.asarray(colors, np.uint8), np.full((len(positions), 1), 255, np.uint8)], axis=1
        )
        attributes["COLOR_0"] = add(rgba, 5121, "VEC4", 34962, normalized=True)
    primitive = {"attributes": attributes, "material": 0, "mode": 0 if faces is None else 4}
    if faces is not None:
        primitive["indices"] = add(np.asarray(faces, np.uint32).reshape(-1), 5125, "SCALAR", 34963)
    gltf = {
        "asset": {"version": "2.0", "generator": "image-to-3d"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": Path(path).stem}],
        "meshes": [{"primitives": [primitive], "name": Path(path).stem}],
        "materials": [
            {
                "pbrMetallicRoughness": {
                    "baseColorFactor": [1, 1, 1, 1],
                    "metallicFactor": 0.0,
                    "roughnessFactor": 0.8,
                },
                "doubleSided": faces is None,
            }
        ],
        "buffers": [{"byteLength": sum(len(b) for b in blobs)}],
        "bufferViews": views,
        "accessors": accessors,
    }
    text = json.dumps(gltf, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    binary = b"".join(blobs)
    total = 12 + 8 + len(text) + 8 + len(binary)
    data = b"".join(
        [
            struct.pack("<4sII", b"glTF", 2, total),
            struct.pack("<I4s", len(text), b"JSON"),
            text,
            struct.pack("<I4s", len(binary), b"BIN\0"),
            binary,
        ]
    )
    return data


def result_bytes(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray | None = None,
    colors: np.ndarray | None = None,
) -> bytes:
    """A mesh or point cloud encoded in the format named by ``path``'s suffix (.glb, .obj,
    .ply; point clouds: .glb or .ply)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix == "glb":
        return glb_bytes(path, vertices, faces, colors)
    if suffix == "ply":
        return ply_bytes(path, vertices, faces, colors)
    if suffix == "obj" and faces is not None:
        return obj_bytes(path, vertices, faces, colors)
    raise ValueError(
        f"{path}: cannot write {'a mesh' if faces is not None else 'points'} as "
        f"{suffix or 'no suffix'} (use {', '.join(FORMATS)})"
    )


def write_result(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray | None = None,
    colors: np.ndarray | None = None,
) -> Path:
    """Write a mesh or point cloud (`result_bytes`) atomically."""
    data = result_bytes(path, vertices, faces, colors)
    atomic_write_bytes(path, lambda handle: handle.write(data))
    return Path(path)
