"""Input renders with Blender (bpy, Workbench engine).

Workbench shows materials and image textures the way the viewport shows them to artists and
renders a 128x128 view in tens of milliseconds on a CPU, with studio lighting that can be
varied per view. Each view is rendered with a wide field of view, then cropped and framed
like every network input (`recon_core.imaging`); the stored intrinsics describe the framed
image exactly.

Import this module only in worker processes: ``import bpy`` takes a second and Blender's
state is per process.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recon_core.geometry import Camera, look_at, perspective_intrinsics, view_direction
from recon_core.imaging import crop_intrinsics, crop_resize, square_crop_box
from training.data.meshes import Shape

__all__ = ["RenderSettings", "BlenderRenderer", "sample_input_cameras"]

_STUDIO_LIGHTS = ("Default", "basic.sl", "outdoor.sl", "paint.sl", "rim.sl", "studio.sl")
_BOUNDING_RADIUS = math.sqrt(3.0) / 2.0


@dataclass
class RenderSettings:
    """Input-render settings."""

    views: int = 12
    """Input renders per shape."""
    size: int = 128
    """Side of the stored (framed) renders in pixels."""
    supersample: int = 4
    """Blender renders at ``supersample * size`` without its own anti-aliasing; framing
    shrinks it with a box filter, which anti-aliases better and faster than Workbench's
    multi-sample AA (docs/experiments.md, "Defaults chosen by measurement")."""
    elevation_range: tuple[float, float] = (-10.0, 50.0)
    """Camera elevation range in degrees (azimuth is uniform over 0-360)."""
    distance_range: tuple[float, float] = (1.8, 2.6)
    """Camera distance range from the object's centre (the longest side is 1)."""


def sample_input_cameras(
    count: int, rng: np.random.Generator, settings: RenderSettings
) -> list[Camera]:
    """Perspective cameras looking at the origin from random azimuth/elevation/distance,
    each with a field of view that contains the unit cube's circumsphere."""
    size = settings.size * settings.supersample
    cameras = []
    for _ in range(count):
        azimuth = rng.uniform(0.0, 2.0 * math.pi)
        elevation = math.radians(rng.uniform(*settings.elevation_range))
        distance = rng.uniform(*settings.distance_range)
        fov = 2.0 * math.asin(min(0.99, _BOUNDING_RADIUS / distance)) * 1.05
        eye = distance * view_direction(azimuth, elevation)
        cameras.append(
            Camera(look_at(eye), perspective_intrinsics(fov, size), "perspective", size, size)
        )
    return cameras


