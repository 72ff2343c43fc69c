"""Add-on preferences: how torch is found, and where the user's own models live."""

from __future__ import annotations

import bpy

from .runner import backend, package_name, site_packages


class RECON_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = package_name()

    backend: bpy.props.EnumProperty(
        name="Run with",
        default="auto",
        items=[
            ("auto", "Automatic", "Blender's Python when it has torch, else the external one"),
            (
                "blender",
                "Blender's Python",
                "torch installed in Blender's Python or by the Install dependencies button",
            ),
            (
                "external",
                "External Python",
                "A worker process of another Python interpreter "
                "that has torch (e.g. the project's .venv/bin/python)",
            ),
        ],
    )
    python_path: bpy.props.StringProperty(
        name="External Python",
        description="Python interpreter with torch, numpy, scikit-image, scipy and pillow",
        subtype="FILE_PATH",
        default="",
    )
    torch_build: bpy.props.EnumProperty(
        name="PyTorch build",
        default="cpu",
        items=[
            ("cpu", "CPU", "Smaller download, any machine"),
            ("cuda", "CUDA 12.4", "NVIDIA GPUs (a large download)"),
        ],
    )
    models_dir: bpy.props.StringProperty(
        name="User models folder",
        description="Folder of .safetensors checkpoints trained with the project's scripts",
        subtype="DIR_PATH",
        default="",
    )

    def draw(self, context):
        layout = self.layout
        kind, status = backend()
        layout.label(text=f"Active: {status}", icon="INFO")
        layout.prop(self, "backend")
        layout.prop(self, "python_path")
        row = layout.row(align=True)
        row.prop(self, "torch_build")
        row.operator("image_to_3d.install_dependencies", icon="IMPORT")
        if not bpy.app.online_access:
            layout.label(text="Online access is off: installing needs it", icon="ERROR")
        layout.label(text=f"Installs into {site_packages()}")
        layout.prop(self, "models_dir")
