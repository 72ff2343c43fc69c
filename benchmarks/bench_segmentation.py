"""The segmentation networks at 320 x 320, for inference and for a training step
(`training.train_segmentation`):

- layouts: u2netp with its weights and input contiguous (NCHW) against channels-last (NHWC,
  what `recon_core.segmentation` uses);
- networks: u2netp against the EfficientNet-Lite0 U-Net (`LiteUNet`), both channels-last.

    python benchmarks/bench_segmentation.py --threads 1 2 --repeats 15

The two sides of each row run interleaved, call by call, so that the machine's load falls
on both alike; each table gives their median seconds and the ratio. The weights are random:
the time does not depend on them.
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

    from recon_core.models.segmentation import LiteUNet, U2NetP, supervision_loss

    nhwc = torch.channels_last
    plain = U2NetP().eval()
    last = copy.deepcopy(plain).to(memory_format=nhwc)
    lite = LiteUNet().eval().to(memory_format=nhwc)
    image = torch.randn(1, 3, 320, 320)
    batch = torch.randn(args.batch, 3, 320, 320)
    target = (torch.rand(args.batch, 1, 320, 320) > 0.5).float()

    def infer(network, x):
        def call():
            with torch.no_grad():
                network.eval()(x)

        return call

    def step(network, x):
        def call():
            fused, sides = network.train().logits(x)
            loss = supervision_loss(fused, sides, target)
            network.zero_grad(set_to_none=True)
            loss.backward()

        return call

    cases = [
        ("inference 320 x 320", infer, image, args.repeats),
        (f"training step, {args.batch} pictures", step, batch, max(3, args.repeats // 4)),
    ]
    tables = [
        ("u2netp", "contiguous s", "channels-last s", plain, last, False),
        ("both channels-last", "u2netp s", "lite0-unet s", last, lite, True),
    ]
    for title, left, right, one, other, both_nhwc in tables:
        print(f"\n| case ({title}) | threads | {left} | {right} | ratio |")
        print("|---|---:|---:|---:|---:|")
        for threads in args.threads:
            torch.set_num_threads(threads)
            for label, make, x, repeats in cases:
                y = x.contiguous(memory_format=nhwc)
                calls = [make(one, y if both_nhwc else x), make(other, y)]
                a, b = _interleaved(calls, repeats)
                print(f"| {label} | {threads} | {a:.3f} | {b:.3f} | {a / b:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
