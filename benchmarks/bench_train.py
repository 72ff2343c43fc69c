"""Training throughput and peak memory per preset (by default the two methods' own), and
data-loader throughput on its own (it must be at least 3x the model's samples/s).

    python benchmarks/bench_train.py [--data DATASET] [--steps 8] [--repeats 3]
    python benchmarks/bench_train.py --presets implicit-aligned implicit-aligned-cached

Each preset runs in a fresh process: the model's full training step (forward, backward,
Adam) as its last stage trains it (pretrained weights, frozen parts frozen, a backbone
cache built beforehand and read where the preset caches) on a batch held in memory, timed
over ``--steps`` steps after one warm-up step, median of ``--repeats`` rounds; peak memory
is the process's maximum resident set size.
The loader is timed alone: ``DataLoader`` with the preset's worker count, over the same
dataset, median samples/s. Without ``--data`` a small procedural dataset at the default
record settings is built into out/bench-data first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import peak_mb  # noqa: E402


def _batch(dataset, size):
    import torch

    return torch.utils.data.default_collate([dataset[i % len(dataset), 0] for i in range(size)])


def _setup(name: str, data: Path):
    """The preset's config, method, dataset and model as training has them: pretrained
    weights loaded, the first stage's frozen parts frozen, and for ``data.cache_backbone``
    the backbone cache built (once per data and preset, into out/bench-cache) and used."""
    from recon_core.data import PreparedDataset
    from recon_core.engine import _freeze, _train_mode
    from recon_core.feature_cache import BackboneCache
    from recon_core.methods import METHODS
    from training.presets import preset

    config = preset(name)
    impl = METHODS[config.method](config)
    dataset = PreparedDataset(data, None, config.method, impl.sample_settings())
    model = impl.build_model(pretrained=True)
    _freeze(model, config.stages[-1])
    _train_mode(model, model, config.stages[-1])
    if config.data.cache_backbone:
        backbone, stride = impl.cacheable_backbone(model)
        folder = ROOT / "out" / "bench-cache" / f"{data.name}-{name}"
        dataset.use_backbone_cache(BackboneCache.open_or_build(folder, dataset, backbone, stride))
    return config, impl, dataset, model


def run_model(name: str, data: Path, steps: int, repeats: int) -> dict:
    import torch

    torch.manual_seed(0)
    config, impl, dataset, model = _setup(name, data)
    batch = _batch(dataset, config.data.batch_size)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trained, lr=1e-4)
    weights = config.stages[-1].losses  # the last stage is the most expensive one

    def step():
        terms = impl.losses(model, batch, weights)
        loss = sum(weights[k] * v for k, v in terms.items())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rounds.append(config.data.batch_size * steps / (time.perf_counter() - start))
    return {
        "samples_per_s": statistics.median(rounds),
        "rounds": rounds,
        "batch": config.data.batch_size,
        "step_s": config.data.batch_size / statistics.median(rounds),
        "peak_mb": peak_mb(),
        "stage": config.stages[-1].name,
    }


def run_loader(name: str, data: Path, batches: int, repeats: int) -> dict:
    import torch

    from recon_core.engine import StepSampler

    config, _, dataset, _ = _setup(name, data)
    rounds = []
    for r in range(repeats):
        sampler = StepSampler(len(dataset), config.data.batch_size, r, 0, batches + 1)
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=sampler, num_workers=config.data.workers
        )
        iterator = iter(loader)
        next(iterator)  # worker start-up is not throughput
        start = time.perf_counter()
        count = sum(len(b["image"]) for b in iterator)
        rounds.append(count / (time.perf_counter() - start))
    return {
        "samples_per_s": statistics.median(rounds),
        "rounds": rounds,
        "workers": config.data.workers,
    }


def _child(kind: str, method: str, args) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        method,
        "--data",
        str(args.data),
        "--steps",
        str(args.steps),
        "--repeats",
        str(args.repeats),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--presets",
        nargs="+",
        default=["pointcloud", "implicit"],
        help="training presets to time (default: the two methods' own)",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, method = args.child
        result = (
            run_model(method, args.data, args.steps, args.repeats)
            if kind == "model"
            else run_loader(method, args.data, 4 * args.steps, args.repeats)
        )
        print(json.dumps(result))
        return 0
    if args.data is None:
        args.data = ROOT / "out" / "bench-data"
        if not (args.data / "index.json").exists():
            from training.data import prepare

            prepare.main(
                ["--source", "procedural", "--count", "2", "--out", str(args.data), "--no-progress"]
            )
    rows = []
    for method in args.presets:
        model = _child("model", method, args)
        loader = _child("loader", method, args)
        rows.append((method, model, loader))
    print(f"\ntraining throughput on {args.data}, median of {args.repeats} rounds")
    print(
        "| preset | batch | stage timed | step s | model samples/s | peak MB | "
        "loader samples/s (workers) | loader / model |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for method, model, loader in rows:
        ratio = loader["samples_per_s"] / model["samples_per_s"]
        print(
            f"| {method} | {model['batch']} | {model['stage']} | {model['step_s']:.2f} | "
            f"{model['samples_per_s']:.1f} | {model['peak_mb']:.0f} | "
            f"{loader['samples_per_s']:.1f} ({loader['workers']}) | {ratio:.1f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
