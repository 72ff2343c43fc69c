"""Compare two evaluations shape by shape: is a new model better than the old one, or than
the retrieval baseline, beyond what the choice of test shapes decides?

    python -m training.reports.compare --base reports/shipped-val reports/shipped-test \\
        --new reports/mine-val reports/mine-test
    python -m training.reports.compare --base reports/mine-test --retrieval

Each side is one or more `training.reports.evaluate` reports (folders holding metrics.json, or the
files themselves); a side's shapes are pooled over its reports (a val and a test report
together, say) and the two sides are paired by shape id. Per metric the table gives both
means over the paired shapes, the mean of the per-shape differences (new - base) with its
standard error, and on how many shapes the new model is better and worse. A split of a few
dozen shapes over many categories moves means by more than most changes do; the paired
difference and its standard error say whether a change is larger than that. Means here are
over shapes, not over categories as the reports' tables are.

``--retrieval`` pairs the base reports' model with the silhouette-retrieval baseline scored
on the same pictures (`training.reports.evaluate --retrieval`): the model is then the new side.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from training.reports.evaluate import PER_SHAPE_LABELS

__all__ = [
    "LOWER_IS_BETTER",
    "CompareError",
    "MetricComparison",
    "compare",
    "load_shapes",
    "main",
    "table",
]

LOWER_IS_BETTER = frozenset(
    {
        "accuracy",
        "completeness",
        "chamfer_l1",
        "pred_to_gt_x100",
        "gt_to_pred_x100",
        "elevation_error",
    }
)
"""Metrics where a smaller figure is the better one (distances, angle errors); every other
is higher-better."""


class CompareError(ValueError):
    """A report that cannot be read or paired; the message names the file."""


@dataclass(frozen=True)
class MetricComparison:
    """One metric over the shapes both sides scored (shapes where either side has no figure,
    such as IoU on a shape whose truth has no inside, are left out of that metric)."""

    metric: str
    shapes: int
    base: float
    """Mean over the paired shapes, base side."""
    new: float
    difference: float
    """Mean of new - base over the paired shapes."""
    standard_error: float
    """Of ``difference`` (NaN with one shape)."""
    better: int
    """Shapes where the new side is better (by the metric's direction)."""
    worse: int


def _metrics_file(path: Path) -> Path:
    path = Path(path)
    return path / "metrics.json" if path.is_dir() else path


def load_shapes(reports: Sequence[Path], retrieval: bool = False) -> dict[str, dict]:
    """Per-shape results of ``reports`` (folders or metrics.json files) by shape id; with
    ``retrieval``, those of the retrieval baseline stored in them instead."""
    shapes: dict[str, dict] = {}
    origin: dict[str, Path] = {}
    for report in reports:
        path = _metrics_file(report)
        try:
            metrics = json.loads(path.read_text())
        except FileNotFoundError:
            raise CompareError(
                f"{path}: no such file (a training.reports.evaluate report?)"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CompareError(f"{path}: not a readable metrics file ({exc})") from None
        if not isinstance(metrics, dict):
            raise CompareError(f"{path}: not a training.reports.evaluate metrics file")
        if retrieval:
            if "retrieval" not in metrics:
                raise CompareError(
                    f"{path}: holds no retrieval baseline (evaluate with --retrieval DATA)"
                )
            metrics = metrics["retrieval"]
        per_shape = metrics.get("per_shape") if isinstance(metrics, dict) else None
        if not isinstance(per_shape, list) or not all(
            isinstance(r, dict) and "id" in r for r in per_shape
        ):
            raise CompareError(f"{path}: has no per-shape results")
        for result in per_shape:
            if result["id"] in shapes:
                raise CompareError(
                    f"{path}: shape {result['id']!r} is also in {origin[result['id']]}"
                )
            shapes[result["id"]] = result
            origin[result["id"]] = path
    return shapes


def _numeric(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def compare(base: dict[str, dict], new: dict[str, dict]) -> list[MetricComparison]:
    """Paired comparison of two sets of per-shape results (`load_shapes`), one row per
    metric both sides report."""
    common = sorted(set(base) & set(new))
    if not common:
        raise CompareError("the two sides share no shape: were they evaluated on one dataset?")
    metrics = [
        key
        for key in base[common[0]]
        if key not in PER_SHAPE_LABELS and any(key in new[i] for i in common)
    ]
    rows = []
    for metric in metrics:
        pairs = [
            (base[i][metric], new[i][metric])
            for i in common
            if _numeric(base[i].get(metric)) and _numeric(new[i].get(metric))
        ]
        if not pairs:
            continue
        n = len(pairs)
        diffs = [b - a for a, b in pairs]
        mean = sum(diffs) / n
        spread = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1) / n) if n > 1 else math.nan
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        rows.append(
            MetricComparison(
                metric=metric,
                shapes=n,
                base=sum(a for a, _ in pairs) / n,
                new=sum(b for _, b in pairs) / n,
                difference=mean,
                standard_error=spread,
                better=sum(sign * d > 0 for d in diffs),
                worse=sum(sign * d < 0 for d in diffs),
            )
        )
    return rows


def table(rows: list[MetricComparison], base_name: str = "base", new_name: str = "new") -> str:
    """The comparison as a markdown table."""
    lines = [
        f"| metric | shapes | {base_name} | {new_name} | paired difference | better / worse |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        error = "" if math.isnan(r.standard_error) else f" +- {r.standard_error:.4f}"
        arrow = "lower is better" if r.metric in LOWER_IS_BETTER else ""
        lines.append(
            f"| {r.metric}{' (' + arrow + ')' if arrow else ''} | {r.shapes} | {r.base:.4f} | "
            f"{r.new:.4f} | {r.difference:+.4f}{error} | {r.better} / {r.worse} |"
        )
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.reports.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--base", nargs="+", required=True, type=Path, help="reports of the model to beat"
    )
    side = parser.add_mutually_exclusive_group(required=True)
    side.add_argument("--new", nargs="+", type=Path, help="reports of the model to judge")
    side.add_argument(
        "--retrieval",
        action="store_true",
        help="judge the base reports' model against their retrieval baseline",
    )
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        if args.retrieval:
            base, new = load_shapes(args.base, retrieval=True), load_shapes(args.base)
            names = ("retrieval", "model")
        else:
            base, new = load_shapes(args.base), load_shapes(args.new)
            names = ("base", "new")
        rows = compare(base, new)
    except CompareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    alone = len(set(base) ^ set(new))
    print(table(rows, *names))
    if alone:
        print(f"\n{alone} shapes scored on one side only are left out.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
