"""Test helpers shared by several test modules."""

from pathlib import Path

import torch

from recon_core.checkpoint import save_checkpoint
from recon_core.config import preset
from recon_core.methods import METHODS


def octahedron_model(path: Path) -> Path:
    """An implicit model whose decoder is exactly 20 * (0.35 - |x| - |y| - |z|): a known,
    non-empty shape whatever the picture, built by hand from the residual decoder."""
    config = preset("implicit-smoke")
    model = METHODS["implicit"](config).build_model()
    decoder = model.decoder
    with torch.no_grad():
        for p in decoder.parameters():
            p.zero_()
        for k in range(3):  # lift: h = (x, -x, y, -y, z, -z, 0, ...)
            decoder.lift.weight[2 * k, k] = 1.0
            decoder.lift.weight[2 * k + 1, k] = -1.0
        decoder.out.weight[0, :6] = -20.0
        decoder.out.bias[0] = 20.0 * 0.35
    save_checkpoint(
        path, config, model.state_dict(), {"categories": ["test"], "step": 0, "metrics": {}}
    )
    return path
