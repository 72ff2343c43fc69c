"""Point-cloud method at the paper's sizes: batch 20, N = 8 fixed views at 128x128
(131,072 points per shape), 5 novel views, upsampling U = 5.

    python benchmarks/bench_pointcloud.py [--repeats 5] [--batch 20]

Times (median of ``--repeats``) and peak memory of: the structure generator forward and
forward+backward; fusion + pseudo-render forward and forward+backward; a full stage-2
training step (generator, fusion, pseudo-render, losses, Adam); the inference-time
silhouette test on one shape (`--consistency`). The naive per-point
reference is timed on a small problem and reported per point, beside the fast version on
the same problem. A second table runs fusion + pseudo-render forward+backward with a quarter,
half and all of the points, and at U = 1, 2, 5, 10: its cost should follow the points, not
U^2 x pixels. Each figure runs in a fresh process so peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # slow references

from timing import median_seconds, peak_mb  # noqa: E402


def _inputs(batch: int, views: int = 5, size: int = 128, seed: int = 0):
    import numpy as np
    import torch

    from recon_core.geometry import fixed_views, sample_novel_views

    fixed = fixed_views(8, size)
    gen = torch.Generator().manual_seed(seed)
    depth = 1.0 + 0.3 * (torch.rand(batch, 8, 1, size, size, generator=gen) - 0.5)
    from recon_core.fusion import pixel_grid

    grid = pixel_grid(size, fixed[0].intrinsic)
    xyz = torch.cat([grid[None, None].expand(batch, 8, -1, -1, -1), depth], dim=2)
    logits = torch.randn(batch, 8 * size * size, generator=gen)
    rng = np.random.default_rng(seed)
    novel = torch.tensor(
        np.stack(
            [
                np.stack([c.extrinsic for c in sample_novel_views(views, rng, size)])
                for _ in range(batch)
            ]
        ),
        dtype=torch.float32,
    )
    extrinsics = torch.tensor(np.stack([c.extrinsic for c in fixed]), dtype=torch.float32)
    return xyz, logits, novel, extrinsics, fixed[0].intrinsic


def child(case: str, batch: int, repeats: int) -> dict:
    import torch
    from fusion_reference import pseudo_render_naive

    from recon_core.fusion import fuse, pseudo_render
    from recon_core.methods import METHODS
    from training.presets import preset

    torch.manual_seed(0)
    if case in ("render_forward", "render_backward"):
        xyz, logits, novel, extrinsics, intrinsic = _inputs(batch)

        def run():
            x = xyz.clone().requires_grad_(case == "render_backward")
            m = logits.clone().requires_grad_(case == "render_backward")
            out = pseudo_render(fuse(x, extrinsics), m, novel, intrinsic, 128, 5)
            if case == "render_backward":
                (out.depth.sum() + out.mask_logit.sum()).backward()

        if case == "render_forward":
            with torch.no_grad():
                seconds = median_seconds(run, repeats)
        else:
            seconds = median_seconds(run, repeats)
        return {"seconds": seconds, "peak_mb": peak_mb()}
    if case in ("generator_forward", "generator_backward", "train_step"):
        config = preset("pointcloud")
        method = METHODS["pointcloud"](config)
        model = method.build_model()
        image = torch.rand(batch, 4, 64, 64)
        if case == "generator_forward":
            with torch.no_grad():
                return {
                    "seconds": median_seconds(lambda: model(image), repeats),
                    "peak_mb": peak_mb(),
                }
        if case == "generator_backward":

            def run():
                xyz, logit = model(image)
                (xyz.sum() + logit.sum()).backward()

            return {"seconds": median_seconds(run, repeats), "peak_mb": peak_mb()}
        xyz, _, novel, _, _ = _inputs(batch)
        batch_data = {
            "image": image,
            "fixed_depth": xyz[:, :, 2],
            "fixed_mask": torch.ones(batch, 8, 128, 128),
            "novel_depth": torch.rand(batch, 5, 128, 128),
            "novel_mask": (torch.rand(batch, 5, 128, 128) > 0.5).float(),
            "novel_extrinsics": novel,
        }
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        weights = config.stages[-1].losses

        def step():
            terms = method.losses(model, batch_data, weights)
            loss = sum(weights[k] * v for k, v in terms.items())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return {"seconds": median_seconds(step, repeats), "peak_mb": peak_mb()}
    if case in ("naive_small", "fast_small"):
        xyz, logits, novel, extrinsics, intrinsic = _inputs(1, views=1, size=16)
        points = fuse(xyz, extrinsics)[:, :512].double()
        mask = logits[:, :512].double()
        fn = pseudo_render_naive if case == "naive_small" else pseudo_render
        seconds = median_seconds(
            lambda: fn(points, mask, novel.double(), intrinsic, 16, 5), max(1, repeats // 2)
        )
        return {"seconds": seconds, "points": 512, "peak_mb": peak_mb()}
    if case == "silhouette_test":  # inference: one shape's 131,072 points against 8 views
        from recon_core.fusion import consistent_points

        xyz, logits, _, extrinsics, intrinsic = _inputs(1)
        points = fuse(xyz, extrinsics)[0]
        masks = logits.view(8, 128, 128)
        seconds = median_seconds(
            lambda: consistent_points(points, masks, extrinsics, intrinsic), repeats
        )
        return {"seconds": seconds, "peak_mb": peak_mb()}
    if case.startswith("scale:"):  # scale:FRACTION:U, forward+backward
        _, fraction, upsample = case.split(":")
        xyz, logits, novel, extrinsics, intrinsic = _inputs(batch)
        count = int(float(fraction) * logits.shape[1])

        def run():
            x = xyz.clone().requires_grad_(True)
            m = logits[:, :count].clone().requires_grad_(True)
            points = fuse(x, extrinsics)[:, :count]
            out = pseudo_render(points, m, novel, intrinsic, 128, int(upsample))
            (out.depth.sum() + out.mask_logit.sum()).backward()

        return {"seconds": median_seconds(run, repeats), "peak_mb": peak_mb(), "points": count}
    raise SystemExit(f"unknown case {case}")


CASES = [
    ("generator_forward", "structure generator forward"),
    ("generator_backward", "structure generator forward+backward"),
    ("render_forward", "fusion + pseudo-render forward"),
    ("render_backward", "fusion + pseudo-render forward+backward"),
    ("train_step", "full stage-2 training step (paper architecture)"),
    ("fast_small", "pseudo-render, 512 points x 1 view (fast)"),
    ("naive_small", "pseudo-render, 512 points x 1 view (naive reference)"),
    ("silhouette_test", "silhouette test, one shape (131,072 points x 8 views, inference)"),
]


SCALING = [(0.25, 5), (0.5, 5), (1.0, 5), (1.0, 1), (1.0, 2), (1.0, 10)]
"""(fraction of the 131,072 points per shape, U): the renderer's cost against points and U."""


def _run_child(case: str, args) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            case,
            "--batch",
            str(args.batch),
            "--repeats",
            str(args.repeats),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.batch, args.repeats)))
        return 0
    print(
        f"point-cloud method, batch {args.batch}, 8 fixed views at 128x128, 5 novel views, "
        f"U=5; median of {args.repeats}"
    )
    print("| operation | median s | peak MB |")
    print("|---|---:|---:|")
    for case, label in CASES:
        result = _run_child(case, args)
        print(f"| {label} | {result['seconds']:.3f} | {result['peak_mb']:.0f} |", flush=True)
    print("\nfusion + pseudo-render forward+backward against points per shape and U")
    print("| points per shape | U | median s | s per million point-views | peak MB |")
    print("|---:|---:|---:|---:|---:|")
    for fraction, upsample in SCALING:
        result = _run_child(f"scale:{fraction}:{upsample}", args)
        per_million = result["seconds"] / (result["points"] * args.batch * 5 / 1e6)
        print(
            f"| {result['points']:,} | {upsample} | {result['seconds']:.3f} | "
            f"{per_million:.4f} | {result['peak_mb']:.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
