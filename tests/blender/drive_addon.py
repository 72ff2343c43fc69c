"""Run inside a fresh Python with bpy: install the built extension and drive it.

python drive_addon.py ZIP MODEL_DIR IMAGE RESULT_JSON RENDER_PNG
"""

import json
import sys
from pathlib import Path

import bpy

zip_path, model_dir, image, result_path, render_path = sys.argv[1:6]
result = {}
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.extensions.package_install_files(
    filepath=zip_path, repo="user_default", enable_on_install=True
)
module = "bl_ext.user_default.image_to_3d"
result["enabled"] = module in bpy.context.preferences.addons
result["panel_registered"] = hasattr(bpy.types, "RECON_PT_main")
bpy.context.preferences.addons[module].preferences.models_dir = model_dir
settings = bpy.context.scene.image_to_3d
settings.image_path = image
# the model picker lists the user models folder's checkpoints by path
settings.model = str(sorted(Path(model_dir).glob("*.safetensors"))[0])
result["model"] = settings.model
settings.resolution = 48
bpy.context.scene.cursor.location = (1.0, 2.0, 3.0)
objects_before = len(bpy.data.objects)
result["status"] = list(bpy.ops.image_to_3d.reconstruct())
obj = bpy.context.view_layer.objects.active
if obj is not None and len(bpy.data.objects) > objects_before:
    mesh = obj.data
    edges = {}
    for polygon in mesh.polygons:
        vs = list(polygon.vertices)
        for a, b in zip(vs, vs[1:] + vs[:1], strict=True):
            key = (min(a, b), max(a, b))
            edges[key] = edges.get(key, 0) + 1
    result.update(
        name=obj.name,
        location=list(obj.location),
        faces=len(mesh.polygons),
        vertices=len(mesh.vertices),
        watertight=all(c == 2 for c in edges.values()),
        selected=obj.select_get(),
    )
    scene = bpy.context.scene
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    scene.collection.objects.link(camera)
    scene.camera = camera
    camera.location = (1.0 + 1.4, 2.0 - 2.2, 3.0 + 1.2)
    direction = obj.location - camera.location
    camera.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x = scene.render.resolution_y = 256
    scene.render.filepath = render_path
    bpy.ops.render.render(write_still=True)
# a bad image gives a one-line error and leaves the scene unchanged
settings.image_path = image + ".missing.png"
count = len(bpy.data.objects)
try:
    bpy.ops.image_to_3d.reconstruct()
    result["missing_image"] = "no error"
except RuntimeError as exc:
    result["missing_image"] = str(exc).strip().splitlines()[-1]
result["scene_unchanged_after_error"] = len(bpy.data.objects) == count
bpy.ops.preferences.addon_disable(module=module)
result["panel_after_disable"] = hasattr(bpy.types, "RECON_PT_main")
bpy.ops.preferences.addon_enable(module=module)
result["panel_after_enable"] = hasattr(bpy.types, "RECON_PT_main")
with open(result_path, "w") as handle:
    json.dump(result, handle)
