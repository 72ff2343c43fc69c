"""Build a prepared dataset from procedural shapes, Sweet Home 3D, or a folder of meshes.

    python -m training.data.prepare --source procedural --count 20 --out data/procedural
    python -m training.data.prepare --source sweethome3d --categories chair table --out data/sh3d
    python -m training.data.prepare --source folder --path ~/meshes --up +y --front +z \\
        --out data/mine
    python -m training.data.prepare --source sweethome3d --out data/sh3d --variants 2

The build is parallel (``--workers``, default: all cores), shows a progress bar with an ETA,
skips broken meshes with a one-line reason in ``build_log.jsonl``, and resumes where it
stopped when run again with the same ``--out``: finished records are kept, the index is
rewritten from what is on disk. Run again with a larger ``--views``, it renders the input
views each finished record lacks and appends them (its other arrays and first renders stay
as they were). ``--variants N`` then adds N per-axis scaled and mirrored variants of each
train-split shape (`training.data.augment`), which go with their base shape's split.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from recon_core.data import record_path, write_index
from recon_core.files import atomic_write_bytes
from recon_core.geometry import fixed_views
from training.data.pipeline import PrepareSettings, ShapeSpec, add_views, process_spec, worker_init
from training.data.render import RenderSettings
from training.data.sampling import OccupancySettings

__all__ = ["main", "build_dataset", "source_specs"]

SOURCES = ("procedural", "sweethome3d", "folder")


def source_specs(args: argparse.Namespace) -> list[ShapeSpec]:
    """The shapes a command line asks for, before the per-category ``--count`` cap."""
    if args.source == "procedural":
        from training.data.procedural import CATEGORIES, shape_id

        categories = args.categories or list(CATEGORIES)
        unknown = sorted(set(categories) - set(CATEGORIES))
        if unknown:
            raise SystemExit(
                f"error: unknown procedural categories {unknown}; known: {', '.join(CATEGORIES)}"
            )
        count = args.count if args.count is not None else 10
        return [
            ShapeSpec(
                id=shape_id(c, args.first_seed + k),
                category=c,
                kind="procedural",
                params={"seed": args.first_seed + k},
                meta={"source": "procedural"},
            )
            for c in categories
            for k in range(count)
        ]
    if args.source == "sweethome3d":
        from training.data.sources import sweethome3d as sh3d

        cache = Path(args.cache) if args.cache else sh3d.DEFAULT_CACHE
        source = Path(args.path) if args.path else sh3d.fetch_package(cache)
        catalogs = sh3d.extract_catalogs(source, cache)
        entries = sh3d.read_catalogs(catalogs)
        wanted = set(args.categories) if args.categories else None
        specs = []
        for e in entries:
            if wanted is None and e.category in ("other", "door_window", "person"):
                continue
            if wanted is not None and e.category not in wanted:
                continue
            specs.append(sh3d.entry_spec(e, catalogs))
        return specs
    from training.data.sources.folder import folder_specs

    if not args.path:
        raise SystemExit("error: --source folder needs --path DIR")
    specs = folder_specs(Path(args.path), args.layout, args.up, args.front)
    if args.categories:
        specs = [s for s in specs if s.category in set(args.categories)]
    return specs


def _cap_per_category(specs: list[ShapeSpec], count: int | None) -> list[ShapeSpec]:
    if count is None:
        return specs
    seen: Counter = Counter()
    kept = []
    for spec in specs:
        if seen[spec.category] < count:
            kept.append(spec)
            seen[spec.category] += 1
    return kept


def _read_log(path: Path) -> dict[str, dict[str, Any]]:
    """Last logged result per shape id (a torn last line from a kill is ignored)."""
    results: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text("utf-8").splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            results[item["id"]] = item
    return results


def _write_dataset_index(out: Path, settings: PrepareSettings, log: dict[str, dict]) -> dict:
    entries = [
        r["entry"]
        for r in log.values()
        if r["status"] == "ok" and (out / r["entry"]["file"]).exists()
    ]
    entries.sort(key=lambda e: e["id"])
    cameras = fixed_views(settings.fixed_views, settings.view_size)
    index = {
        "fixed_views": {
            "count": settings.fixed_views,
            "size": settings.view_size,
            "projection": "orthographic",
            "extrinsics": [c.extrinsic.tolist() for c in cameras],
            "intrinsic": cameras[0].intrinsic.tolist(),
        },
        "settings": settings.to_dict(),
        "summary": {
            "records": len(entries),
            "categories": dict(sorted(Counter(e["category"] for e in entries).items())),
            "splits": dict(sorted(Counter(e["split"] for e in entries).items())),
            "sources": dict(sorted(Counter(e["source"] for e in entries).items())),
            "licences": dict(sorted(Counter(str(e["licence"]) for e in entries).items())),
            "skipped": sum(1 for r in log.values() if r["status"] == "skipped"),
        },
        "records": entries,
    }
    write_index(out, index)
    return index


def _check_settings(out: Path, settings: PrepareSettings) -> int | None:
    """The first build records its settings; a resumed build must use the same ones (the
    skip limit ``max_faces`` aside, which changes no record), or more input views: then the
    old count is returned and the finished records get the views they lack."""
    path = out / "prepare_settings.json"
    if path.exists():
        old, new = json.loads(path.read_text("utf-8")), json.loads(_settings_text(settings))
        old.pop("max_faces", None)
        new.pop("max_faces", None)
        old_views, new_views = old["render"].pop("views"), new["render"].pop("views")
        if old != new or new_views < old_views:
            raise SystemExit(
                f"error: {out} was built with other settings (see {path}); use a new "
                "--out folder or the same settings (--views may only grow)"
            )
        return old_views if new_views > old_views else None
    _write_settings(out, settings)
    return None


def _settings_text(settings: PrepareSettings) -> str:
    """``prepare_settings.json`` as the build writes it."""
    return json.dumps(settings.to_dict(), indent=1, sort_keys=True)


def _write_settings(out: Path, settings: PrepareSettings) -> None:
    data = _settings_text(settings).encode("utf-8")
    atomic_write_bytes(out / "prepare_settings.json", lambda handle: handle.write(data))


def build_dataset(
    specs: list[ShapeSpec],
    out: Path,
    settings: PrepareSettings,
    workers: int = 2,
    retry_skipped: bool = False,
    progress: bool = True,
) -> dict:
    """Prepare every spec not yet done in ``out``; returns the written index. With more
    ``views`` than ``out`` was built with, its finished records get the views they lack
    (see `training.data.pipeline.add_views`) and the new count is recorded once all have them."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    old_views = _check_settings(out, settings)
    for stale in (out / "records").glob(".*.tmp"):  # left by a build that was killed
        stale.unlink()
    log_path = out / "build_log.jsonl"
    log = _read_log(log_path)
    todo, more_views = [], []
    for spec in specs:
        done = log.get(spec.id)
        if done and done["status"] == "ok" and record_path(out, spec.id).exists():
            if old_views is not None:
                more_views.append(spec)
            continue
        if done and done["status"] == "skipped" and not retry_skipped:
            continue
        todo.append(spec)
    bar = tqdm(
        total=len(todo) + len(more_views),
        desc="preparing",
        unit="shape",
        disable=not progress,
        dynamic_ncols=True,
        file=sys.stderr,
    )
    counts: Counter = Counter()

    finished = {spec.id for spec in more_views}

    def record(result: dict[str, Any]) -> None:
        if result["status"] == "skipped" and result["id"] in finished:
            # its record was unreadable or crashed a worker: the build keeps it as it was
            reason = f"{result['reason']}; kept its views, could not add more"
            result = dict(log[result["id"]], warning=reason, views_added=0)
        log[result["id"]] = result
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(result) + "\n")
        counts[result["status"]] += 1
        if result["status"] == "skipped":
            bar.write(f"skipped {result['reason']}", file=sys.stderr)
        if "warning" in result:
            counts["warning"] += 1
            bar.write(f"warning: {result['warning']}", file=sys.stderr)
        bar.set_postfix(ok=counts["ok"], skipped=counts["skipped"])
        bar.update(1)
        if (counts["ok"] + counts["skipped"]) % 25 == 0:
            _write_dataset_index(out, settings, log)

    for work, batch in ((add_views, more_views), (process_spec, todo)):
        if workers <= 0:
            for spec in batch:
                record(work(spec, settings, str(out)))
        elif batch:
            _run_pool(batch, settings, out, workers, record, work)
    bar.close()
    if old_views is not None and not counts["warning"]:
        _write_settings(out, settings)  # every record has the views now
    return _write_dataset_index(out, settings, log)


