"""Train the viewpoint estimator on a prepared dataset's input renders and attach it to
model checkpoints (see `recon_core.viewpoint`).

    python -m training.viewpoint --data data/bundled --eval-data data/sweethome3d \\
        --attach blender_addon/models/implicit.safetensors \\
        --attach blender_addon/models/pointcloud.safetensors

Trains on the train split of ``--data`` (every input render, mirrored too: a picture
flipped left to right is the mirrored object seen from azimuth -a), evaluates on the val
split of ``--eval-data`` (every render) and writes the estimator, with its metrics, into
each ``--attach`` checkpoint (rewritten atomically; its model weights are untouched).

    python -m training.viewpoint --from implicit --attach runs/mine/model.safetensors

copies the estimator of another checkpoint (a bundled or user model name, or a path)
instead of training one: it reads only the picture, so a model fine-tuned from a bundled
one, or trained on the same renders, can carry the bundled estimator as it is.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from recon_core.checkpoint import CheckpointError, attach_viewpoint, load_checkpoint
from recon_core.data import DatasetError, read_index, read_record
from recon_core.geometry import angle_gap
from recon_core.imaging import network_input
from recon_core.registry import resolve_model
from recon_core.viewpoint import (
    ViewpointConfig,
    ViewpointNet,
    azimuth_labels,
    camera_angles,
    elevation_labels,
    soft_cross_entropy,
)
from training.bundle import write_models_readme

__all__ = ["load_views", "train", "evaluate", "main"]


class EmptySplit(DatasetError):
    """A dataset without records in the split asked for."""


def load_views(root: Path, split: str, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """Every input render of ``split`` at ``size`` pixels (N, 4, S, S) uint8, and their
    (azimuth, elevation) in degrees (N, 2)."""
    index = read_index(root)
    images, angles = [], []
    for entry in index["records"]:
        if entry["split"] != split:
            continue
        arrays, _ = read_record(root / entry["file"], ("renders", "render_extrinsics"))
        small = network_input(arrays["renders"], size)
        images.append((small * 255.0).round().to(torch.uint8))
        angles.extend(camera_angles(e) for e in arrays["render_extrinsics"].astype(np.float64))
    if not images:
        raise EmptySplit(f"{root}: no {split} records")
    return torch.cat(images), np.asarray(angles, dtype=np.float32)


def _augment(images: torch.Tensor, angles: torch.Tensor, generator: torch.Generator):
    """Mirror half the batch (azimuth -> -azimuth), jitter colours and framing."""
    batch = images.shape[0]
    images = images.float() / 255.0
    angles = angles.clone()
    flip = torch.rand(batch, generator=generator) < 0.5
    images[flip] = images[flip].flip(-1)
    angles[flip, 0] = torch.remainder(-angles[flip, 0], 360.0)
    gain = 0.6 + 0.8 * torch.rand(batch, 3, 1, 1, generator=generator)
    grey = torch.rand(batch, 1, 1, 1, generator=generator) < 0.2
    rgb = images[:, :3] * gain
    rgb = torch.where(grey, rgb.mean(1, keepdim=True).expand_as(rgb), rgb)
    images = torch.cat([rgb.clamp(0, 1), images[:, 3:]], 1)  # straight alpha, as pictures
    scale = 0.9 + 0.2 * torch.rand(batch, generator=generator)
    shift = 0.06 * (torch.rand(batch, 2, generator=generator) - 0.5)
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False), angles


def train(
    images: torch.Tensor,
    angles: np.ndarray,
    config: ViewpointConfig,
    steps: int,
    batch: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    log_every: int = 250,
) -> ViewpointNet:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = ViewpointNet(config)
    optim = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optim, lr, total_steps=steps, pct_start=0.05)
    targets = torch.as_tensor(angles)
    net.train()
    start, running = time.monotonic(), 0.0
    for step in range(1, steps + 1):
        pick = torch.randint(len(images), (batch,), generator=generator)
        x, y = _augment(images[pick], targets[pick], generator)
        azimuth, elevation = net(x)
        loss = soft_cross_entropy(azimuth, azimuth_labels(y[:, 0], config, 7.5))
        loss = loss + soft_cross_entropy(elevation, elevation_labels(y[:, 1], config, 5.0))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        schedule.step()
        running += loss.item()
        if step % log_every == 0 or step == steps:
            count = log_every if step % log_every == 0 else step % log_every
            print(
                f"step {step}/{steps} loss {running / count:.3f} "
                f"({time.monotonic() - start:.0f} s)",
                flush=True,
            )
            running = 0.0
    return net.eval()


@torch.no_grad()
def evaluate(net: ViewpointNet, images: torch.Tensor, angles: np.ndarray) -> dict:
    """Azimuth and elevation errors of the most probable bins."""
    net.eval()
    config = net.config
    predicted = []
    for chunk in images.split(256):
        azimuth, elevation = net(chunk.float() / 255.0)
        a = azimuth.argmax(-1).numpy() * config.azimuth_step
        e = np.asarray(config.elevations)[elevation.argmax(-1).numpy()]
        predicted.append(np.stack([a, e], 1))
    predicted = np.concatenate(predicted)
    gap = angle_gap(predicted[:, 0], angles[:, 0])
    return {
        "views": len(angles),
        "azimuth_median_error": round(float(np.median(gap)), 2),
        "azimuth_within_15": round(float(np.mean(gap <= 15.0)), 3),
        "azimuth_within_45": round(float(np.mean(gap <= 45.0)), 3),
        "azimuth_flipped": round(float(np.mean(gap >= 135.0)), 3),
        "elevation_median_error": round(
            float(np.median(np.abs(predicted[:, 1] - angles[:, 1]))), 2
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.viewpoint",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, help="dataset to train on")
    parser.add_argument(
        "--from",
        dest="source",
        metavar="MODEL",
        help="copy the estimator attached to this model (name or path) instead of training one",
    )
    parser.add_argument(
        "--eval-data", type=Path, help="dataset with the val and test splits (default --data)"
    )
    parser.add_argument(
        "--attach", type=Path, action="append", default=[], help="checkpoint to attach it to"
    )
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if (args.data is None) == (args.source is None):
        parser.error("give either --data (train an estimator) or --from MODEL (copy one)")
    if args.source is not None and not args.attach:
        parser.error("--from needs --attach CHECKPOINT: where to copy the estimator to")
    try:
        for path in args.attach:  # refuse before training or copying, not after
            load_checkpoint(path)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.source is not None:
        return _copy(args.source, args.attach)
    config = ViewpointConfig(width=args.width)
    try:
        images, angles = load_views(args.data, "train", config.input_size)
        held_out = {}
        for split in ("val", "test"):
            try:
                held_out[split] = load_views(args.eval_data or args.data, split, config.input_size)
            except EmptySplit:
                print(f"no {split} records to evaluate on", flush=True)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(images)} training views ({args.data})", flush=True)
    net = train(images, angles, config, args.steps, args.batch, seed=args.seed)
    metrics = {"train_views": len(images), "steps": args.steps}
    for split, (split_images, split_angles) in held_out.items():
        metrics[split] = evaluate(net, split_images, split_angles)
        print(f"{split}: {metrics[split]}", flush=True)
    return _attach(args.attach, config.to_dict(), net.state_dict(), metrics)


def _attach(targets: list[Path], layout: dict, state: dict, metrics: dict) -> int:
    """Write the estimator into every target checkpoint; 1 on the first that fails."""
    for path in targets:
        try:
            attach_viewpoint(path, layout, state, metrics)
        except CheckpointError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"attached to {path}", flush=True)
    for folder in {path.parent for path in targets}:
        if (folder / "MODELS.md").exists():  # a bundled models folder: its sizes changed
            write_models_readme(folder)
    return 0


def _copy(source: str, targets: list[Path]) -> int:
    """Attach the estimator of ``source`` (a model name or path) to ``targets`` (already
    checked to load)."""
    try:
        path = resolve_model(source)
        checkpoint = load_checkpoint(path)
        if checkpoint.viewpoint_state is None:
            raise CheckpointError(f"{path}: carries no viewpoint estimator to copy")
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stored = checkpoint.info["viewpoint"]
    metrics = dict(stored["metrics"], copied_from=path.name)
    return _attach(targets, stored["layout"], checkpoint.viewpoint_state, metrics)


if __name__ == "__main__":
    sys.exit(main())
