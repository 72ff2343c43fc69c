"""Run inside a fresh Python with bpy: install the built extension and drive it.

python drive_addon.py SETTINGS_JSON

SETTINGS: zip, models (folder with one good model), image, folder (pictures for the batch),
result (JSON written here), render_dir, external_python (a Python with torch, or ""),
no_torch_python (a Python without torch), wheels (stand-in wheels for "Install
dependencies").
"""

import json
import os
import sys
import time
import types
from pathlib import Path

import bpy
import numpy as np

settings_in = json.loads(Path(sys.argv[1]).read_text())
result = {"version": bpy.app.version_string}
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.extensions.package_install_files(
    filepath=settings_in["zip"], repo="user_default", enable_on_install=True
)
module = "bl_ext.user_default.image_to_3d"
result["enabled"] = module in bpy.context.preferences.addons
result["panel_registered"] = hasattr(bpy.types, "RECON_PT_main")
prefs = bpy.context.preferences.addons[module].preferences
prefs.models_dir = settings_in["models"]
if settings_in["external_python"]:
    prefs.python_path = settings_in["external_python"]
addon = sys.modules[module]
result["backend"] = addon.runner.backend()[1]
settings = bpy.context.scene.image_to_3d
settings.image_path = settings_in["image"]
good_model = str(sorted(Path(settings_in["models"]).glob("good*.safetensors"))[0])
settings.model = good_model
result["model"] = settings.model
settings.resolution = 48
bpy.context.scene.cursor.location = (1.0, 2.0, 3.0)


def closed(mesh) -> bool:
    edges = {}
    for polygon in mesh.polygons:
        vs = list(polygon.vertices)
        for a, b in zip(vs, vs[1:] + vs[:1], strict=True):
            key = (min(a, b), max(a, b))
            edges[key] = edges.get(key, 0) + 1
    return bool(edges) and all(c == 2 for c in edges.values())


def attempt(name: str) -> None:
    """Run the reconstruct operator expecting a one-line error and no scene change."""
    count = len(bpy.data.objects)
    try:
        bpy.ops.image_to_3d.reconstruct()
        result[name] = "no error"
    except RuntimeError as exc:
        result[name] = str(exc).strip().splitlines()[-1]
    result[name + "_scene_unchanged"] = len(bpy.data.objects) == count


def render(name: str, target, engine: str = "BLENDER_WORKBENCH") -> None:
    scene = bpy.context.scene
    camera = bpy.data.objects.get("camera")
    if camera is None:
        camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
        scene.collection.objects.link(camera)
        scene.camera = camera
    camera.location = (target.location.x + 1.4, target.location.y - 2.2, target.location.z + 1.2)
    direction = target.location - camera.location
    camera.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    scene.render.engine = engine
    scene.display.shading.color_type = "VERTEX"
    if engine == "CYCLES":  # reads the points' colour through the material
        scene.cycles.samples, scene.cycles.device = 8, "CPU"
        world = bpy.data.worlds.new("white") if scene.world is None else scene.world
        world.use_nodes = False
        world.color = (0.8, 0.8, 0.8)
        scene.world = world
        sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
        sun.data.energy = 3.0
        sun.rotation_euler = (0.6, 0.2, 0.8)
        scene.collection.objects.link(sun)
    scene.render.resolution_x = scene.render.resolution_y = 256
    scene.render.filepath = str(Path(settings_in["render_dir"]) / f"{name}.png")
    bpy.ops.render.render(write_still=True)


