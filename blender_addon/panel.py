"""The sidebar panel (3D Viewport, tab "Image to 3D")."""

from __future__ import annotations

import bpy

from .operators import torch_status


class RECON_PT_main(bpy.types.Panel):
    bl_label = "Image to 3D"
    bl_idname = "RECON_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Image to 3D"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.image_to_3d
        ok, status = torch_status()
        layout.label(text=status, icon="CHECKMARK" if ok else "ERROR")
        layout.prop(settings, "image_path")
        layout.prop(settings, "model")
        col = layout.column(align=True)
        col.prop(settings, "resolution")
        col.prop(settings, "iso")
        layout.prop(settings, "device")
        row = layout.row()
        row.enabled = ok
        row.operator("image_to_3d.reconstruct", icon="MESH_ICOSPHERE")
