"""The object's mask from any background: the bundled salient-object network
(`recon_core.models.segmentation`), run on the CPU in PyTorch, nothing downloaded.

    probability = segment(rgb)          # (H, W) float in [0, 1]
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

__all__ = [
    "SegmentationError",
    "segmentation_weights",
    "use_weights",
    "load_network",
    "segment",
    "segmentation_input",
    "SEGMENTATION_FILE",
]

SEGMENTATION_FILE = Path("segmentation") / "network.safetensors"
"""Where the weights lie inside the bundled models folder."""

_LOCK = threading.Lock()
_NETWORK = {}
_CHOSEN: list[Path] = []


class SegmentationError(RuntimeError):
    """The segmentation weights are missing or unusable; the message names the file."""


def segmentation_weights() -> Path:
    """The segmentation weights in use: the bundled ones, unless `use_weights` chose
    others."""
    from recon_core.registry import bundled_dir

    return _CHOSEN[0] if _CHOSEN else bundled_dir() / SEGMENTATION_FILE


def use_weights(path: str | Path | None) -> None:
    """Segment with the weights at ``path`` from now on (a fine-tuned candidate,
    `training.train_segmentation`); None returns to the bundled ones. A missing file is a
    `SegmentationError` naming it, and the weights in use stay as they were."""
    if path is not None and not Path(path).is_file():
        raise SegmentationError(f"{path}: the segmentation model is missing")
    with _LOCK:
        _CHOSEN.clear()
        if path is not None:
            _CHOSEN.append(Path(path))
        _NETWORK.clear()


def load_network(path: str | Path):
    """The segmentation network of the weights file at ``path`` (in inference mode; which
    network: the metadata's ``architecture``, u2netp where it names none), with the file's
    metadata; `SegmentationError` naming the file when it is missing or unusable."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from recon_core.models.segmentation import NETWORKS

    path = Path(path)
    if not path.is_file():
        raise SegmentationError(f"{path}: the segmentation model is missing")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})["recon3d_segmentation"])
        name = meta.get("architecture", "u2netp")
        if name not in NETWORKS:
            raise ValueError(f"unknown network {name!r}")
        state = load_file(str(path))
        network = NETWORKS[name]()
        network.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise SegmentationError(f"{path}: unusable segmentation model ({first})") from None
    return network.eval(), meta


def _network():
    """The network in use, loaded once per process (on the CPU: it runs once per picture),
    its weights in channels-last layout (u2netp 1.1-1.4 times faster so, docs/benchmarks.md)."""
    import torch

    with _LOCK:
        if "net" not in _NETWORK:
            network, _ = load_network(segmentation_weights())
            network = network.to(memory_format=torch.channels_last)
            _NETWORK["net"] = network.requires_grad_(False)
        return _NETWORK["net"]


def segment(rgb: np.ndarray, longest: int | None = None) -> np.ndarray:
    """The salient object's probability for a picture (H, W, 3) uint8, float32 in [0, 1],
    before any rescaling of the network's output (a picture without a salient object stays
    low everywhere): at the picture's size, or with ``longest``, at most that many pixels
    along its longer side (the network reads 320 pixels: finer gains nothing but time)."""
    import torch
    from PIL import Image

    from recon_core.models.segmentation import SEGMENTATION_SIZE

    network = _network()
    image = Image.fromarray(np.ascontiguousarray(rgb))
    height, width = rgb.shape[:2]
    small = image
    if min(height, width) > 4 * SEGMENTATION_SIZE:  # a cheap box shrink before the filter
        factor = min(height, width) // (2 * SEGMENTATION_SIZE)
        small = image.reduce(factor)
    side = (SEGMENTATION_SIZE, SEGMENTATION_SIZE)
    array = np.asarray(small.resize(side, Image.Resampling.LANCZOS))
    tensor = segmentation_input(array[None])
    with torch.no_grad():
        probability = network(tensor)[0, 0].numpy()
    if longest is not None and max(height, width) > longest:
        scale = longest / max(height, width)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    back = Image.fromarray(probability.astype(np.float32), mode="F")
    return np.asarray(back.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def segmentation_input(pictures: np.ndarray):
    """Pictures (B, S, S, 3) uint8 at the network's side -> its input (B, 3, S, S), in
    channels-last layout: each scaled by its own brightest value, then ImageNet's mean and
    deviation."""
    import torch

    from recon_core.models.segmentation import IMAGENET_MEAN, IMAGENET_STD

    array = pictures.astype(np.float32)
    array /= np.maximum(array.max(axis=(1, 2, 3), keepdims=True), 1.0)
    array = (array - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return torch.from_numpy(array).permute(0, 3, 1, 2)  # (B, H, W, C) memory: channels-last
