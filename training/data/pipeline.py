"""From a shape to a prepared record: renders, depth maps, occupancy, voxels, surface points."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recon_core.data import read_record, record_path, split_of, write_record
from recon_core.geometry import fixed_views, sample_novel_views
from training.data.meshes import MAX_FACES, MeshError, Shape, first_line, shape_from_file
from training.data.render import RenderSettings, sample_input_cameras
from training.data.sampling import (
    OccupancySettings,
    downsample_voxels,
    occupancy_samples,
    outer_surface_samples,
    solid_grid,
)

__all__ = [
    "PrepareSettings",
    "ShapeSpec",
    "load_shape",
    "build_record",
    "process_spec",
    "worker_init",
]


@dataclass
class PrepareSettings:
    """Everything that decides the content of a prepared record."""

    fixed_views: int = 8
    """Fixed fusion views (4, 6, 8, 12 or 20)."""
    view_size: int = 128
    """Side of the fixed- and novel-view depth maps in pixels."""
    novel_views: int = 32
    """Random novel views per shape."""
    seed: int = 0
    """Base seed; each shape's random choices derive from it and the shape id."""
    max_faces: int = MAX_FACES
    """Meshes with more triangles are skipped."""
    render: RenderSettings = field(default_factory=RenderSettings)
    occupancy: OccupancySettings = field(default_factory=OccupancySettings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ShapeSpec:
    """A picklable description of one shape to prepare (the worker loads it)."""

    id: str
    category: str
    kind: str
    """``procedural`` (params: seed) or ``file`` (params: path, up, front, and optionally
    rotation and stretch_to, see `training.data.meshes.source_transform`). Either may carry
    ``variant``: the diagonal (3,) of a per-axis scale or mirror applied after loading
    (`training.data.augment`)."""
    params: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


def load_shape(spec: ShapeSpec, max_faces: int = MAX_FACES) -> Shape:
    """Build or load the shape a spec describes. Raises MeshError for unusable meshes."""
    if "variant" in spec.params:
        from training.data.augment import vary_shape

        params = {k: v for k, v in spec.params.items() if k != "variant"}
        base = load_shape(dataclasses.replace(spec, params=params), max_faces)
        return vary_shape(base, np.diag(spec.params["variant"]), spec.id)
    if spec.kind == "procedural":
        from training.data.procedural import make_shape

        shape = make_shape(spec.category, int(spec.params["seed"]))
        shape.meta.update(spec.meta)
        return shape
    if spec.kind == "file":
        params = spec.params
        path = Path(params["path"])
        return shape_from_file(
            path,
            spec.id,
            spec.category,
            up=params.get("up", "+z"),
            front=params.get("front", "-y"),
            rotation=None if params.get("rotation") is None else np.asarray(params["rotation"]),
            stretch_to=params.get("stretch_to"),
            meta=spec.meta,
            render_with_blender=path.suffix.lower() in (".obj", ".glb", ".gltf"),
            max_faces=max_faces,
        )
    raise ValueError(f"unknown shape kind {spec.kind!r}")


class _StageClock:
    def __init__(self, stages: dict[str, float] | None):
        self.stages = stages
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self.stages is not None:
            self.stages[name] = self.stages.get(name, 0.0) + now - self.last
        self.last = now


def shape_rng(seed: int, shape_id: str, *stream: int) -> np.random.Generator:
    """A shape's own random stream under ``seed`` (whatever the order shapes are built in);
    ``stream`` names another one (views added later)."""
    digest = int.from_bytes(hashlib.sha256(shape_id.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed, digest, *stream])


def build_record(
    shape: Shape, settings: PrepareSettings, renderer, stages: dict[str, float] | None = None
) -> tuple[dict, dict]:
    """All arrays of one record (see recon_core.data) and its meta. Seconds spent per stage
    are added to ``stages`` when given."""
    from training.data.raycast import RayCaster

    clock = _StageClock(stages)
    rng = shape_rng(settings.seed, shape.id)
    caster = RayCaster(shape.vertices, shape.faces)
    fixed = fixed_views(settings.fixed_views, settings.view_size)
    novel = sample_novel_views(settings.novel_views, rng, settings.view_size)
    fixed_depth = caster.depth_maps(fixed)
    novel_depth = caster.depth_maps(novel)
    if not np.any(fixed_depth > 0):
        raise MeshError(f"{shape.id}: nothing visible from the fixed views")
    clock.lap("depth")

    grid = solid_grid(shape.vertices, shape.faces, settings.occupancy)
    points, labels = occupancy_samples(grid, shape.vertices, shape.faces, settings.occupancy, rng)
    surface, normals = outer_surface_samples(
        grid, shape.vertices, shape.faces, settings.occupancy.surface_points, rng
    )
    voxels = downsample_voxels(grid.state, settings.occupancy.voxel_resolution)
    clock.lap("occupancy")

    cameras = sample_input_cameras(settings.render.views, rng, settings.render)
    renders, intrinsics = renderer.render(shape, cameras, rng)
    clock.lap("render")

    arrays = {
        "renders": renders,
        "render_extrinsics": np.stack([c.extrinsic for c in cameras]),
        "render_intrinsics": intrinsics,
        "fixed_depth": fixed_depth,
        "fixed_extrinsics": np.stack([c.extrinsic for c in fixed]),
        "fixed_intrinsics": fixed[0].intrinsic,
        "novel_depth": novel_depth,
        "novel_extrinsics": np.stack([c.extrinsic for c in novel]),
        "novel_intrinsics": novel[0].intrinsic,
        "occupancy_points": points,
        "occupancy_labels": np.packbits(labels),
        "voxels": np.packbits(voxels.ravel()),
        "surface_points": surface,
        "surface_normals": normals,
    }
    meta = dict(
        shape.meta,
        id=shape.id,
        category=shape.category,
        uniform_count=settings.occupancy.uniform_points,
        voxel_resolution=settings.occupancy.voxel_resolution,
        inside_fraction=float(labels[: settings.occupancy.uniform_points].mean()),
        faces=int(len(shape.faces)),
    )
    return arrays, meta


_RENDERER = None


def worker_init() -> None:
    """Pool initializer. A parent that has imported bpy passes Blender's script folders on
    to spawned children in sys.path; their ``bpy`` package would shadow the real module."""
    import sys

    if "bpy" in sys.modules:
        return
    sys.path[:] = [
        p
        for p in sys.path
        if not (
            "/scripts" in p.replace("\\", "/")
            and ("/bpy/" in p.replace("\\", "/") or "/blender/" in p.replace("\\", "/"))
        )
    ]


def _renderer(settings: PrepareSettings):
    global _RENDERER
    if _RENDERER is None:
        from training.data.render import BlenderRenderer

        _RENDERER = BlenderRenderer(settings.render)
    return _RENDERER


def index_entry(root: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """The index line of a record."""
    return {
        "id": meta["id"],
        "file": str(record_path(root, meta["id"]).relative_to(root)),
        "category": meta["category"],
        "split": split_of(meta["id"]),
        "source": meta.get("source"),
        "licence": meta.get("licence"),
        "author": meta.get("author"),
        "uniform_count": meta["uniform_count"],
    }


def process_spec(spec: ShapeSpec, settings: PrepareSettings, root: str) -> dict[str, Any]:
    """Worker entry point: prepare one shape and write its record. Never raises for a bad
    mesh: returns ``{"id", "status": "ok"|"skipped", "reason", "seconds", "entry",
    "stages"}`` (seconds per stage: load, depth, occupancy, render, write)."""
    start = time.perf_counter()
    root_path = Path(root)
    stages: dict[str, float] = {}
    try:
        shape = load_shape(spec, settings.max_faces)
        stages["load"] = time.perf_counter() - start
        arrays, meta = build_record(shape, settings, _renderer(settings), stages)
        clock = _StageClock(stages)
        write_record(root_path, arrays, meta)
        clock.lap("write")
        entry = index_entry(root_path, meta)
        return {
            "id": spec.id,
            "status": "ok",
            "entry": entry,
            "seconds": time.perf_counter() - start,
            "stages": stages,
        }
    except (MeshError, ValueError) as exc:
        return {
            "id": spec.id,
            "status": "skipped",
            "reason": first_line(exc),
            "seconds": time.perf_counter() - start,
        }
    except MemoryError:
        return {
            "id": spec.id,
            "status": "skipped",
            "reason": f"{spec.id}: out of memory",
            "seconds": time.perf_counter() - start,
        }


RENDER_KEYS = ("renders", "render_extrinsics", "render_intrinsics")
"""The record arrays that hold its input renders, one row per view."""


def add_views(spec: ShapeSpec, settings: PrepareSettings, root: str) -> dict[str, Any]:
    """Worker entry point when a finished dataset is rebuilt with a larger ``views``: render
    the input views the shape's record lacks and append them. Its first renders and every
    other array stay as they were, so figures measured on them stay comparable; the new
    cameras come from a random stream of their own. Returns what `process_spec` does, with
    ``views_added`` (and ``warning`` when none could be added); a record that already has the
    views is left untouched, one that cannot be read is reported as skipped."""
    start = time.perf_counter()
    try:
        arrays, meta = read_record(record_path(Path(root), spec.id))
    except ValueError as exc:  # DatasetError: the build keeps the record as it is
        return {"id": spec.id, "status": "skipped", "reason": str(exc), "seconds": 0.0}
    have = len(arrays["renders"])
    missing = max(settings.render.views - have, 0)
    stages: dict[str, float] = {}
    result = {"id": spec.id, "status": "ok", "entry": index_entry(Path(root), meta)}
    try:
        if missing:
            shape = load_shape(spec, settings.max_faces)
            clock = _StageClock(stages)
            stages["load"] = time.perf_counter() - start
            rng = shape_rng(settings.seed, spec.id, have)
            cameras = sample_input_cameras(missing, rng, settings.render)
            renders, intrinsics = _renderer(settings).render(shape, cameras, rng)
            clock.lap("render")
            added = (renders, np.stack([c.extrinsic for c in cameras]), intrinsics)
            for key, extra in zip(RENDER_KEYS, added, strict=True):
                arrays[key] = np.concatenate([arrays[key], extra.astype(arrays[key].dtype)])
            write_record(Path(root), arrays, meta)  # it sets the format version again
            clock.lap("write")
        result["views_added"] = missing
    except (MeshError, ValueError, MemoryError) as exc:  # the record stays as it was
        result["views_added"] = 0
        result["warning"] = (
            f"{spec.id}: kept its {have} views, could not add more ({first_line(exc)})"
        )
    return dict(result, seconds=time.perf_counter() - start, stages=stages)
