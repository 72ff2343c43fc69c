"""The segmentation network's memory layout: u2netp at 320 x 320 with its weights and input
contiguous (NCHW) against channels-last (NHWC, what `recon_core.segmentation` uses), for
inference and for a fine-tuning step (`training.train_segmentation`).

    python benchmarks/bench_segmentation.py --threads 1 2 --repeats 15

The two layouts run interleaved, call by call, so that the machine's load falls on both
alike; the table gives each one's median seconds and their ratio.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time


def _interleaved(calls, repeats: int) -> list[float]:
    """Median seconds of each callable, called in turn ``repeats`` times after a warm-up."""
    for call in calls:
        call()
    times = [[] for _ in calls]
    for _ in range(repeats):
        for call, spent in zip(calls, times, strict=True):
            start = time.perf_counter()
            call()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=2, help="fine-tuning pictures per step")
    args = parser.parse_args(argv)
    import torch
    import torch.nn.functional as F

    from recon_core.segmentation import load_network, segmentation_weights

    plain, _ = load_network(segmentation_weights())
    last = copy.deepcopy(plain).to(memory_format=torch.channels_last)
    image = torch.randn(1, 3, 320, 320)
    batch = torch.randn(args.batch, 3, 320, 320)
    target = (torch.rand(args.batch, 1, 320, 320) > 0.5).float()

    def infer(network, x):
        def call():
            with torch.no_grad():
                network(x)

        return call

    def step(network, x):
        def call():
            fused, sides = network.logits(x)
            loss = sum(F.binary_cross_entropy_with_logits(z, target) for z in [fused, *sides])
            network.zero_grad(set_to_none=True)
            loss.backward()

        return call

    print("| case | threads | contiguous s | channels-last s | ratio |")
    print("|---|---:|---:|---:|---:|")
    nhwc = torch.channels_last
    for threads in args.threads:
        torch.set_num_threads(threads)
        cases = [
            ("inference 320 x 320", infer, image, args.repeats),
            (f"fine-tuning step, {args.batch} pictures", step, batch, max(3, args.repeats // 4)),
        ]
        for label, make, x, repeats in cases:
            a, b = _interleaved(
                [make(plain, x), make(last, x.contiguous(memory_format=nhwc))], repeats
            )
            print(f"| {label} | {threads} | {a:.3f} | {b:.3f} | {a / b:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