@contextlib.contextmanager
def _quiet():
    """Silence what Blender prints on the process's own stdout/stderr (render progress,
    'Saved:' lines, EGL probing) so the build log and progress bar stay readable."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


class BlenderRenderer:
    """Renders shapes with Blender's Workbench engine in this process."""

    def __init__(self, settings: RenderSettings | None = None):
        with _quiet():
            import bpy

            bpy.ops.wm.read_factory_settings(use_empty=True)
        self.bpy = bpy
        self.settings = settings or RenderSettings()
        scene = bpy.context.scene
        scene.render.engine = "BLENDER_WORKBENCH"
        size = self.settings.size * self.settings.supersample
        scene.render.resolution_x = scene.render.resolution_y = size
        scene.render.resolution_percentage = 100
        scene.render.film_transparent = True
        scene.render.image_settings.file_format = "PNG"
        scene.render.image_settings.color_mode = "RGBA"
        scene.render.image_settings.color_depth = "8"
        scene.view_settings.view_transform = "Standard"
        scene.display.render_aa = "OFF"
        shading = scene.display.shading
        shading.light = "STUDIO"
        shading.show_object_outline = False
        shading.show_cavity = False
        camera_data = bpy.data.cameras.new("render_camera")
        camera_data.sensor_fit = "HORIZONTAL"
        self.camera = bpy.data.objects.new("render_camera", camera_data)
        scene.collection.objects.link(self.camera)
        scene.camera = self.camera
        self._tmp = tempfile.mkdtemp(prefix="recon_render_")

    # -- scene content -------------------------------------------------------------------
    def _clear(self) -> None:
        bpy = self.bpy
        for obj in list(bpy.data.objects):
            if obj is not self.camera:
                bpy.data.objects.remove(obj, do_unlink=True)
        for collection in (bpy.data.meshes, bpy.data.materials, bpy.data.images):
            for block in list(collection):
                if block.users == 0:
                    collection.remove(block)

    def _import_file(self, shape: Shape) -> None:
        bpy = self.bpy
        path = str(shape.render_file)
        before = set(bpy.data.objects)
        suffix = Path(path).suffix.lower()
        if suffix == ".obj":  # identity axes: Blender sees the file's own coordinates
            bpy.ops.wm.obj_import(filepath=path, forward_axis="Y", up_axis="Z")
            to_file = np.eye(4)
        elif suffix in (".glb", ".gltf"):
            bpy.ops.import_scene.gltf(filepath=path)
            # The glTF importer turns Y-up into Z-up: (x, y, z) -> (x, -z, y); undo it.
            to_file = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1.0]])
        else:
            raise ValueError(f"{path}: Blender import is only used for OBJ and glTF")
        placement = shape.file_to_object @ to_file
        from mathutils import Matrix

        for obj in set(bpy.data.objects) - before:
            if obj.parent is None:
                obj.matrix_world = Matrix(placement.tolist()) @ obj.matrix_world
        for material in bpy.data.materials:
            self._viewport_colour_from_nodes(material)

    @staticmethod
    def _viewport_colour_from_nodes(material) -> None:
        """Workbench shows ``diffuse_color``; importers set the node tree's base colour."""
        if not material.use_nodes or material.node_tree is None:
            return
        for node in material.node_tree.nodes:
            if node.type == "BSDF_PRINCIPLED":
                base = node.inputs["Base Color"].default_value
                alpha = node.inputs["Alpha"].default_value
                material.diffuse_color = (base[0], base[1], base[2], alpha)
                return

    def _build_from_arrays(self, shape: Shape) -> None:
        bpy = self.bpy
        mesh = bpy.data.meshes.new(shape.id)
        mesh.from_pydata(shape.vertices.tolist(), [], shape.faces.tolist())
        colors = shape.face_colors
        if colors is None:
            colors = np.full((len(shape.faces), 3), 180, dtype=np.uint8)
        unique, slot = np.unique(colors, axis=0, return_inverse=True)
        for rgb in unique:
            material = bpy.data.materials.new("part")
            linear = (rgb / 255.0) ** 2.2  # sRGB -> linear (approximately)
            material.diffuse_color = (*linear.tolist(), 1.0)
            mesh.materials.append(material)
        mesh.polygons.foreach_set("material_index", slot.ravel().astype(np.int32))
        mesh.polygons.foreach_set("use_smooth", np.zeros(len(shape.faces), dtype=bool))
        mesh.update()
        obj = bpy.data.objects.new(shape.id, mesh)
        self.bpy.context.scene.collection.objects.link(obj)

    # -- rendering -----------------------------------------------------------------------
    def _set_camera(self, camera: Camera) -> None:
        from mathutils import Matrix

        self.camera.matrix_world = Matrix(np.linalg.inv(camera.extrinsic).tolist())
        focal = camera.intrinsic[0, 0]
        self.camera.data.angle = 2.0 * math.atan(camera.width / (2.0 * focal))
        self.camera.data.clip_start = 0.01
        self.camera.data.clip_end = 100.0

    def render(
        self, shape: Shape, cameras: list[Camera], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Framed RGBA renders (V, size, size, 4) uint8 and their intrinsics (V, 3, 3).

        A view whose render is empty (the object is outside it) raises ValueError."""
        from PIL import Image

        bpy = self.bpy
        self._clear()
        with _quiet():
            if shape.render_file is not None:
                self._import_file(shape)
            else:
                self._build_from_arrays(shape)
        scene = bpy.context.scene
        shading = scene.display.shading
        shading.color_type = "TEXTURE"
        size = self.settings.size
        images, intrinsics = [], []
        path = os.path.join(self._tmp, "view.png")
        for camera in cameras:
            shading.studio_light = _STUDIO_LIGHTS[int(rng.integers(len(_STUDIO_LIGHTS)))]
            shading.studiolight_rotate_z = float(rng.uniform(-math.pi, math.pi))
            shading.show_specular_highlight = bool(rng.random() < 0.7)
            self._set_camera(camera)
            scene.render.filepath = path
            with _quiet():
                bpy.ops.render.render(write_still=True)
            rgba = np.asarray(Image.open(path).convert("RGBA"))
            box = square_crop_box(rgba[..., 3] > 0)
            images.append(crop_resize(rgba, box, size))
            intrinsics.append(crop_intrinsics(camera.intrinsic, box, size))
        return np.stack(images), np.stack(intrinsics)
