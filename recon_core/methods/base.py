"""The interface between the training engine and a method."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
import torch.nn as nn

from recon_core.config import TrainConfig
from recon_core.data import SampleSettings

__all__ = ["Method"]


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
