"""The nearest training shape: for each shape of a split, the training shape that scores best
against it, chosen with the truth in hand. Its figures are the ceiling of any method that
answers with one of the training shapes, however well it picks: a goal above them asks a
network to build shapes the training set does not hold, not to find the right one.

Two choices per shape: the training shape of the highest IoU (candidates are first ranked
by the IoU of the 64^3 voxel grids, then the best ``--candidates`` are scored exactly, as
`training.reports.evaluate` scores the retrieval baseline), and the one of the highest F@2%
(every training shape, on ``--points`` surface samples each; the winner is then scored on
the full surfaces). Each choice's other figures are reported too.

    python -m training.reports.oracle --data data/sweethome3d --train-data data/bundled \\
        --split test --report reports/oracle-test
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree
from tqdm import tqdm

from recon_core.data import SPLITS, DatasetError, read_index, read_record
from recon_core.files import atomic_write_bytes
from recon_core.metrics import fscore
from training.data.augment import (
    category_ranges,
    normalised_extent,
    renormalising,
    shape_variants,
    transform_samples,
    variant_id,
)
from training.reports.evaluate import (
    _defined_iou,
    _summarise,
    _uniform_samples,
    cell,
    training_shape_scores,
)
from training.reports.retrieval import SilhouetteIndex

__all__ = ["nearest_training_shapes"]

F_THRESHOLD = 0.02
"""The F-score the second choice maximises (F@2%, the goals' figure)."""


class _TrainingShapes(SilhouetteIndex):
    """The training shapes' voxel grids and surface samples, with the parent's way of
    scoring a chosen shape (its renders are never read)."""

    def __init__(
        self, root: Path, points: int, progress: bool = True, seed: int = 0, variants: int = 0
    ):
        self.root = root
        index = read_index(root)
        bases = [r for r in index["records"] if r["split"] == "train"]
        if not bases:
            raise DatasetError(f"{root}: no records in the train split to choose from")
        rng = np.random.default_rng(seed)
        read = []
        for entry in tqdm(bases, desc="reading", unit="shape", disable=not progress):
            arrays, _ = read_record(root / entry["file"], ("voxels", "surface_points"))
            read.append((entry, arrays, normalised_extent(arrays["surface_points"])))
        if len({arrays["voxels"].size for _, arrays, _ in read}) > 1:
            raise DatasetError(f"{root}: its records' voxel grids differ in size")
        ranges = category_ranges([(e, x) for e, _, x in read]) if variants else {}
        self.records, grids, self.surfaces, self.trees = [], [], [], []
        for entry, arrays, extent in read:
            shapes = [(entry, arrays)]
            bounds = ranges.get(entry["category"])
            for k, matrix in enumerate(
                shape_variants(entry["id"], extent, bounds, variants) if variants else [],
                start=1,
            ):
                matrix = renormalising(matrix, extent)
                variant = dict(entry, id=variant_id(entry["id"], k), matrix=matrix.tolist())
                shapes.append((variant, transform_samples(arrays, matrix)))
            for record, geometry in shapes:
                self.records.append(record)
                grids.append(np.unpackbits(geometry["voxels"]).astype(bool))
                surface = _subsample(geometry["surface_points"], points, rng)
                self.surfaces.append(surface)
                self.trees.append(cKDTree(surface))
        self.grids = np.stack(grids)
        self.volumes = self.grids.sum(axis=1)

    def shape(self, entry: dict) -> dict[str, np.ndarray]:
        """A training shape's samples; a variant's are its base's, mapped."""
        shape = super().shape(entry)
        if "matrix" not in entry:
            return shape
        mapped = transform_samples(
            {
                "occupancy_points": shape["points"],
                "surface_points": shape["surface_points"],
                "surface_normals": shape["surface_normals"],
            },
            np.asarray(entry["matrix"]),
        )
        return {
            "points": mapped["occupancy_points"],
            "labels": shape["labels"],
            "surface_points": mapped["surface_points"],
            "surface_normals": mapped["surface_normals"],
        }

    def by_voxels(self, packed: np.ndarray, count: int) -> np.ndarray:
        """Indices of the ``count`` training shapes of the highest voxel IoU with ``packed``."""
        grid = np.unpackbits(packed).astype(bool)
        inter = self.grids[:, grid].sum(axis=1)
        iou = inter / np.maximum(self.volumes + grid.sum() - inter, 1)
        return np.argsort(-iou, kind="stable")[:count]

    def by_fscore(self, surface: np.ndarray) -> int:
        """Index of the training shape of the highest F@2% against ``surface`` samples."""
        tree = cKDTree(surface)
        scores = [
            fscore(tree.query(points)[0], own.query(surface)[0], F_THRESHOLD)
            for points, own in zip(self.surfaces, self.trees, strict=True)
        ]
        return int(np.argmax(scores))

    def iou(self, k: int, points: np.ndarray, labels: np.ndarray) -> float | None:
        """IoU of training shape ``k`` on a record's uniform samples and their labels
        (None: the truth has no inside)."""
        return _defined_iou(self.inside(self.shape(self.records[k]), points), labels)

    def scores(self, k: int, arrays, meta, entry) -> dict:
        """Every figure of training shape ``k`` against a record."""
        return training_shape_scores(self, self.records[k], arrays, meta, entry)


def _subsample(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    points = np.asarray(points, np.float64)
    if len(points) <= count:
        return points
    return points[rng.choice(len(points), count, replace=False)]


def nearest_training_shapes(
    data: Path,
    train_data: Path,
    split: str,
    report: Path,
    candidates: int = 10,
    points: int = 4000,
    limit: int | None = None,
    progress: bool = True,
    variants: int = 0,
) -> dict:
    """Score, for each shape of ``split`` of ``data``, the best training shape of
    ``train_data`` (with ``variants`` scaled and mirrored variants of each, see
    `training.data.augment`) by IoU and by F@2%; write ``report``/metrics.json and report.md."""
    if candidates < 1 or points < 1:
        raise ValueError("--candidates and --points must be positive")
    if variants < 0:
        raise ValueError("--variants must not be negative")
    records = [r for r in read_index(data)["records"] if split == "all" or r["split"] == split]
    if limit:
        records = records[:limit]
    if not records:
        raise DatasetError(f"{data}: no records in the {split} split")
    shapes = _TrainingShapes(train_data, points, progress, variants=variants)
    rng = np.random.default_rng(1)
    by_iou, by_fscore = [], []
    for entry in tqdm(records, desc="choosing", unit="shape", disable=not progress):
        arrays, meta = read_record(data / entry["file"])
        if arrays["voxels"].size * 8 != shapes.grids.shape[1]:
            raise DatasetError(
                f"{data / entry['file']}: its voxel grid differs in size from {train_data}'s"
            )
        uniform, labels = _uniform_samples(arrays, meta)
        ranked = [int(k) for k in shapes.by_voxels(arrays["voxels"], candidates)]
        ious = [shapes.iou(k, uniform, labels) for k in ranked]
        best = max(range(len(ranked)), key=lambda i: -1.0 if ious[i] is None else ious[i])
        by_iou.append(shapes.scores(ranked[best], arrays, meta, entry))
        surface = _subsample(arrays["surface_points"], points, rng)
        by_fscore.append(shapes.scores(shapes.by_fscore(surface), arrays, meta, entry))
    metrics = {
        "by_iou": _summarise(by_iou),
        "by_fscore": _summarise(by_fscore),
        "data": str(data),
        "train_data": str(train_data),
        "split": split,
        "candidates": candidates,
        "points": points,
        "variants": variants,
    }
    report.mkdir(parents=True, exist_ok=True)
    text = json.dumps(metrics, indent=1).encode("utf-8")
    atomic_write_bytes(report / "metrics.json", lambda handle: handle.write(text))
    markdown = _markdown(metrics).encode("utf-8")
    atomic_write_bytes(report / "report.md", lambda handle: handle.write(markdown))
    return metrics


def _markdown(metrics: dict) -> str:
    lines = [
        f"The nearest training shape of `{metrics['train_data']}` to each shape of the "
        f"{metrics['split']} split of `{metrics['data']}`, chosen with the truth in hand",
    ]
    for key, title in (("by_iou", "the highest IoU"), ("by_fscore", "the highest F@2%")):
        summary = metrics[key]
        names = [k for k in summary["mean_over_categories"] if k != "shapes"]
        lines += [
            "",
            f"Chosen by {title}:",
            "",
            "| category | shapes | " + " | ".join(names) + " |",
            "|---|---:|" + "---:|" * len(names),
        ]
        rows = [*summary["per_category"].items(), ("**mean**", summary["mean_over_categories"])]
        for cat, values in rows:
            lines.append(
                f"| {cat} | {values['shapes']} | "
                + " | ".join(cell(values[k]) for k in names)
                + " |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.reports.oracle",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset to score")
    parser.add_argument(
        "--train-data", required=True, type=Path, help="dataset whose train split is searched"
    )
    parser.add_argument("--split", default="test", choices=[*SPLITS, "all"])
    parser.add_argument("--report", required=True, type=Path, help="folder for the report")
    parser.add_argument(
        "--candidates",
        type=int,
        default=10,
        help="training shapes of the highest voxel IoU scored exactly for the IoU choice",
    )
    parser.add_argument(
        "--points", type=int, default=4000, help="surface samples a shape for the F@2%% choice"
    )
    parser.add_argument("--limit", type=int, help="score at most this many shapes")
    parser.add_argument(
        "--variants",
        type=int,
        default=0,
        help="also search this many scaled and mirrored variants of each training shape",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        metrics = nearest_training_shapes(
            args.data,
            args.train_data,
            args.split,
            args.report,
            args.candidates,
            args.points,
            args.limit,
            progress=not args.no_progress,
            variants=args.variants,
        )
    except (DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(_markdown(metrics))
    print(f"report: {args.report}/report.md, {args.report}/metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
