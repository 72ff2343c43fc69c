"""Inference: load a checkpoint, encode a framed RGBA image once, then ask for a mesh or a
point cloud from the cached encoding."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from recon_core.checkpoint import load_checkpoint
from recon_core.engine import select_device
from recon_core.extraction import ExtractionStats, Mesh, extract_mesh
from recon_core.fusion import fuse
from recon_core.imaging import network_input
from recon_core.methods import METHODS

__all__ = ["Reconstructor", "Encoded", "image_tensor"]


def image_tensor(rgba: np.ndarray, size: int) -> torch.Tensor:
    """Framed RGBA image (H, W, 4), uint8 or float in [0, 1] -> (1, 4, size, size) float,
    resized as the training data loader does."""
    return network_input(np.asarray(rgba)[None], size)


@dataclass
class Encoded:
    """What the network computed from one image: the latent code (implicit) or the fused
    cloud with its mask logits (point cloud)."""

    method: str
    latent: torch.Tensor | None = None
    points: torch.Tensor | None = None
    mask_logit: torch.Tensor | None = None


class Reconstructor:
    """A trained model ready for inference."""

    def __init__(self, path: str | Path, device: str = "auto"):
        checkpoint = load_checkpoint(path)
        self.path = Path(path)
        self.config = checkpoint.config
        self.info = checkpoint.info
        self.method = METHODS[self.config.method](self.config)
        self.device = select_device(device)
        model = self.method.build_model()
        model.load_state_dict({k: v.float() for k, v in checkpoint.model_state.items()})
        self.model = model.to(self.device).eval()

    @property
    def input_size(self) -> int:
        return self.config.model.input_size

    @torch.no_grad()
    def encode(self, rgba: np.ndarray) -> Encoded:
        image = image_tensor(rgba, self.input_size).to(self.device)
        if self.config.method == "implicit":
            return Encoded("implicit", latent=self.model.encode(image))
        xyz, mask_logit = self.model(image)
        points = fuse(xyz, self.method.fixed_extrinsics.to(self.device))
        return Encoded("pointcloud", points=points[0], mask_logit=mask_logit.flatten(1)[0])

    def field(self, encoded: Encoded):
        """Occupancy logits of points (N, 3), from an implicit encoding."""
        if encoded.method != "implicit":
            raise ValueError("an occupancy field needs the implicit method")
        latent = encoded.latent
        decoder = self.model.decoder
        if hasattr(decoder, "specialize"):  # conditioning folded into the weights
            return decoder.specialize(latent)

        def logits(points: torch.Tensor) -> torch.Tensor:
            return self.model.decode(latent, points[None].to(self.device))[0]

        return logits

    def mesh(
        self, encoded: Encoded, resolution: int = 128, iso: float = 0.5
    ) -> tuple[Mesh, ExtractionStats]:
        """Closed mesh at any resolution (16-512) and iso level (0-1), from the cached code."""
        if encoded.method != "implicit":
            raise ValueError("meshes from point clouds are not available yet")
        if not torch.isfinite(encoded.latent).all():
            raise ValueError("the latent code is not finite")
        return extract_mesh(self.field(encoded), resolution, iso, device=self.device)

    def points(self, encoded: Encoded) -> np.ndarray:
        """The point cloud (P, 3): fused points whose mask logit is positive."""
        if encoded.method != "pointcloud":
            raise ValueError("point clouds come from the pointcloud method")
        keep = encoded.mask_logit > 0
        return encoded.points[keep].cpu().numpy()
