"""Dataset preparation throughput at the default settings (shapes per minute).

    python benchmarks/bench_prepare.py [--shapes 16] [--repeats 3] [--workers 2]

For each source, builds ``--shapes`` shapes into a fresh folder ``--repeats`` times with
``--workers`` processes and reports the median shapes/min (worker start-up included, as a
user's build sees it), plus the median seconds per shape of each stage inside a worker.
Sweet Home 3D shapes are an even spread over the default categories of the library
(downloaded with apt-get into the usual cache if needed). Target on a 2-core CPU:
>= 20 shapes/min for Sweet Home 3D.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.data.pipeline import PrepareSettings  # noqa: E402
from training.data.prepare import _read_log, build_dataset, source_specs  # noqa: E402


def _specs(source: str, count: int):
    if source == "procedural":
        args = argparse.Namespace(source="procedural", categories=None, count=None, first_seed=1000)
        specs = source_specs(args)
    else:
        args = argparse.Namespace(source="sweethome3d", path=None, cache=None, categories=None)
        specs = source_specs(args)
    step = max(1, len(specs) // count)
    return specs[::step][:count]


def bench(source: str, shapes: int, repeats: int, workers: int) -> dict:
    specs = _specs(source, shapes)
    rates, stage_times = [], {}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "ds"
            start = time.perf_counter()
            index = build_dataset(specs, out, PrepareSettings(), workers, progress=False)
            elapsed = time.perf_counter() - start
            rates.append(index["summary"]["records"] / elapsed * 60.0)
            for result in _read_log(out / "build_log.jsonl").values():
                for stage, seconds in result.get("stages", {}).items():
                    stage_times.setdefault(stage, []).append(seconds)
    return {
        "rate": statistics.median(rates),
        "rates": rates,
        "stages": {k: statistics.median(v) for k, v in stage_times.items()},
        "shapes": len(specs),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shapes", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sources", nargs="+", default=["procedural", "sweethome3d"])
    args = parser.parse_args(argv)
    results = {s: bench(s, args.shapes, args.repeats, args.workers) for s in args.sources}
    stages = ["load", "depth", "occupancy", "render", "write"]
    print(
        f"\nprepare throughput, {args.workers} workers, default settings, "
        f"median of {args.repeats} builds"
    )
    header = (
        f"| {'source':12s} | shapes | shapes/min | runs (shapes/min) | "
        + " | ".join(f"{s} s" for s in stages)
        + " |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for source, r in results.items():
        runs = ", ".join(f"{x:.1f}" for x in r["rates"])
        cells = " | ".join(f"{r['stages'].get(s, 0):.2f}".rjust(len(s) + 2) for s in stages)
        print(f"| {source:12s} | {r['shapes']:6d} | {r['rate']:10.1f} | {runs:17s} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
