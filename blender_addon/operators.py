"""Operators. Heavy imports (torch, recon_core) happen only when a job runs, so enabling
the add-on is instant and a missing torch is a one-line message, never a traceback."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import bpy

from . import bridge, runner
from .models_index import method_of
from .properties import ExtractionSettings

ENCODING_KEY = "image_to_3d_encoding"
OUTPUT_KEY = "image_to_3d_output"
VIEW_KEY = "image_to_3d_view"
"""Where the colours were seen from, in words (Taken From sets it when this is wrong)."""
PICTURES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")


def can_fit_silhouette(settings) -> bool:
    """Whether Fit Silhouette applies: a view is set and the model is not a point-cloud one
    (the panel greys the option out otherwise, and the job never asks for it then)."""
    return settings.view != "auto" and method_of(settings.model) != "pointcloud"


def _extraction(options, settings) -> dict:
    """The job fields that turn an encoding into geometry: ``options`` holds the
    `ExtractionSettings` (the scene's settings, or Re-extract's own), ``settings`` the
    scene's for the rest."""
    return {
        "resolution": options.resolution,
        "iso": options.iso,
        "faces": options.face_budget,
        "symmetric": options.symmetric,
        "view": options.view,
        "consistency": 0 if options.views_agree else None,
        "points": settings.point_count,
        "device": settings.device,
    }


def _job(settings, image: str, encoding: str | None = None) -> dict:
    cache = runner.user_dir("cache")
    stem = Path(image).stem if image else "result"
    job = {
        "model": settings.model,
        "output": settings.output,
        **_extraction(settings, settings),
        "fit_silhouette": settings.fit_silhouette and can_fit_silhouette(settings),
        "background": settings.background,
    }
    if encoding:
        job["encoding"] = encoding
    else:
        job["image"] = image
        job["save_encoding"] = str(cache / f"{stem}-{uuid.uuid4().hex[:12]}.npz")
        mask = bpy.path.abspath(settings.mask_path) if settings.mask_path else ""
        if mask:
            job["mask"] = mask
    return job


def _check(settings) -> str | None:
    """A one-line reason the job cannot start, or None."""
    kind, status = runner.backend()
    if kind == "inprocess" and not runner.torch_in_blender()[0]:
        return f"{status}: set an external Python or install dependencies (add-on preferences)"
    path = bpy.path.abspath(settings.image_path)
    if not path or not os.path.isfile(path):
        return f"{path or 'no image chosen'}: no such image file"
    if not settings.model:
        return "no model: add .safetensors models to the user models folder"
    return None


def _describe(obj) -> str:
    """ "NAME: N faces" for a mesh, "NAME: N points" for a point cloud."""
    if obj.type == "POINTCLOUD":
        return f"{obj.name}: {len(obj.data.points)} points"
    if not obj.data.polygons:
        return f"{obj.name}: {len(obj.data.vertices)} points"
    return f"{obj.name}: {len(obj.data.polygons)} faces"


def _report_result(operator, result: dict, text: str) -> None:
    """INFO with what was made and where the colours were seen from, or WARNING when the
    worker left a note (a lowered iso level)."""
    seen = f"; colours seen from {result['view_text']}" if "view_text" in result else ""
    if "note" in result:
        operator.report({"WARNING"}, f"{text} ({result['note']}){seen}")
    else:
        operator.report({"INFO"}, text + seen)


def build_result(
    context, name: str, result: dict, encoding: str | None, output: str, offset=(0.0, 0.0, 0.0)
) -> list:
    """Objects for a job's result at the 3D cursor (+ ``offset``)."""
    location = context.scene.cursor.location.copy()
    location.x += offset[0]
    objects = []
    if "vertices" in result:
        obj = bridge.mesh_object(
            name,
            result["vertices"],
            result["faces"],
            location,
            context.collection,
            result.get("colours"),
        )
        objects.append(obj)
    if "points" in result:
        obj = bridge.points_object(
            name + (" points" if objects else ""),
            result["points"],
            location,
            context.collection,
            result.get("point_colours"),
        )
        if bridge.NATIVE_POINTS and context.scene.image_to_3d.native_points:
            bridge.make_native_points(context, obj)
        objects.append(obj)
    for obj in objects:
        if encoding:
            obj[ENCODING_KEY] = encoding
        points = obj.type == "POINTCLOUD" or obj.modifiers.get("Mesh to Points")
        obj[OUTPUT_KEY] = "points" if points else "mesh"
        if "view_text" in result:
            obj[VIEW_KEY] = str(result["view_text"])
    for obj in objects[:1]:
        context.view_layer.objects.active = obj
        obj.select_set(True)
    return objects


