"""Test helpers shared by several test modules."""

from pathlib import Path

import torch

from recon_core.checkpoint import save_checkpoint
from recon_core.methods import METHODS
from training.presets import preset


def octahedron_model(path: Path, peak: float = 20.0 * 0.35, shift: float = 0.0) -> Path:
    """An implicit model whose decoder is exactly ``peak`` - 20 * (|x - shift| + |y| + |z|)
    (by default 20 * (0.35 - |x| - |y| - |z|)): a known, non-empty shape whatever the
    picture, built by hand from the residual decoder. A negative ``peak`` leaves it empty at
    iso 0.5; a ``shift`` moves it off the left-right plane."""
    config = preset("implicit-smoke")
    model = METHODS["implicit"](config).build_model()
    decoder = model.decoder
    with torch.no_grad():
        for p in decoder.parameters():
            p.zero_()
        for k in range(3):  # lift: h = (x, -x, y, -y, z, -z, 0, ...)
            decoder.lift.weight[2 * k, k] = 1.0
            decoder.lift.weight[2 * k + 1, k] = -1.0
        decoder.lift.bias[0], decoder.lift.bias[1] = -shift, shift
        decoder.out.weight[0, :6] = -20.0
        decoder.out.bias[0] = peak
    save_checkpoint(
        path, config, model.state_dict(), {"categories": ["test"], "step": 0, "metrics": {}}
    )
    return path


def sphere_cloud_model(path: Path, flange: float | None = None) -> Path:
    """A point-cloud model that ignores the picture: every fixed view predicts the visible
    half of the sphere of radius 0.3 around the origin, so the fused cloud is that sphere
    (and the fixed views agree on it). With ``flange``, view 0 alone also sees a flat ring
    out to that radius in the plane through the origin, which no other view's silhouette
    holds."""
    config = preset("pointcloud-smoke")
    method = METHODS["pointcloud"](config)
    model = method.build_model()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        grid = model.pixel_bias[:, 0:2]
        squared = grid[:, 0] ** 2 + grid[:, 1] ** 2
        inside = squared < 0.3**2
        model.pixel_bias[:, 2] = 1.0 - torch.sqrt((0.3**2 - squared).clamp(min=0.0))
        model.pixel_bias[:, 3] = torch.where(inside, 5.0, -5.0)
        if flange is not None:
            ring = ~inside[0] & (squared[0] < flange**2)
            model.pixel_bias[0, 2][ring] = 1.0
            model.pixel_bias[0, 3][ring] = 5.0
    save_checkpoint(
        path,
        config,
        model.state_dict(),
        {"categories": ["test"], "step": 0, "metrics": {}, **method.info()},
    )
    return path


def aligned_octahedron_model(path: Path, elevation: float = 0.3) -> Path:
    """A pixel-aligned implicit model (viewer-centred frame) whose decoder is the octahedron
    of `octahedron_model` in the viewer frame whatever the picture (its pixel-aligned
    features weighted zero) and whose elevation estimate is always ``elevation`` radians."""
    config = preset("implicit-smoke")
    config.model.encoder = "efficientnet-lite0"
    config.model.local_features = 8
    config.stages[0].losses["elevation"] = 1.0
    model = METHODS["implicit"](config).build_model()
    decoder = model.decoder
    with torch.no_grad():
        for p in decoder.parameters():
            p.zero_()
        for k in range(3):
            decoder.lift.weight[2 * k, k] = 1.0
            decoder.lift.weight[2 * k + 1, k] = -1.0
        decoder.out.weight[0, :6] = -20.0
        decoder.out.bias[0] = 20.0 * 0.35
        model.encoder.elevation.weight.zero_()
        model.encoder.elevation.bias.fill_(elevation)
    save_checkpoint(
        path, config, model.state_dict(), {"categories": ["test"], "step": 0, "metrics": {}}
    )
    return path
