"""Add-on preferences: where the user's own models live."""

from __future__ import annotations

import bpy

from .models_index import package_name


class RECON_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = package_name()

    models_dir: bpy.props.StringProperty(
        name="User models folder",
        description="Folder of .safetensors checkpoints trained with the project's scripts",
        subtype="DIR_PATH",
        default="",
    )

    def draw(self, context):
        self.layout.prop(self, "models_dir")
