"""IM-NET style implicit method: image -> latent z -> occupancy of any point."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from recon_core.config import ImplicitModelConfig
from recon_core.data import SampleSettings
from recon_core.geometry import FIXED_VIEW_DISTANCE, ORTHO_HALF_EXTENT
from recon_core.methods.base import Method
from recon_core.models.implicit import (
    IMNetDecoder,
    ImplicitNetwork,
    ResidualDecoder,
    ResNetEncoder,
)
from recon_core.visualize import depth_image, hstack, rgba_image

__all__ = ["ImplicitMethod", "build_implicit_network", "occupancy_depth"]


def build_implicit_network(model: ImplicitModelConfig) -> ImplicitNetwork:
    encoder = ResNetEncoder(model.latent_dim, model.encoder_width)
    if model.decoder == "imnet":
        decoder = IMNetDecoder(model.latent_dim, model.decoder_hidden)
    else:
        decoder = ResidualDecoder(
            model.latent_dim, model.decoder_hidden[0], model.decoder_blocks, model.conditioning
        )
    return ImplicitNetwork(encoder, decoder)


@torch.no_grad()
def occupancy_depth(
    network: ImplicitNetwork,
    z: torch.Tensor,
    extrinsic: np.ndarray,
    size: int = 64,
    samples: int = 96,
) -> np.ndarray:
    """Orthographic depth (size, size) of the occupied region seen by a fixed-distance
    camera, found by sampling each pixel's ray: the first sample whose logit is positive."""
    pixels = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    x = pixels[None, :].expand(size, size) * ORTHO_HALF_EXTENT
    y = -pixels[:, None].expand(size, size) * ORTHO_HALF_EXTENT
    depths = torch.linspace(
        FIXED_VIEW_DISTANCE - ORTHO_HALF_EXTENT, FIXED_VIEW_DISTANCE + ORTHO_HALF_EXTENT, samples
    )
    cam = torch.stack(
        [
            x[..., None].expand(-1, -1, samples),
            y[..., None].expand(-1, -1, samples),
            -depths.expand(size, size, samples),
        ],
        dim=-1,
    ).reshape(-1, 3)
    ext = torch.as_tensor(extrinsic, dtype=torch.float32)
    world = (cam - ext[:3, 3]) @ ext[:3, :3]
    logits = network.decode(z[:1], world[None].to(z.device))[0].view(size, size, samples)
    inside = logits > 0
    first = torch.where(inside.any(-1), inside.float().argmax(-1), torch.tensor(-1))
    depth = torch.where(first >= 0, depths[first.clamp(min=0)], torch.tensor(0.0))
    return depth.cpu().numpy()


class ImplicitMethod(Method):
    name = "implicit"
    loss_terms = ("occupancy",)

    def sample_settings(self) -> SampleSettings:
        return SampleSettings(
            occupancy_points=self.config.data.occupancy_points,
            image_size=self.config.model.input_size,
        )

    def build_model(self) -> nn.Module:
        return build_implicit_network(self.config.model)

    def losses(self, model, batch, weights):
        logits = model(batch["image"], batch["points"])
        return {"occupancy": F.binary_cross_entropy_with_logits(logits, batch["occupancy"])}

    def preview(self, model, batch) -> np.ndarray:
        network = model.module if hasattr(model, "module") else model
        rows = []
        z = network.encode(batch["image"])
        for b in range(min(4, len(z))):
            tiles = [rgba_image(batch["image"][b].cpu().numpy())]
            for view in (0, 4):
                ext = batch["fixed_extrinsics"][b, view].cpu().numpy()
                tiles.append(depth_image(occupancy_depth(network, z[b : b + 1], ext)))
                tiles.append(depth_image(batch["fixed_depth"][b, view].cpu().numpy()))
            rows.append(hstack(tiles))
        return np.concatenate(rows, axis=0)
