"""From numpy arrays to Blender data (the only place that builds geometry)."""

from __future__ import annotations

import bpy
import numpy as np


def mesh_object(
    name: str, vertices: np.ndarray, faces: np.ndarray, location, collection
) -> bpy.types.Object:
    """A new mesh object from vertices (V, 3) and triangles (F, 3), linked into
    ``collection`` at ``location``, selected and active."""
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", np.ascontiguousarray(vertices, dtype=np.float32).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", np.ascontiguousarray(faces, dtype=np.int32).ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    mesh.validate()
    obj = bpy.data.objects.new(name, mesh)
    obj.location = location
    collection.objects.link(obj)
    for other in bpy.context.view_layer.objects:
        other.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    return obj


def load_rgba(path: str) -> np.ndarray:
    """An image file as (H, W, 4) uint8, top row first, read by Blender itself (any format
    Blender reads). Raises ValueError with a one-line reason."""
    try:
        image = bpy.data.images.load(path, check_existing=False)
    except RuntimeError as exc:
        raise ValueError(f"{path}: cannot read the image ({exc})") from None
    try:
        width, height = image.size
        if width == 0 or height == 0:
            raise ValueError(f"{path}: the image is empty")
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    rgba = pixels.reshape(height, width, 4)[::-1]  # Blender stores the bottom row first
    return np.clip(np.round(rgba * 255), 0, 255).astype(np.uint8)
