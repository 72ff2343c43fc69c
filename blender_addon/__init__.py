"""Image to 3D: reconstruct an editable base mesh from one picture, in the 3D Viewport
sidebar (tab "Image to 3D").

The reconstruction library (``recon_core``) ships inside the extension; torch must be
importable in Blender's Python (see the README's install notes).
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
# recon_core is vendored beside this file in the built extension; a development checkout
# has it one folder up. Either way it must be importable by its own name.
for _candidate in (_HERE, os.path.dirname(_HERE)):
    if os.path.isdir(os.path.join(_candidate, "recon_core")) and _candidate not in sys.path:
        sys.path.append(_candidate)
        break

from . import operators, panel, preferences, properties  # noqa: E402

_CLASSES = (
    preferences.RECON_AddonPreferences,
    properties.RECON_Settings,
    operators.RECON_OT_reconstruct,
    panel.RECON_PT_main,
)


def register() -> None:
    import bpy

    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.image_to_3d = bpy.props.PointerProperty(type=properties.RECON_Settings)


def unregister() -> None:
    import bpy

    del bpy.types.Scene.image_to_3d
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
