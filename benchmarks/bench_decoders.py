"""Which occupancy decoder should be the default: quality per millisecond.

Trains the same image encoder with each decoder on one dataset for the same number of
steps (through `training.train`), evaluates every trained model on a split (IoU,
Chamfer-L1, F@2% through `training.reports.evaluate`), and times what a user waits for: extracting
a 128^3 mesh from a cached code (median over the split's shapes, after a warm-up). The
table gives quality, time, and IoU per second of extraction.

    python benchmarks/bench_decoders.py --data DATASET --out runs/decoders \
        --steps 2000 --set data.batch_size=8 --set 'data.splits=["train","val","test"]'

Runs already trained in ``--out`` are reused (delete a variant's folder to retrain it).
``--threads`` pins torch's threads for the timing (1 by default, so that a busy machine
times every variant alike).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_implicit import _per_point_macs  # noqa: E402

VARIANTS = {
    "imnet 1024-512-256-128": ["model.decoder=imnet", "model.decoder_hidden=[1024,512,256,128]"],
    "residual film 128x3": [
        "model.decoder=residual",
        "model.decoder_hidden=[128]",
        "model.decoder_blocks=3",
        "model.conditioning=film",
    ],
    "residual concat 128x3": [
        "model.decoder=residual",
        "model.decoder_hidden=[128]",
        "model.decoder_blocks=3",
        "model.conditioning=concat",
    ],
    "residual film 256x4": [
        "model.decoder=residual",
        "model.decoder_hidden=[256]",
        "model.decoder_blocks=4",
        "model.conditioning=film",
    ],
}
"""Decoders compared; each is trained behind the same encoder (``--preset``'s)."""


def _slug(name: str) -> str:
    return name.replace(" ", "-")


def _train(name: str, args) -> Path:
    from training import train

    run = args.out / _slug(name)
    model = run / "model.safetensors"
    if model.exists():
        return model
    overrides = [f"stages.0.steps={args.steps}", *VARIANTS[name], *args.set]
    argv = ["--method", "implicit", "--preset", args.preset, "--data", str(args.data)]
    argv += ["--out", str(run), "--no-progress"]
    for item in overrides:
        argv += ["--set", item]
    if run.exists():
        argv.append("--resume")
    if train.main(argv) != 0:
        raise SystemExit(f"training {name} failed")
    return model


def _evaluate(model: Path, args) -> dict:
    from training.reports import evaluate

    report = model.parent / f"report-{args.split}"
    metrics_file = report / "metrics.json"
    if not metrics_file.exists():
        argv = ["--model", str(model), "--data", str(args.data), "--split", args.split]
        if evaluate.main([*argv, "--report", str(report), "--no-progress"]) != 0:
            raise SystemExit(f"evaluating {model} failed")
    return json.loads(metrics_file.read_text())["mean_over_categories"]


def _extraction_seconds(model: Path, args) -> tuple[float, float]:
    """Median seconds of a 128^3 extraction over the split's shapes, and the decoder's
    multiply-adds per point."""
    import torch

    from recon_core.data import read_index, read_record
    from recon_core.extraction import ExtractionError
    from recon_core.inference import Reconstructor

    torch.set_num_threads(args.threads)
    reconstructor = Reconstructor(model, "cpu")
    records = [
        r
        for r in read_index(args.data)["records"]
        if args.split == "all" or r["split"] == args.split
    ]
    times = []
    for entry in records[: args.shapes]:
        arrays, _ = read_record(args.data / entry["file"], ["renders"])
        encoded = reconstructor.encode(arrays["renders"][0])
        try:
            reconstructor.mesh(encoded, 128)  # warm-up
            start = time.perf_counter()
            reconstructor.mesh(encoded, 128)
            times.append(time.perf_counter() - start)
        except ExtractionError:
            pass
    macs = _per_point_macs(reconstructor.model.decoder)
    return (statistics.median(times) if times else float("nan")), macs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset")
    parser.add_argument("--out", required=True, type=Path, help="folder of the runs")
    parser.add_argument("--preset", default="implicit-smoke", help="encoder and optimiser")
    parser.add_argument("--steps", type=int, default=2000, help="training steps per decoder")
    parser.add_argument("--set", action="append", default=[], help="more config overrides")
    parser.add_argument("--split", default="all", help="split evaluated and timed")
    parser.add_argument("--shapes", type=int, default=8, help="shapes timed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads when timing")
    parser.add_argument("--only", action="append", help="train and measure only these")
    args = parser.parse_args(argv)
    names = args.only or list(VARIANTS)
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    rows = []
    for name in names:
        model = _train(name, args)
        metrics = _evaluate(model, args)
        seconds, macs = _extraction_seconds(model, args)
        rows.append((name, macs, seconds, metrics))
    print(
        f"\n{args.steps} steps each on {args.data} ({args.preset} encoder); "
        f"{args.split} split; 128^3 extraction on {args.threads} thread(s)\n"
    )
    print("| decoder | kMAC/point | 128^3 extraction s | IoU | Chamfer-L1 | F@2% | IoU per s |")
    print("|---|---|---|---|---|---|---|")
    for name, macs, seconds, m in rows:
        print(
            f"| {name} | {macs / 1000:.1f} | {seconds:.3f} | {m['iou']:.3f} | "
            f"{m['chamfer_l1']:.4f} | {m['f_score@0.02']:.3f} | {m['iou'] / seconds:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
