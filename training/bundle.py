"""Turn a trained run into a bundled model: evaluate it on the test split beside the
retrieval baseline, store fp16 weights with the metrics and credits in their metadata, and
write the models' README table and credits.

    python -m training.bundle --run runs/implicit-bundled --name implicit \\
        --data data/sweethome3d --train-data data/bundled --out blender_addon/models

The add-on and ``recon3d`` read the same files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import torch

from recon_core.checkpoint import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from recon_core.data import DatasetError, read_index
from recon_core.files import atomic_write_bytes
from recon_core.methods.implicit import LOWERED_ISO_SHARE
from training.reports.evaluate import cell, evaluate

__all__ = ["bundle", "write_models_readme", "main"]

SIZE_LIMIT_MB = 25.0

_COLUMNS = {
    "implicit": (
        ("iou", "IoU"),
        ("chamfer_l1", "Chamfer-L1"),
        ("normal_consistency", "normal cons."),
        ("f_score@0.01", "F@1%"),
        ("f_score@0.02", "F@2%"),
    ),
    "pointcloud": (
        ("pred_to_gt_x100", "pred->GT x100"),
        ("gt_to_pred_x100", "GT->pred x100"),
        ("f_score@0.01", "F@1%"),
        ("f_score@0.02", "F@2%"),
    ),
}


def _credits(train_data: Path) -> list[dict]:
    """The attributed (CC-BY) models among the training records, as their licence asks."""
    index = read_index(train_data)
    seen, credits = set(), []
    for entry in index["records"]:
        licence = str(entry.get("licence", ""))
        if entry["split"] != "train" or not licence.startswith("CC-BY"):
            continue
        key = (entry["id"], entry.get("author"))
        if key not in seen:
            seen.add(key)
            credits.append(
                {
                    "model": entry["id"],
                    "author": entry.get("author") or "unknown",
                    "licence": licence,
                }
            )
    return credits


def bundle(
    run: Path,
    name: str,
    data: Path,
    train_data: Path,
    out: Path,
    report: Path | None = None,
    resolution: int = 128,
    progress: bool = True,
) -> Path:
    model_path = run / "model.safetensors"
    if not model_path.exists():
        raise CheckpointError(f"{model_path}: the run has not finished (no model.safetensors)")
    report = report or run / "test-report"
    # placement "user": a viewer-frame model is scored as users get it, turned upright by
    # its own elevation estimate (the other models are not moved either way)
    metrics = evaluate(
        model_path,
        data,
        "test",
        report,
        resolution,
        progress=progress,
        retrieval=train_data,
        placement="user",
    )
    checkpoint = load_checkpoint(model_path)
    summary = {
        "split": "test",
        "data": Path(data).name,
        "mean_over_categories": metrics["mean_over_categories"],
        "per_category": metrics["per_category"],
        "retrieval": {
            "mean_over_categories": metrics["retrieval"]["mean_over_categories"],
            "per_category": metrics["retrieval"]["per_category"],
        },
    }
    if "placement" in metrics:
        summary["placement"] = metrics["placement"]
    if "lowered_iso_shapes" in metrics:
        summary["lowered_iso_shapes"] = metrics["lowered_iso_shapes"]
    credits = _credits(train_data)
    info = dict(checkpoint.info)
    info.update(
        metrics=summary,
        trained_on=Path(train_data).name,
        credits=[f"{c['model']} by {c['author']} ({c['licence']})" for c in credits],
    )
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}.safetensors"
    state = {k: v for k, v in checkpoint.model_state.items()}
    viewpoint = None  # a run's checkpoint that already has its estimator keeps it
    if checkpoint.viewpoint_state is not None:
        viewpoint = (checkpoint.info["viewpoint"], checkpoint.viewpoint_state)
    save_checkpoint(
        target, checkpoint.config, state, info, dtype=torch.float16, viewpoint=viewpoint
    )
    size = target.stat().st_size / 1e6
    if size > SIZE_LIMIT_MB:
        target.unlink()
        raise CheckpointError(f"{target}: {size:.1f} MB, over the {SIZE_LIMIT_MB:.0f} MB budget")
    write_models_readme(out)
    return target


def _table(method: str, metrics: dict) -> list[str]:
    columns = _COLUMNS[method]
    header = (
        "| category | shapes | "
        + " | ".join(f"{label} | retrieval {label}" for _, label in columns)
        + " |"
    )
    lines = [header, "|---|---:|" + "---:|---:|" * len(columns)]
    rows = dict(metrics["per_category"])
    rows["**mean**"] = metrics["mean_over_categories"]
    base = dict(metrics["retrieval"]["per_category"])
    base["**mean**"] = metrics["retrieval"]["mean_over_categories"]
    for category, values in rows.items():
        cells = [f"{cell(values[k], 3)} | {cell(base[category][k], 3)}" for k, _ in columns]
        lines.append(f"| {category} | {int(values['shapes'])} | " + " | ".join(cells) + " |")
    return lines


def _lowered_lines(metrics: dict) -> list[str]:
    """What MODELS.md says of the meshes extracted below the iso level (implicit models)."""
    lowered = metrics.get("lowered_iso_shapes")
    if not lowered:
        return []
    shapes = int(metrics["mean_over_categories"]["shapes"])
    iso = metrics["iso"]
    return [
        f"{lowered} of the {shapes} test meshes came at a lower iso level than {iso:g} "
        f"({LOWERED_ISO_SHARE:g} x their field's highest occupancy): nothing of their field "
        f"reached {iso:g}.",
        "",
    ]


def _placement_text(metrics: dict) -> str:
    """What MODELS.md says of how a viewer-frame model's results were placed."""
    if metrics.get("placement") != "user":
        return ""
    error = metrics["mean_over_categories"].get("elevation_error")
    return (
        " The network reconstructs in the picture's own frame; each result is scored as "
        "users get it, turned upright by the elevation the network estimated"
        + ("" if error is None else f" ({error:.1f} degrees off on average)")
        + ", then turned about the vertical to the render's azimuth."
    )