# -- a mesh, synchronously (scripts and background mode) ---------------------------------
objects_before = len(bpy.data.objects)
tick = time.perf_counter()
result["status"] = list(bpy.ops.image_to_3d.reconstruct())
result["seconds"] = time.perf_counter() - tick
obj = bpy.context.view_layer.objects.active
if obj is not None and len(bpy.data.objects) > objects_before:
    mesh = obj.data
    result.update(
        name=obj.name,
        location=list(obj.location),
        faces=len(mesh.polygons),
        vertices=len(mesh.vertices),
        watertight=closed(mesh),
        selected=obj.select_get(),
        colour_attribute=[a.name for a in mesh.color_attributes],
        materials=[m.name for m in mesh.materials if m],
        view=obj.get("image_to_3d_view"),
    )
    render("mesh", obj)
    # re-extract from the cached encoding at another resolution
    faces_before = len(obj.data.polygons)
    result["reextract"] = list(bpy.ops.image_to_3d.reextract(resolution=32, iso=0.5))
    result["reextract_faces"] = [faces_before, len(obj.data.polygons)]
    result["reextract_closed"] = closed(obj.data)
    bpy.ops.image_to_3d.reextract(resolution=48, iso=0.5, face_budget=150)
    result["budget_faces"] = [len(obj.data.polygons), closed(obj.data)]
    # mirror-symmetric: every vertex's mirror image across x = 0 is a vertex
    for symmetric in (False, True):
        bpy.ops.image_to_3d.reextract(resolution=48, iso=0.5, symmetric=symmetric)
        co = np.empty(3 * len(obj.data.vertices), np.float32)
        obj.data.vertices.foreach_get("co", co)
        co = co.reshape(-1, 3)
        mirrored = co * np.array([-1, 1, 1], np.float32)
        gap = max(
            float(np.sqrt(((co - m) ** 2).sum(1)).min())
            for m in mirrored[:: max(1, len(co) // 400)]
        )
        result[f"mirror_gap_{symmetric}"] = [gap, closed(obj.data)]
    # a view hint: named from the front, the picture's left half (red) colours the -x side;
    # from the back, the +x side
    result["view_items"] = [
        item.identifier for item in settings.bl_rna.properties["view"].enum_items
    ]
    red_share = {}
    for view in ("front", "back"):
        bpy.ops.image_to_3d.reextract(resolution=48, iso=0.5, view=view)
        mesh = obj.data
        co = np.empty(3 * len(mesh.vertices), np.float32)
        mesh.vertices.foreach_get("co", co)
        co = co.reshape(-1, 3)
        rgba = np.empty(4 * len(mesh.vertices), np.float32)
        mesh.color_attributes["Col"].data.foreach_get("color_srgb", rgba)
        rgba = rgba.reshape(-1, 4)
        left = (co[:, 1] < -0.1) & (co[:, 0] < -0.15)
        red_share[view] = float((rgba[left, 0] > rgba[left, 2]).mean())
        red_share[view + " said"] = obj.get("image_to_3d_view", "").split(" ")[0]
    result["red_share"] = red_share
    settings.view, settings.fit_silhouette = "front", True
    can_fit = addon.operators.can_fit_silhouette
    result["can_fit"] = [can_fit(settings)]
    result["fit_status"] = list(bpy.ops.image_to_3d.reconstruct())
    fitted = bpy.context.view_layer.objects.active
    result["fit"] = [fitted.name != obj.name, len(fitted.data.polygons), closed(fitted.data)]
    models_dir = Path(settings_in["models"])
    result["methods"] = [
        addon.models_index.method_of(str(models_dir / name))
        for name in ("good_octahedron.safetensors", "pc_flange.safetensors", "missing.safetensors")
    ]
    settings.view, settings.fit_silhouette = "auto", False
    if fitted is not obj:
        bpy.data.objects.remove(fitted)
    bpy.context.view_layer.objects.active = obj
    # undo removes what the operator added, redo brings it back. In background mode the
    # window manager creates no undo stack and pushes no step after an UNDO operator; a
    # first push creates the stack, and the push after the operator is the one the window
    # manager makes in the UI.
    op_class = bpy.types.IMAGE_TO_3D_OT_reconstruct
    try:
        count = len(bpy.data.objects)
        bpy.ops.ed.undo_push(message="before")
        bpy.ops.image_to_3d.reconstruct()
        bpy.ops.ed.undo_push(message=op_class.bl_label)
        added = len(bpy.data.objects) - count
        bpy.ops.ed.undo()
        after_undo = len(bpy.data.objects) - count
        bpy.ops.ed.redo()
        redone = bpy.context.view_layer.objects.active
        undo = {
            "added": added,
            "after_undo": after_undo,
            "after_redo": len(bpy.data.objects) - count,
        }
        undo["redone_faces"] = len(redone.data.polygons) if redone else 0
        bpy.ops.image_to_3d.reextract(resolution=32, iso=0.5)  # its cached encoding survives
        undo["reextract_after_redo"] = [undo["redone_faces"], len(redone.data.polygons)]
        undo["bl_options"] = sorted(op_class.bl_options)
        result["undo"] = undo
    except (RuntimeError, AttributeError) as exc:
        result["undo"] = {"error": str(exc).strip().splitlines()[-1]}
    # undo reloads the scene's data: Python references taken before it are stale
    settings = bpy.context.scene.image_to_3d

# -- a point cloud -------------------------------------------------------------------------
settings.output = "points"
settings.point_count = 3000
bpy.context.scene.cursor.location = (3.0, 0.0, 0.0)
result["points_status"] = list(bpy.ops.image_to_3d.reconstruct())
cloud = bpy.context.view_layer.objects.active
if cloud is not None and cloud.modifiers:
    modifier = cloud.modifiers[0]
    nodes = [n.bl_idname for n in modifier.node_group.nodes]
    result["points"] = {
        "vertices": len(cloud.data.vertices),
        "faces": len(cloud.data.polygons),
        "modifier": modifier.type,
        "mesh_to_points": "GeometryNodeMeshToPoints" in nodes,
        "attributes": sorted(a.name for a in cloud.data.attributes),
    }
    evaluated = cloud.evaluated_get(bpy.context.evaluated_depsgraph_get())
    result["points"]["evaluated_points"] = (
        len(evaluated.data.points) if hasattr(evaluated.data, "points") else -1
    )
    render("points", cloud, "CYCLES")
    settings.point_count = 1500
    result["points"]["reextract"] = list(bpy.ops.image_to_3d.reextract())
    result["points"]["reextracted_vertices"] = len(cloud.data.vertices)
    settings.point_count = 3000
if addon.bridge.NATIVE_POINTS:  # Blender 4.5+: a Point Cloud object
    settings.native_points = True
    result["native_status"] = list(bpy.ops.image_to_3d.reconstruct())
    native = bpy.context.view_layer.objects.active
    result["native"] = {
        "type": native.type,
        "points": len(native.data.points),
        "attributes": sorted(a.name for a in native.data.attributes if not a.name.startswith(".")),
        "materials": [m.name for m in native.data.materials if m],
    }
    settings.point_count = 1500
    result["native"]["reextract"] = list(bpy.ops.image_to_3d.reextract())
    result["native"]["reextracted"] = [native.type, len(native.data.points)]
    render("native_points", native, "CYCLES")
    settings.native_points, settings.point_count = False, 3000
settings.output = "mesh"

# -- a folder of pictures ------------------------------------------------------------------
count = len(bpy.data.objects)
result["batch_status"] = list(bpy.ops.image_to_3d.batch(directory=settings_in["folder"]))
result["batch_added"] = len(bpy.data.objects) - count

# -- cancel: the worker process is killed and nothing reaches the scene ----------------------
job = addon.operators._job(settings, settings_in["image"])
if True:  # a worker of the configured Python, or of this one
    # two jobs in a row share the long-lived worker, which keeps the model loaded
    first = addon.runner.WorkerJob(dict(job, output="points"))
    first.wait(300)
    pid = first.worker.process.pid
    second = addon.runner.WorkerJob(dict(job, output="points"))
    second.wait(300)
    result["server_reused"] = (
        first.shared
        and second.shared
        and second.worker.process.pid == pid
        and first.done
        and second.done
    )
    count = len(bpy.data.objects)
    worker = addon.runner.WorkerJob(dict(job, resolution=256))  # long enough to cancel
    time.sleep(0.3)
    worker.cancel()
    code = worker.worker.process.returncode
    result["cancel"] = {
        "killed": code is not None and code != 0,
        "result_written": Path(worker.job["result"]).exists(),
        "scene_unchanged": len(bpy.data.objects) == count,
    }
    after = addon.runner.WorkerJob(dict(job, output="points"))  # a fresh worker after cancel
    after.wait(300)
    result["cancel"]["next_job_runs"] = after.done and after.worker.process.pid != pid

# -- the button's path: invoke starts the job in a worker, modal() follows its progress on
# timer events and stops it on Esc or the Cancel button. Background mode has no window event
# loop, so the test sends the events the window manager would, to the operator's own code.
op_class = bpy.types.IMAGE_TO_3D_OT_reconstruct


class Driven:
    """The reconstruct operator's own methods on a plain object (Blender creates operator
    instances only through its operator system)."""

    _start, _prepare, _finish = op_class._start, op_class._prepare, op_class._finish
    _stop, modal = op_class._stop, op_class.modal
    _timer = None

    def __init__(self):
        self.reports = []

    def report(self, kind, text):
        self.reports.append((sorted(kind)[0], text))


def event(kind):
    return types.SimpleNamespace(type=kind)


def drive(driven, stop_after=None, stop_with="ESC"):
    """Timer events until the operator ends (or, after ``stop_after`` s, ``stop_with``)."""
    context, seen, start = bpy.context, [], time.perf_counter()
    while time.perf_counter() - start < 300:
        if stop_after is not None and time.perf_counter() - start > stop_after:
            if stop_with == "CANCEL_BUTTON":
                bpy.ops.image_to_3d.cancel()
                return sorted(driven.modal(context, event("TIMER"))), seen
            return sorted(driven.modal(context, event(stop_with))), seen
        status = driven.modal(context, event("TIMER"))
        seen.append((round(settings.progress, 3), settings.status))
        if status != {"RUNNING_MODAL"}:
            return sorted(status), seen
        time.sleep(0.05)
    return ["TIMEOUT"], seen


modal = {}
count = len(bpy.data.objects)
settings.resolution = 64
driven = Driven()
modal["started"] = driven._start(bpy.context)
status, seen = drive(driven)
progress = [p for p, _ in seen]
modal["full"] = {
    "status": status,
    "added": len(bpy.data.objects) - count,
    "progress_rises": progress == sorted(progress) and len(set(progress)) > 2,
    "stages": sorted({stage for _, stage in seen}),
    "final_status": settings.status,
}
for stop_with in ("ESC", "CANCEL_BUTTON"):
    count = len(bpy.data.objects)
    settings.resolution = 256  # long enough to stop mid-way
    driven = Driven()
    driven._start(bpy.context)
    status, seen = drive(driven, stop_after=0.5, stop_with=stop_with)
    worker = driven._worker.worker.process
    worker.wait(10)
    modal[stop_with] = {
        "status": status,
        "killed": worker.returncode not in (None, 0),
        "scene_unchanged": len(bpy.data.objects) == count,
        "settings_status": settings.status,
        "report": driven.reports[-1] if driven.reports else None,
    }
settings.resolution = 128
result["modal"] = modal

# -- a point-cloud model with Views Must Agree, then re-extracted without -----------------
saved = settings.output, settings.point_count
settings.model = str(Path(settings_in["models"]) / "pc_flange.safetensors")
settings.output, settings.point_count, settings.views_agree = "points", 1_000_000, True
# Fit Silhouette is greyed out for point-cloud models: left on, it is not sent
settings.view, settings.fit_silhouette = "front", True
result.setdefault("can_fit", []).append(addon.operators.can_fit_silhouette(settings))
agree = result["views_agree"] = {"status": list(bpy.ops.image_to_3d.reconstruct())}
settings.view, settings.fit_silhouette = "auto", False
result.setdefault("can_fit", []).append(addon.operators.can_fit_silhouette(settings))
flange = bpy.context.view_layer.objects.active


def radii(obj) -> np.ndarray:
    coords = np.zeros(3 * len(obj.data.vertices))
    obj.data.vertices.foreach_get("co", coords)
    return np.linalg.norm(coords.reshape(-1, 3), axis=1)


agree["on"] = [len(flange.data.vertices), float(radii(flange).max())]
agree["reextract"] = list(bpy.ops.image_to_3d.reextract(views_agree=False))
agree["off"] = [len(flange.data.vertices), float(radii(flange).max())]
settings.model, settings.views_agree = good_model, False
settings.output, settings.point_count = saved


# -- the mask preview and its Background choice ------------------------------------------
class DrivenMask:
    execute = bpy.types.IMAGE_TO_3D_OT_show_mask.execute

    def __init__(self):
        self.reports = []

    def report(self, kind, text):
        self.reports.append([sorted(kind)[0], text])


masks = result["mask"] = {
    "items": [i.identifier for i in settings.bl_rna.properties["background"].enum_items]
}
for choice in ("auto", "alpha", "segment", "plain"):
    settings.background = choice
    driven_mask = DrivenMask()
    status = driven_mask.execute(bpy.context)
    shown = bpy.data.images.get("Image to 3D mask")
    masks[choice] = [
        list(status),
        driven_mask.reports[-1],
        settings.mask_warning,
        shown is not None,
    ]
speck = bpy.data.images.new("speck", 100, 100, alpha=True)
pixels = np.zeros((100, 100, 4), np.float32)
pixels[49:51, 49:51] = (1.0, 0.0, 0.0, 1.0)
speck.pixels = pixels.ravel()
speck.filepath_raw = str(Path(settings_in["render_dir"]) / "speck.png")
speck.file_format = "PNG"
speck.save()
settings.image_path, settings.background = speck.filepath_raw, "auto"
driven_mask = DrivenMask()
masks["speck"] = [
    list(driven_mask.execute(bpy.context)),
    driven_mask.reports[-1],
    settings.mask_warning,
]
settings.image_path = settings_in["image"]

# -- bad inputs: one line each, scene unchanged --------------------------------------------
settings.image_path = settings_in["image"] + ".missing.png"
attempt("missing_image")
settings.image_path = settings_in["image"]
settings.model = str(Path(settings_in["models"]) / "corrupt.safetensors")
attempt("corrupt_model")
settings.model = str(Path(settings_in["models"]) / "blank_octahedron.safetensors")
attempt("blank_model")  # an empty result: how close the field came, in one line
# a field below the iso level: a mesh at a lower level, and a warning that says so
settings.model = str(Path(settings_in["models"]) / "faint_octahedron.safetensors")
count = len(bpy.data.objects)
driven = Driven()
driven._start(bpy.context)
status, _ = drive(driven)
faint = bpy.context.view_layer.objects.active
result["faint_model"] = {
    "status": status,
    "added": len(bpy.data.objects) - count,
    "report": driven.reports[-1] if driven.reports else None,
    "closed": closed(faint.data),
}
# the folder batch with it: one warning for the whole row, naming the first picture


class DrivenBatch:
    execute = bpy.types.IMAGE_TO_3D_OT_batch.execute
    directory, spacing = settings_in["folder"], 1.2

    def __init__(self):
        self.reports = []

    def report(self, kind, text):
        self.reports.append((sorted(kind)[0], text))


batch = DrivenBatch()
result["faint_batch"] = {"status": sorted(batch.execute(bpy.context)), "report": batch.reports}
settings.model = good_model
prefs.backend, prefs.python_path = "external", settings_in["no_torch_python"]
attempt("no_torch")
prefs.backend, prefs.python_path = "auto", settings_in["external_python"]

# -- "Install dependencies": real pip, against a folder of stand-in wheels -------------------
# (last: the stand-ins would shadow the real libraries in later worker jobs)
os.environ.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=settings_in["wheels"])
os.environ.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CONFIG_FILE=os.devnull)  # no pip.conf
target = addon.runner.site_packages()
install = result["install"] = {}
bpy.context.preferences.system.use_online_access = False
try:
    bpy.ops.image_to_3d.install_dependencies()
    install["offline"] = "no error"
except RuntimeError as exc:
    install["offline"] = str(exc).strip().splitlines()[-1]
install["offline_installed"] = sorted(p.name for p in target.iterdir())
bpy.context.preferences.system.use_online_access = True
try:
    install["status"] = list(bpy.ops.image_to_3d.install_dependencies())
except RuntimeError as exc:
    install["status"] = str(exc).strip().splitlines()[-1]
install["installed"] = sorted(p.name for p in target.iterdir())
install["on_path"] = str(target) in sys.path

bpy.ops.preferences.addon_disable(module=module)
result["panel_after_disable"] = hasattr(bpy.types, "RECON_PT_main")
result["operator_after_disable"] = hasattr(bpy.types, "IMAGE_TO_3D_OT_reconstruct")
bpy.ops.preferences.addon_enable(module=module)
result["panel_after_enable"] = hasattr(bpy.types, "RECON_PT_main")
with open(settings_in["result"], "w") as handle:
    json.dump(result, handle)
