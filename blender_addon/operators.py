"""Operators. Heavy imports (torch, recon_core) happen inside execute, so enabling the
add-on is instant and a missing torch is a message, never a traceback."""

from __future__ import annotations

import os

import bpy

from . import bridge


def torch_status() -> tuple[bool, str]:
    """Whether torch is importable in this Python, and a one-line description."""
    try:
        import torch
    except ImportError:
        return False, "PyTorch is not installed in Blender's Python"
    return True, f"PyTorch {torch.__version__}"


class RECON_OT_reconstruct(bpy.types.Operator):
    """Reconstruct the object in the chosen picture as a mesh at the 3D cursor"""

    bl_idname = "image_to_3d.reconstruct"
    bl_label = "Reconstruct"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = context.scene.image_to_3d
        ok, status = torch_status()
        if not ok:
            self.report({"ERROR"}, f"{status}: install it to reconstruct (see the add-on README)")
            return {"CANCELLED"}
        path = bpy.path.abspath(settings.image_path)
        if not path or not os.path.isfile(path):
            self.report({"ERROR"}, f"{path or 'no image chosen'}: no such image file")
            return {"CANCELLED"}
        if not settings.model:
            self.report({"ERROR"}, "no model: add .safetensors models to the user models folder")
            return {"CANCELLED"}
        from recon_core.checkpoint import CheckpointError
        from recon_core.extraction import ExtractionError
        from recon_core.imaging import crop_resize, square_crop_box
        from recon_core.inference import Reconstructor

        try:
            rgba = bridge.load_rgba(path)
            mask = rgba[..., 3] > 127
            if mask.all() or not mask.any():
                raise ValueError(
                    f"{path}: the picture needs a transparent background "
                    "(its alpha channel is the object mask)"
                )
            reconstructor = Reconstructor(settings.model, settings.device)
            framed = crop_resize(rgba, square_crop_box(mask), reconstructor.input_size)
            encoded = reconstructor.encode(framed)
            mesh, _ = reconstructor.mesh(encoded, settings.resolution, settings.iso)
        except (ValueError, CheckpointError, ExtractionError) as exc:
            self.report({"ERROR"}, str(exc).splitlines()[0])
            return {"CANCELLED"}
        name = os.path.splitext(os.path.basename(path))[0]
        obj = bridge.mesh_object(
            name, mesh.vertices, mesh.faces, context.scene.cursor.location, context.collection
        )
        self.report({"INFO"}, f"{obj.name}: {len(mesh.faces)} faces")
        return {"FINISHED"}
