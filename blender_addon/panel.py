"""The sidebar panel (3D Viewport, tab "Image to 3D")."""

from __future__ import annotations

import bpy

from . import bridge
from .operators import ENCODING_KEY, can_fit_silhouette
from .runner import backend, torch_in_blender


class RECON_PT_main(bpy.types.Panel):
    bl_label = "Image to 3D"
    bl_idname = "RECON_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Image to 3D"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.image_to_3d
        kind, status = backend()
        ready = kind == "worker" or torch_in_blender()[0]
        layout.label(text=status, icon="CHECKMARK" if ready else "ERROR")
        layout.prop(settings, "image_path")
        row = layout.row()
        for name in ("Image to 3D picture", "Image to 3D mask"):
            image = bpy.data.images.get(name)
            if image is not None and image.preview:
                row.template_icon(icon_value=image.preview.icon_id, scale=5.0)
        row = layout.row(align=True)
        row.prop(settings, "mask_path")
        row.operator("image_to_3d.show_mask", text="", icon="HIDE_OFF")
        row = layout.row(align=True)
        row.enabled = not settings.mask_path
        row.prop(settings, "background")
        for line in settings.mask_warning.splitlines():
            layout.label(text=line, icon="ERROR")
        layout.prop(settings, "model")
        layout.prop(settings, "output", expand=True)
        col = layout.column(align=True)
        col.prop(settings, "resolution")
        col.prop(settings, "iso")
        col.prop(settings, "face_budget")
        col.prop(settings, "point_count")
        col.prop(settings, "symmetric")
        col.prop(settings, "view")
        row = col.row()
        row.enabled = can_fit_silhouette(settings)
        row.prop(settings, "fit_silhouette")
        col.prop(settings, "views_agree")
        if bridge.NATIVE_POINTS and settings.output != "mesh":
            col.prop(settings, "native_points")
        layout.prop(settings, "device")
        row = layout.row(align=True)
        row.enabled = ready
        row.operator("image_to_3d.reconstruct", icon="MESH_ICOSPHERE")
        row.operator("image_to_3d.cancel", text="", icon="CANCEL")
        if settings.status:
            layout.progress(factor=settings.progress, text=settings.status)
        obj = context.active_object
        if obj is not None and ENCODING_KEY in obj:
            layout.operator("image_to_3d.reextract", icon="FILE_REFRESH")
        layout.operator("image_to_3d.batch", icon="FILE_FOLDER")
