"""The object's mask from any background: the bundled u2netp salient-object network
(`recon_core.models.segmentation`), run on the CPU in PyTorch, nothing downloaded.

    probability = segment(rgb)          # (H, W) float in [0, 1]
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

__all__ = ["SegmentationError", "segmentation_weights", "segment", "SEGMENTATION_FILE"]

SEGMENTATION_FILE = Path("segmentation") / "u2netp.safetensors"
"""Where the weights lie inside the bundled models folder."""

_LOCK = threading.Lock()
_NETWORK = {}


class SegmentationError(RuntimeError):
    """The segmentation weights are missing or unusable; the message names the file."""


def segmentation_weights() -> Path:
    """The bundled u2netp weights."""
    from recon_core.registry import bundled_dir

    return bundled_dir() / SEGMENTATION_FILE


def _network():
    """The network, loaded once per process (on the CPU: it runs once per picture)."""
    with _LOCK:
        if "net" not in _NETWORK:
            from safetensors import safe_open
            from safetensors.torch import load_file

            from recon_core.models.segmentation import U2NetP

            path = segmentation_weights()
            if not path.is_file():
                raise SegmentationError(f"{path}: the segmentation model is missing")
            try:
                with safe_open(str(path), framework="pt") as handle:
                    json.loads((handle.metadata() or {})["recon3d_segmentation"])
                state = load_file(str(path))
                network = U2NetP()
                network.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
            except Exception as exc:
                first = (str(exc).splitlines() or [type(exc).__name__])[0]
                raise SegmentationError(f"{path}: unusable segmentation model ({first})") from None
            _NETWORK["net"] = network.eval().requires_grad_(False)
        return _NETWORK["net"]


def segment(rgb: np.ndarray, longest: int | None = None) -> np.ndarray:
    """The salient object's probability for a picture (H, W, 3) uint8, float32 in [0, 1],
    before any rescaling of the network's output (a picture without a salient object stays
    low everywhere): at the picture's size, or with ``longest``, at most that many pixels
    along its longer side (the network reads 320 pixels: finer gains nothing but time)."""
    import torch
    from PIL import Image

    from recon_core.models.segmentation import IMAGENET_MEAN, IMAGENET_STD, SEGMENTATION_SIZE

    network = _network()
    image = Image.fromarray(np.ascontiguousarray(rgb))
    height, width = rgb.shape[:2]
    small = image
    if min(height, width) > 4 * SEGMENTATION_SIZE:  # a cheap box shrink before the filter
        factor = min(height, width) // (2 * SEGMENTATION_SIZE)
        small = image.reduce(factor)
    side = (SEGMENTATION_SIZE, SEGMENTATION_SIZE)
    array = np.asarray(small.resize(side, Image.Resampling.LANCZOS), dtype=np.float32)
    array = array / max(float(array.max()), 1.0)
    array = (array - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    tensor = torch.from_numpy(array.transpose(2, 0, 1).copy())[None]
    with torch.no_grad():
        probability = network(tensor)[0, 0].numpy()
    if longest is not None and max(height, width) > longest:
        scale = longest / max(height, width)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    back = Image.fromarray(probability.astype(np.float32), mode="F")
    return np.asarray(back.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
