"""Single-image 3D reconstruction: shared geometry conventions, data format and methods.

This package never imports bpy; Blender-side code lives in ``blender_addon``.
"""

from recon_core import geometry
from recon_core.data import PreparedDataset, read_index, read_record
from recon_core.geometry import (
    PADDED_HALF_EXTENT,
    Camera,
    axis_conversion,
    fixed_views,
    look_at,
    normalization_transform,
    sample_novel_views,
)

__version__ = "0.1.0"

__all__ = [
    "geometry",
    "PreparedDataset",
    "read_index",
    "read_record",
    "PADDED_HALF_EXTENT",
    "Camera",
    "axis_conversion",
    "fixed_views",
    "look_at",
    "normalization_transform",
    "sample_novel_views",
    "__version__",
]
