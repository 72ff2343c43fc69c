"""Implicit method: encoder, decoder throughput, coarse-to-fine extraction against dense
evaluation at 64^3, 128^3 and 256^3, marching cubes, and one training step.

    python benchmarks/bench_implicit.py --model RUN/model.safetensors --data DATASET

Extraction needs a decoder that has learnt a real surface: ``--model`` is a trained
checkpoint (its first record's first render is encoded once). Encoder, decoder throughput
and the training step use the default preset's networks. Medians of ``--repeats``; each
case in a fresh process so its peak memory (maximum resident set) is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import median_seconds, peak_mb  # noqa: E402


def _per_point_macs(decoder) -> int:
    """Multiply-adds per point: every linear layer except the residual decoder's
    conditioning layers, which run once per shape on z."""
    import torch

    return sum(
        m.in_features * m.out_features
        for name, m in decoder.named_modules()
        if isinstance(m, torch.nn.Linear) and not name.startswith("cond")
    )


def child(case: str, args) -> dict:
    import torch

    from recon_core.methods import METHODS
    from training.presets import preset

    torch.manual_seed(0)
    if case in ("encoder", "decoder", "train_step"):
        config = preset("implicit")
        method = METHODS["implicit"](config)
        model = method.build_model().eval()
        size = config.model.input_size
        if case == "encoder":
            image = torch.rand(1, 4, size, size)
            with torch.no_grad():
                seconds = median_seconds(lambda: model.encode(image), args.repeats)
            return {"seconds": seconds, "peak_mb": peak_mb()}
        if case == "decoder":
            z = torch.randn(1, config.model.latent_dim)
            points = torch.rand(65536, 3) - 0.5
            field = model.decoder.specialize(z)  # what extraction evaluates

            def chunked():
                for start in range(0, len(points), 4096):
                    field(points[start : start + 4096])

            with torch.no_grad():
                batched = median_seconds(lambda: model.decode(z, points[None]), args.repeats)
                seconds = median_seconds(chunked, args.repeats)
            per_point = 2 * _per_point_macs(model.decoder)  # FLOP per point
            rate = 65536 / seconds
            return {
                "seconds": seconds,
                "batched_seconds": batched,
                "points_per_s": rate,
                "gflops": rate * per_point / 1e9,
                "flop_per_point": per_point,
                "peak_mb": peak_mb(),
            }
        model.train()
        batch = config.data.batch_size
        image = torch.rand(batch, 4, size, size)
        points = torch.rand(batch, config.data.occupancy_points, 3) - 0.5
        labels = (points.norm(dim=-1) < 0.3).float()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step():
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                model(image, points), labels
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return {"seconds": median_seconds(step, args.repeats), "batch": batch, "peak_mb": peak_mb()}
    # extraction cases: "extract-R-coarse", "extract-R-dense"
    from recon_core.data import read_index, read_record
    from recon_core.extraction import evaluate_grid, marching_cubes
    from recon_core.inference import Reconstructor

    _, resolution, mode = case.split("-")
    resolution = int(resolution)
    reconstructor = Reconstructor(args.model, "cpu")
    index = read_index(args.data)
    arrays, _ = read_record(Path(args.data) / index["records"][0]["file"], ["renders"])
    encoded = reconstructor.encode(arrays["renders"][0])
    field = reconstructor.field(encoded)
    options = {"start": resolution} if mode == "dense" else {}  # else the defaults
    holder = {}

    def run():
        values, stats = evaluate_grid(field, resolution, **options)
        tick = time.perf_counter()
        mesh = marching_cubes(values.numpy())
        holder.update(stats=stats, mc=time.perf_counter() - tick, faces=len(mesh.faces))

    seconds = median_seconds(run, args.repeats)
    stats = holder["stats"]
    return {
        "seconds": seconds,
        "points": stats.points_evaluated,
        "dense": stats.dense_points,
        "mc_seconds": holder["mc"],
        "faces": holder["faces"],
        "peak_mb": peak_mb(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args)))
        return 0

    def run(case: str, repeats: int | None = None) -> dict:
        command = [
            sys.executable,
            __file__,
            "--child",
            case,
            "--model",
            str(args.model),
            "--data",
            str(args.data),
            "--repeats",
            str(repeats or args.repeats),
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    encoder, decoder, step = run("encoder"), run("decoder"), run("train_step", 3)
    print(f"implicit method, default preset networks; extraction with {args.model}")
    print("| operation | median s | detail | peak MB |")
    print("|---|---:|---|---:|")
    print(f"| encoder forward (1 image) | {encoder['seconds']:.3f} | | {encoder['peak_mb']:.0f} |")
    print(
        f"| decoder, 65,536 points, one batch, z concatenated per point | "
        f"{decoder['batched_seconds']:.3f} | {65536 / decoder['batched_seconds'] / 1e6:.2f} M "
        f"points/s | {decoder['peak_mb']:.0f} |"
    )
    print(
        f"| decoder, 65,536 points, z folded in, chunks of 4,096 (extraction) | "
        f"{decoder['seconds']:.3f} | {decoder['points_per_s'] / 1e6:.2f} M points/s, "
        f"{decoder['flop_per_point'] / 1e3:.0f} kFLOP/point, {decoder['gflops']:.1f} GFLOP/s | "
        f"{decoder['peak_mb']:.0f} |"
    )
    print(
        f"| training step (batch {step['batch']}) | {step['seconds']:.3f} | | "
        f"{step['peak_mb']:.0f} |"
    )
    for resolution in (64, 128, 256):
        for mode in ("coarse", "dense"):
            if mode == "dense" and resolution == 256:
                repeats = 1
            else:
                repeats = None
            r = run(f"extract-{resolution}-{mode}", repeats)
            share = 100.0 * r["points"] / r["dense"]
            label = "coarse-to-fine" if mode == "coarse" else "dense"
            print(
                f"| extract {resolution}^3, {label}, incl. marching cubes | {r['seconds']:.3f} "
                f"| {r['points']:,} points ({share:.1f}% of dense), marching cubes "
                f"{r['mc_seconds']:.3f} s, {r['faces']:,} faces | {r['peak_mb']:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
