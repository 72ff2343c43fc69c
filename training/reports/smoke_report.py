"""Print how the loss of training runs fell: the first and last logged values per stage.

python -m training.reports.smoke_report RUN [RUN ...]
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from pathlib import Path


def loss_by_stage(run: Path) -> dict[str, tuple[float, float]]:
    """Stage -> (first logged loss, last logged loss)."""
    stages: dict[str, list[float]] = {}
    with (run / "scalars.csv").open() as handle:
        for row in csv.DictReader(handle):
            stages.setdefault(row["stage"], []).append(float(row["loss"]))
    return {name: (values[0], values[-1]) for name, values in stages.items()}


def main(argv: Iterable[str] | None = None) -> int:
    runs = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    falling = True
    for run in runs:
        for stage, (first, last) in loss_by_stage(run).items():
            verdict = "falling" if last < first else "NOT falling"
            falling &= last < first
            print(f"{run}: {stage}: loss {first:.4f} -> {last:.4f} ({verdict})")
    return 0 if falling else 1


if __name__ == "__main__":
    sys.exit(main())
