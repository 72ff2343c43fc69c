"""The panel's settings: one PropertyGroup on the Scene."""

from __future__ import annotations

import bpy

from .models_index import describe, model_files, package_name

_ITEMS_CACHE: list = []  # Blender needs the enum items kept alive while shown


def _model_items(self, context):
    prefs = context.preferences.addons.get(package_name())
    user_dir = prefs.preferences.models_dir if prefs else ""
    items = [(str(p), p.stem, describe(p)) for p in model_files(user_dir)]
    if not items:
        items = [("", "No model found", "Put .safetensors models in the user models folder")]
    _ITEMS_CACHE[:] = items
    return _ITEMS_CACHE


class RECON_Settings(bpy.types.PropertyGroup):
    image_path: bpy.props.StringProperty(
        name="Image",
        description="Picture of one object (alpha is used as its mask)",
        subtype="FILE_PATH",
        default="",
    )
    model: bpy.props.EnumProperty(
        name="Model", items=_model_items, description="Trained model to reconstruct with"
    )
    resolution: bpy.props.IntProperty(
        name="Resolution",
        default=128,
        min=16,
        max=512,
        description="Mesh extraction grid resolution",
    )
    iso: bpy.props.FloatProperty(
        name="Iso level",
        default=0.5,
        min=0.01,
        max=0.99,
        description="Occupancy probability of the surface",
    )
    device: bpy.props.EnumProperty(
        name="Device",
        default="auto",
        items=[
            ("auto", "Auto", "CUDA, then MPS, then CPU"),
            ("cpu", "CPU", ""),
            ("cuda", "CUDA", ""),
            ("mps", "MPS", ""),
        ],
    )
