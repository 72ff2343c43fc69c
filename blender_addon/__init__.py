"""Image to 3D: reconstruct an editable base mesh from one picture, in the 3D Viewport
sidebar (tab "Image to 3D").

The reconstruction library (``recon_core``) ships inside the extension. torch comes from
Blender's Python, from the extension's own folder ("Install dependencies"), or from an
external interpreter that runs a worker process (see the README's install notes).
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

from . import operators, panel, preferences, properties, runner  # noqa: E402

_CLASSES = (
    preferences.RECON_AddonPreferences,
    properties.RECON_Settings,
    operators.RECON_OT_reconstruct,
    operators.RECON_OT_cancel,
    operators.RECON_OT_reextract,
    operators.RECON_OT_batch,
    operators.RECON_OT_show_mask,
    operators.RECON_OT_install_dependencies,
    panel.RECON_PT_main,
)


def register() -> None:
    import bpy

    runner.add_site_packages()
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.image_to_3d = bpy.props.PointerProperty(type=properties.RECON_Settings)


def unregister() -> None:
    import bpy

    runner.shutdown()
    del bpy.types.Scene.image_to_3d
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