class RECON_OT_reconstruct(bpy.types.Operator):
    """Reconstruct the object in the chosen picture at the 3D cursor (Esc cancels)"""

    bl_idname = "image_to_3d.reconstruct"
    bl_label = "Reconstruct"
    bl_options = {"REGISTER", "UNDO"}

    _timer = None
    _worker = None

    def _finish(self, context, result: dict) -> set:
        settings = context.scene.image_to_3d
        name = Path(bpy.path.abspath(settings.image_path)).stem
        job = self._job
        objects = build_result(context, name, result, job.get("save_encoding"), job["output"])
        _report_result(self, result, "; ".join(_describe(o) for o in objects))
        settings.status = "Done"
        return {"FINISHED"}

    def _prepare(self, context) -> bool:
        """Check the settings and build the job; False (after reporting) when they fail."""
        settings = context.scene.image_to_3d
        problem = _check(settings)
        if problem:
            self.report({"ERROR"}, problem)
            return False
        self._job = _job(settings, bpy.path.abspath(settings.image_path))
        return True

    def execute(self, context):  # scripts and background mode: runs to the end
        if not self._prepare(context):
            return {"CANCELLED"}
        try:
            result = runner.run(self._job)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return self._finish(context, result)

    def _start(self, context) -> bool:
        """Check the settings and start the job in a worker; False (after reporting) when
        either fails."""
        if not self._prepare(context):
            return False
        settings = context.scene.image_to_3d
        try:
            self._worker = runner.WorkerJob(self._job)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return False
        settings.progress, settings.status, settings.cancel_requested = 0.0, "Starting", False
        return True

    def invoke(self, context, event):  # the button: a worker process, progress, Esc
        if not self._start(context):
            return {"CANCELLED"}
        self._timer = context.window_manager.event_timer_add(0.1, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def _stop(self, context) -> None:
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None

    def modal(self, context, event):
        settings = context.scene.image_to_3d
        if event.type == "ESC" or settings.cancel_requested:
            settings.cancel_requested = False
            self._worker.cancel()
            self._stop(context)
            settings.status = "Cancelled"
            self.report({"WARNING"}, "Reconstruction cancelled")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        finished = self._worker.poll()
        settings.progress, settings.status = self._worker.progress, self._worker.stage.capitalize()
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()
        if not finished:
            return {"RUNNING_MODAL"}
        self._stop(context)
        if self._worker.error:
            settings.status = "Failed"
            self.report({"ERROR"}, self._worker.error)
            return {"CANCELLED"}
        return self._finish(context, self._worker.result())


class RECON_OT_cancel(bpy.types.Operator):
    """Cancel the running reconstruction"""

    bl_idname = "image_to_3d.cancel"
    bl_label = "Cancel"

    def execute(self, context):
        context.scene.image_to_3d.cancel_requested = True
        return {"FINISHED"}


class RECON_OT_reextract(bpy.types.Operator, ExtractionSettings):
    """Rebuild the selected result at another resolution or iso level from its cached
    encoding, without running the image encoder again"""

    bl_idname = "image_to_3d.reextract"
    bl_label = "Re-extract"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and ENCODING_KEY in obj

    def invoke(self, context, event):
        settings = context.scene.image_to_3d
        for name in ExtractionSettings.__annotations__:
            setattr(self, name, getattr(settings, name))
        return self.execute(context)

    def execute(self, context):
        obj = context.active_object
        encoding = obj[ENCODING_KEY]
        if not os.path.isfile(encoding):
            self.report({"ERROR"}, f"{encoding}: the cached encoding is gone; reconstruct again")
            return {"CANCELLED"}
        output = obj.get(OUTPUT_KEY, "mesh")
        job = {
            "encoding": encoding,
            "output": output,
            **_extraction(self, context.scene.image_to_3d),
        }
        try:
            result = runner.run(job)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        old = obj.data
        if output == "mesh":
            obj.data = bridge.new_mesh(
                old.name, result["vertices"], result["faces"], result.get("colours")
            )
        elif obj.type == "POINTCLOUD":  # convert a stand-in, then take its data
            mesh = bridge.new_points_mesh(old.name, result["points"], result.get("point_colours"))
            stand_in = bpy.data.objects.new(old.name, mesh)
            context.collection.objects.link(stand_in)
            bridge.make_native_points(context, stand_in)
            obj.data = stand_in.data
            bpy.data.objects.remove(stand_in)
        else:
            obj.data = bridge.new_points_mesh(
                old.name, result["points"], result.get("point_colours")
            )
        if old.users == 0:
            (bpy.data.pointclouds if obj.type == "POINTCLOUD" else bpy.data.meshes).remove(old)
        if "view_text" in result:  # Taken From may have moved the colours' camera
            obj[VIEW_KEY] = str(result["view_text"])
        _report_result(self, result, _describe(obj))
        return {"FINISHED"}


class RECON_OT_batch(bpy.types.Operator):
    """Reconstruct every picture in a folder into a row of objects from the 3D cursor"""

    bl_idname = "image_to_3d.batch"
    bl_label = "Reconstruct folder"
    bl_options = {"REGISTER", "UNDO"}

    directory: bpy.props.StringProperty(subtype="DIR_PATH")
    spacing: bpy.props.FloatProperty(name="Spacing", default=1.2, min=0.0)

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        settings = context.scene.image_to_3d
        folder = Path(bpy.path.abspath(self.directory))
        pictures = sorted(p for p in folder.glob("*") if p.suffix.lower() in PICTURES)
        if not pictures:
            self.report({"ERROR"}, f"{folder}: no pictures in this folder")
            return {"CANCELLED"}
        made, failed, notes = [], [], []
        wm = context.window_manager
        wm.progress_begin(0, len(pictures))
        for k, picture in enumerate(pictures):
            try:
                job = _job(settings, str(picture))
                result = runner.run(job)
            except ValueError as exc:
                failed.append(str(exc))
                continue
            finally:
                wm.progress_update(k + 1)
            if "note" in result:
                notes.append(f"{picture.name}: {result['note']}")
            made += build_result(
                context,
                picture.stem,
                result,
                job.get("save_encoding"),
                job["output"],
                offset=(len(made) * self.spacing, 0, 0),
            )
        wm.progress_end()
        for obj in made:
            obj.select_set(True)
        if failed:
            self.report({"WARNING"}, f"{len(made)} objects; {len(failed)} failed: {failed[0]}")
        elif notes:
            more = f" (and {len(notes) - 1} more)" if len(notes) > 1 else ""
            self.report(
                {"WARNING"}, f"{len(made)} objects from {len(pictures)} pictures; {notes[0]}{more}"
            )
        else:
            self.report({"INFO"}, f"{len(made)} objects from {len(pictures)} pictures")
        return {"FINISHED"} if made else {"CANCELLED"}


class RECON_OT_show_mask(bpy.types.Operator):
    """Compute the mask the picture will be read with (the mask file, or as Background
    says) and show it in the panel, with a warning beside it when it cannot be right"""

    bl_idname = "image_to_3d.show_mask"
    bl_label = "Show mask"

    def execute(self, context):
        settings = context.scene.image_to_3d
        image = bpy.path.abspath(settings.image_path)
        if not os.path.isfile(image):
            self.report({"ERROR"}, f"{image or 'no image chosen'}: no such image file")
            return {"CANCELLED"}
        target = runner.user_dir("cache") / f"{Path(image).stem}_mask.png"
        job = {
            "image": image,
            "output": "mask",
            "result": str(target),
            "background": settings.background,
        }
        if settings.mask_path:
            job["mask"] = bpy.path.abspath(settings.mask_path)
        settings.mask_warning = ""
        try:
            result = runner.run(job)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        settings.mask_warning = str(result.get("mask_warnings", ""))
        name = "Image to 3D mask"
        old = bpy.data.images.get(name)
        if old is not None:
            bpy.data.images.remove(old)
        mask = bpy.data.images.load(str(target), check_existing=False)
        mask.name = name
        mask.preview_ensure()
        source = str(result.get("mask_source", ""))
        if settings.mask_warning:
            self.report({"WARNING"}, f"mask ({source}): {settings.mask_warning.splitlines()[0]}")
        else:
            self.report({"INFO"}, f"mask ({source}): {target}")
        return {"FINISHED"}


class RECON_OT_install_dependencies(bpy.types.Operator):
    """Install PyTorch and the other libraries into the extension's own folder"""

    bl_idname = "image_to_3d.install_dependencies"
    bl_label = "Install dependencies"

    def execute(self, context):
        import subprocess
        import sys

        if not bpy.app.online_access:
            self.report(
                {"ERROR"},
                "Online access is off (Preferences > System > Network): "
                "allow it, or point the add-on at a Python that has torch",
            )
            return {"CANCELLED"}
        prefs = runner.preferences()
        target = runner.site_packages()
        index = (
            "https://download.pytorch.org/whl/cpu"
            if prefs.torch_build == "cpu"
            else "https://download.pytorch.org/whl/cu124"
        )
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--upgrade",
            "--target",
            str(target),
            "--extra-index-url",
            index,
            "torch",
            "numpy<2",
            "scikit-image",
            "scipy",
            "pillow",
            "safetensors",
            "tqdm",
            "threadpoolctl",
            "fast-simplification",
        ]
        wm = context.window_manager
        wm.progress_begin(0, 1)
        completed = subprocess.run(command, capture_output=True, text=True)
        wm.progress_end()
        if completed.returncode != 0:
            tail = [line for line in completed.stderr.splitlines() if line.strip()]
            self.report({"ERROR"}, f"pip failed: {tail[-1] if tail else completed.returncode}")
            return {"CANCELLED"}
        runner.add_site_packages()
        self.report({"INFO"}, f"installed into {target}; restart Blender if torch was loaded")
        return {"FINISHED"}