def _viewpoint_lines(viewpoint: dict | None) -> list[str]:
    """What MODELS.md says of a model's viewpoint estimator."""
    if not viewpoint:
        return []
    metrics = viewpoint["metrics"]
    line = (
        f"Viewpoint estimator (the colours' camera): trained on {metrics.get('train_views')} "
        f"input renders for {metrics.get('steps')} steps"
    )
    for split in ("val", "test"):
        if split in metrics:
            m = metrics[split]
            line += (
                f"; {split} split ({m['views']} renders), on its own: azimuth within 15 degrees "
                f"{m['azimuth_within_15']:.3f}, seen from behind {m['azimuth_flipped']:.3f}, "
                f"elevation error {m['elevation_median_error']:.1f} degrees (median)"
            )
    return [line + ".", ""]


def write_models_readme(folder: Path) -> Path:
    """MODELS.md: per bundled model, its test metrics beside the retrieval baseline; then
    the credits of every attributed training model."""
    lines = ["# Bundled models", ""]
    credits: set[str] = set()
    for path in sorted(folder.glob("*.safetensors")):
        meta = read_metadata(path)
        metrics = meta.get("metrics")
        if not metrics:
            continue
        method = meta["method"]
        size = path.stat().st_size / 1e6
        lines += [
            f"## `{path.stem}` ({method}, {size:.1f} MB, fp16)",
            "",
            f"Trained on `{meta.get('trained_on')}` for {meta.get('step')} steps; "
            f"categories: {', '.join(meta.get('categories', []))}.",
            "",
            f"Test split of `{metrics['data']}` (shapes never seen in training), one input "
            "render per shape; each network figure is followed by the retrieval baseline's "
            "(the training shape whose rendered silhouette best matches the input)."
            + _placement_text(metrics),
            "",
            *_table(method, metrics),
            "",
            *_lowered_lines(metrics),
            *_viewpoint_lines(meta.get("viewpoint")),
        ]
        credits.update(meta.get("credits", []))
    lines += [
        "## Credits",
        "",
        "The bundled models were trained on Sweet Home 3D's furniture library (Debian "
        "package `sweethome3d-furniture`) and on procedural shapes. The library's CC-BY "
        "models used for training, with their authors:",
        "",
        *[f"- {c}" for c in sorted(credits)],
        "",
    ]
    target = folder / "MODELS.md"
    text = "\n".join(lines).encode("utf-8")
    atomic_write_bytes(target, lambda handle: handle.write(text))
    return target


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.bundle",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run", required=True, type=Path, help="finished training run folder")
    parser.add_argument("--name", required=True, help="model name (file stem)")
    parser.add_argument("--data", required=True, type=Path, help="dataset with the test split")
    parser.add_argument("--train-data", required=True, type=Path, help="the training dataset")
    parser.add_argument("--out", type=Path, default=Path("blender_addon/models"))
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        target = bundle(
            args.run,
            args.name,
            args.data,
            args.train_data,
            args.out,
            resolution=args.resolution,
            progress=not args.no_progress,
        )
    except (CheckpointError, DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    meta = read_metadata(target)
    mean = meta["metrics"]["mean_over_categories"]
    base = meta["metrics"]["retrieval"]["mean_over_categories"]
    shown = ", ".join(
        f"{label} {cell(mean[key], 3)} (retrieval {cell(base[key], 3)})"
        for key, label in _COLUMNS[meta["method"]]
    )
    print(f"{target}: {target.stat().st_size / 1e6:.1f} MB; test: {shown}")
    print(json.dumps({"models_readme": str(args.out / "MODELS.md")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