def _run_pool(
    todo: list[ShapeSpec],
    settings: PrepareSettings,
    out: Path,
    workers: int,
    record,
    work=process_spec,
) -> None:
    """Run specs in worker processes. A worker that dies (Blender can crash on a broken
    file) takes its pool with it: the pool is restarted and the shapes in flight are tried
    again one at a time; a shape that kills a worker twice is skipped."""
    context = multiprocessing.get_context("spawn")
    queue, suspects = deque(todo), deque()
    crashed_once: set[str] = set()
    while queue or suspects:
        solo = bool(suspects)
        source = suspects if solo else queue
        pool = ProcessPoolExecutor(
            max_workers=1 if solo else workers, mp_context=context, initializer=worker_init
        )
        running: dict = {}
        try:
            while source or running:
                while source and len(running) < (1 if solo else 2 * workers):
                    spec = source.popleft()
                    running[pool.submit(work, spec, settings, str(out))] = spec
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    result = future.result()  # raises BrokenProcessPool if a worker died
                    running.pop(future)
                    record(result)
        except BrokenProcessPool:
            for spec in running.values():
                if spec.id in crashed_once:
                    record(
                        {
                            "id": spec.id,
                            "status": "skipped",
                            "reason": f"{spec.id}: the worker process crashed on this shape",
                            "seconds": 0.0,
                        }
                    )
                else:
                    crashed_once.add(spec.id)
                    suspects.append(spec)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.data.prepare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", choices=SOURCES, required=True, help="where shapes come from")
    parser.add_argument(
        "--path",
        help="folder of meshes (folder), or of the .deb/.sh3f "
        "files (sweethome3d; default: download with apt-get into --cache)",
    )
    parser.add_argument("--out", required=True, help="dataset folder to create or resume")
    parser.add_argument(
        "--categories",
        nargs="+",
        help="only these categories (default: all "
        "known; for sweethome3d, all but other, door_window and person)",
    )
    parser.add_argument(
        "--count", type=int, help="at most this many shapes per category (procedural default: 10)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes (0: run in this process); default: all cores",
    )
    parser.add_argument("--first-seed", type=int, default=0, help="procedural: first seed")
    parser.add_argument("--seed", type=int, default=0, help="base seed for views and samples")
    parser.add_argument(
        "--layout",
        choices=("plain", "shapenet"),
        default="plain",
        help="folder: plain (category = top folder) or ShapeNetCore v2",
    )
    parser.add_argument(
        "--up", help="folder: the files' up axis, e.g. +y (default +z; shapenet +y)"
    )
    parser.add_argument(
        "--front", help="folder: the axis the files' front faces, e.g. +z (default -y; shapenet -z)"
    )
    parser.add_argument("--views", type=int, default=12, help="input renders per shape")
    parser.add_argument("--image-size", type=int, default=128, help="input render size")
    parser.add_argument("--fixed-views", type=int, default=8, choices=(4, 6, 8, 12, 20))
    parser.add_argument("--view-size", type=int, default=128, help="depth map size")
    parser.add_argument("--novel-views", type=int, default=32, help="novel views per shape")
    parser.add_argument(
        "--occupancy-resolution",
        type=int,
        default=256,
        help="flood-fill grid resolution (a multiple of 64)",
    )
    parser.add_argument(
        "--occupancy-points",
        type=int,
        default=100_000,
        help="occupancy samples per shape, half uniform, half near-surface",
    )
    parser.add_argument("--surface-points", type=int, default=100_000)
    parser.add_argument(
        "--max-faces", type=int, default=2_000_000, help="skip meshes with more triangles than this"
    )
    parser.add_argument(
        "--cache",
        help="sweethome3d: download and extraction cache (default ~/.cache/recon3d/sweethome3d)",
    )
    parser.add_argument(
        "--retry-skipped", action="store_true", help="try again the shapes an earlier run skipped"
    )
    parser.add_argument(
        "--variants",
        type=int,
        default=0,
        help="then this many scaled and mirrored variants of each train-split shape "
        "(training.data.augment)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def settings_from_args(args: argparse.Namespace) -> PrepareSettings:
    half = args.occupancy_points // 2
    return PrepareSettings(
        fixed_views=args.fixed_views,
        view_size=args.view_size,
        novel_views=args.novel_views,
        seed=args.seed,
        max_faces=args.max_faces,
        render=RenderSettings(views=args.views, size=args.image_size),
        occupancy=OccupancySettings(
            resolution=args.occupancy_resolution,
            uniform_points=half,
            near_points=args.occupancy_points - half,
            surface_points=args.surface_points,
        ),
    )


def main(argv: Iterable[str] | None = None) -> int:
    args = _parser().parse_args(None if argv is None else list(argv))
    if args.occupancy_resolution % 64:
        raise SystemExit("error: --occupancy-resolution must be a multiple of 64")
    settings = settings_from_args(args)
    try:
        specs = _cap_per_category(source_specs(args), args.count)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not specs:
        print("error: no shapes match the source and categories given", file=sys.stderr)
        return 2
    out = Path(args.out)
    start = time.perf_counter()
    index = build_dataset(
        specs, out, settings, args.workers, args.retry_skipped, progress=not args.no_progress
    )
    if args.variants:
        from training.data.augment import variant_specs

        variants = variant_specs(specs, out, args.variants, args.seed)
        index = build_dataset(
            variants, out, settings, args.workers, args.retry_skipped, not args.no_progress
        )
    summary = index["summary"]
    minutes = (time.perf_counter() - start) / 60.0
    print(
        f"{out}: {summary['records']} records "
        f"({', '.join(f'{k} {v}' for k, v in summary['categories'].items())}); "
        f"{summary['skipped']} skipped; {minutes:.1f} min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
