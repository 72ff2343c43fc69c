"""The interface of a method: its training side (network, losses, previews, for the
training engine) and its inference side (`Generator`: a picture's encoding, the mesh and
the points, for `recon_core.inference.Reconstructor`)."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from recon_core.colour import ViewEstimate, ViewHint
from recon_core.config import ConfigError, TrainConfig
from recon_core.data import SampleSettings
from recon_core.extraction import Mesh

__all__ = ["Method", "Generator", "Encoded", "Options"]

log = logging.getLogger("recon3d")


@dataclass
class Encoded:
    """What the network computed from one image: the latent code (implicit) or the fused
    cloud with its mask logits (point cloud), and the framed picture for colours."""

    method: str
    latent: torch.Tensor | None = None
    points: torch.Tensor | None = None
    mask_logit: torch.Tensor | None = None
    framed: np.ndarray | None = None
    """(S, S, 4) uint8 framed picture the colours and the silhouette fit read (S =
    COLOUR_SIZE when encoded from a Picture)."""
    views: dict[ViewHint | None, ViewEstimate] = field(default_factory=dict, repr=False)
    """The picture's estimated viewpoint per view hint, once a coloured result asked for it."""
    fitted: bool = False
    """Whether the latent code was fitted to the picture's silhouette."""
    kept: dict[int | None, torch.Tensor] = field(default_factory=dict, repr=False)
    """Point-cloud models: the points kept (P,) bool, per ``consistency`` asked for."""
    features: torch.Tensor | None = None
    """Pixel-aligned implicit models: the picture's feature map (1, C, h, w)."""
    elevation: float | None = None
    """Pixel-aligned implicit models: the camera's estimated elevation, radians."""


@dataclass(frozen=True)
class Options:
    """How results are made from an encoding, per call (see `Reconstructor`)."""

    consistency: int | None = None
    symmetric: bool = False
    view: ViewHint | None = None


class Generator(ABC):
    """A method's inference side, as Occupancy Networks gives each method a generator: a
    trained network on its device, from a framed image to an encoding, and from an encoding
    to a closed mesh and, where the method makes its own, to points. Falls back to the CPU
    when the GPU runs out of memory (`to_cpu`)."""

    makes_points: bool = False
    """Whether the method's points are its own (a point cloud), rather than sampled from
    its mesh."""
    fits_silhouette: bool = False
    """Whether its encoding can be fitted to the picture's silhouette
    (`recon_core.fitting`)."""

    def __init__(
        self, method: Method, model: nn.Module, device: torch.device, path: Path, info: dict
    ):
        self.method = method
        self.info = info
        self.config = method.config
        self.model = model
        self.device = device
        self.path = Path(path)

    def to_cpu(self, reason: str) -> None:
        """Go on on the CPU, saying why in one log line."""
        log.warning("%s; falling back to the CPU", reason)
        self.device = torch.device("cpu")
        self.model = self.model.cpu()

    @abstractmethod
    def encode(self, image: torch.Tensor) -> Encoded:
        """The encoding of a network input (1, 4, S, S) on the generator's device."""

    @abstractmethod
    def mesh(
        self, encoded: Encoded, resolution: int, iso: float, lower_iso: bool, options: Options
    ) -> tuple[Mesh, object]:
        """A closed mesh and its extraction statistics (None where the method has none)."""

    def points(self, encoded: Encoded, count: int | None, options: Options) -> np.ndarray:
        """The method's own points (P, 3)."""
        raise ValueError("point clouds come from the pointcloud method")

    def field(self, encoded: Encoded):
        """A function from points (N, 3) to occupancy logits (N,)."""
        raise ValueError("an occupancy field needs the implicit method")


class Method(ABC):
    """One reconstruction method. Subclasses set ``name`` and ``loss_terms`` and implement
    `build_model`, `losses` and `preview`."""

    name: str = ""
    loss_terms: tuple[str, ...] = ()

    def __init__(self, config: TrainConfig):
        if config.method != self.name:
            raise ValueError(f"config is for {config.method!r}, not {self.name!r}")
        self.config = config
        for k, stage in enumerate(config.stages):
            unknown = sorted(set(stage.losses) - set(self.loss_terms))
            if unknown:
                raise ValueError(
                    f"stage {k} ({stage.name}): unknown loss terms {unknown}; "
                    f"{self.name} has {list(self.loss_terms)}"
                )

    @abstractmethod
    def sample_settings(self) -> SampleSettings:
        """What the data loader draws per shape for this method."""

    @abstractmethod
    def build_model(self, pretrained: bool = False) -> nn.Module:
        """The method's network, freshly initialised from the config; with ``pretrained``,
        parts the config says start from pretrained weights load them (training does; a
        checkpoint brings its own weights)."""

    @abstractmethod
    def losses(
        self, model: nn.Module, batch: dict, weights: dict[str, float]
    ) -> dict[str, torch.Tensor]:
        """Loss terms (scalars) for a batch; only terms with a non-zero weight need be
        computed."""

    @abstractmethod
    def preview(self, model: nn.Module, batch: dict) -> np.ndarray:
        """An RGB image (H, W, 3) uint8, one row per shape: input | prediction | truth
        (called under torch.no_grad with the model in eval mode)."""

    @property
    def partial_stages(self) -> bool:
        """Whether some stage leaves parameters without gradients (DistributedDataParallel
        must then look for unused parameters)."""
        return False

    def info(self) -> dict:
        """Method facts saved into checkpoints (e.g. the fixed views)."""
        return {}

    def cacheable_backbone(self, network: nn.Module) -> tuple[nn.Module, int]:
        """The pretrained backbone of ``network`` whose early layers every stage keeps
        frozen, and the stride up to which they reach: the maps that
        `recon_core.feature_cache` may compute once (``data.cache_backbone``)."""
        raise ConfigError(f"config.data.cache_backbone: the {self.name} method has none")

    @abstractmethod
    def generator(
        self, model: nn.Module, device: torch.device, path: Path, info: dict
    ) -> Generator:
        """The inference side for a trained ``model`` (in eval mode, on ``device``) loaded
        from the checkpoint at ``path`` (named in errors) whose metadata holds ``info``."""
