"""The picture's viewpoint, predicted from its pixels.

Colours (and anything else that needs the picture's camera) find the viewpoint by matching
the predicted shape's silhouette against the picture's mask (`recon_core.colour`). A wrong
predicted shape misleads that search, and a left-right symmetric object has the same
silhouette from azimuths a and -a, or seen from the front and from behind. A small CNN
trained on the dataset's input renders, whose cameras are known, tells the front from the
back from the picture's content: it gives a probability per azimuth bin (10 degrees) and per
elevation bin, and the silhouette search weighs its candidates with them.

The estimator travels inside a model's checkpoint (tensors under ``viewpoint/``, its layout
and metrics under the ``viewpoint`` metadata key; `training.viewpoint` trains and attaches
it), since it is tied to the object frame of the data the model was trained on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from recon_core.geometry import camera_centre

__all__ = [
    "ViewpointConfig",
    "ViewpointNet",
    "ViewpointPrediction",
    "camera_angles",
    "azimuth_labels",
    "elevation_labels",
]


@dataclass(frozen=True)
class ViewpointConfig:
    input_size: int = 64
    """Side of the framed RGBA input in pixels."""
    width: int = 32
    """Channels of the first stage (doubled at each of the four stages)."""
    azimuth_step: float = 10.0
    """Azimuth bin width in degrees (bins centred on 0, step, 2 step...)."""
    elevations: tuple[float, ...] = (-10.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0)
    """Elevation bin centres in degrees."""

    @property
    def azimuth_bins(self) -> int:
        return int(round(360.0 / self.azimuth_step))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ViewpointConfig:
        defaults = cls()
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown viewpoint settings {unknown}")
        config = cls(
            input_size=int(data.get("input_size", defaults.input_size)),
            width=int(data.get("width", defaults.width)),
            azimuth_step=float(data.get("azimuth_step", defaults.azimuth_step)),
            elevations=tuple(float(e) for e in data.get("elevations", defaults.elevations)),
        )
        if config.input_size % 16 or config.input_size < 32:
            raise ValueError(f"input_size must be a multiple of 16 >= 32, got {config.input_size}")
        if abs(360.0 / config.azimuth_step - config.azimuth_bins) > 1e-6:
            raise ValueError(f"azimuth_step must divide 360, got {config.azimuth_step}")
        if config.width < 1 or not config.elevations:
            raise ValueError("width must be >= 1 and elevations not empty")
        return config


@dataclass
class ViewpointPrediction:
    azimuth: np.ndarray
    """(A,) probabilities of the azimuth bins."""
    elevation: np.ndarray
    """(E,) probabilities of the elevation bins."""
    config: ViewpointConfig

    def log_prob(self, azimuth, elevation) -> np.ndarray:
        """Log probabilities (K,) of the bins holding azimuths and elevations (K,) in
        degrees (nearest bin centre; floored at log 1e-12)."""
        azimuth, elevation = np.asarray(azimuth, float), np.asarray(elevation, float)
        step, bins = self.config.azimuth_step, self.config.azimuth_bins
        a = np.round(np.remainder(azimuth, 360.0) / step).astype(np.int64) % bins
        centres = np.asarray(self.config.elevations)
        e = np.argmin(np.abs(centres[None, :] - elevation.reshape(-1, 1)), axis=1)
        e = e.reshape(elevation.shape)
        return np.log(np.maximum(self.azimuth[a], 1e-12)) + np.log(
            np.maximum(self.elevation[e], 1e-12)
        )

    def best(self) -> tuple[float, float]:
        """The most probable azimuth and elevation (degrees)."""
        a = int(np.argmax(self.azimuth)) * self.config.azimuth_step
        return float(a), float(self.config.elevations[int(np.argmax(self.elevation))])


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ViewpointNet(nn.Module):
    """Framed RGBA (B, 4, S, S) -> azimuth logits (B, A) and elevation logits (B, E). Four
    stride-2 stages, then a fully connected layer over the S/16 x S/16 map (where the
    object's parts lie matters, so no global pooling)."""

    def __init__(self, config: ViewpointConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.features = nn.Sequential(
            _stage(4, w), _stage(w, 2 * w), _stage(2 * w, 4 * w), _stage(4 * w, 8 * w)
        )
        side = config.input_size // 16
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(8 * w * side * side, 256), nn.ReLU(inplace=True)
        )
        self.azimuth = nn.Linear(256, config.azimuth_bins)
        self.elevation = nn.Linear(256, len(config.elevations))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.fc(self.features(images))
        return self.azimuth(hidden), self.elevation(hidden)

    @torch.no_grad()
    def predict(self, rgba: np.ndarray) -> ViewpointPrediction:
        """Bin probabilities for one framed RGBA picture (H, W, 4)."""
        from recon_core.imaging import network_input

        device = next(self.parameters()).device
        image = network_input(np.asarray(rgba)[None], self.config.input_size).to(device)
        azimuth, elevation = self(image)
        return ViewpointPrediction(
            azimuth.softmax(-1)[0].double().cpu().numpy(),
            elevation.softmax(-1)[0].double().cpu().numpy(),
            self.config,
        )


def camera_angles(extrinsic: np.ndarray) -> tuple[float, float]:
    """Azimuth and elevation in degrees (`recon_core.geometry.view_direction`'s convention:
    azimuth 0 looks at the object's front from -Y) of a world-to-camera matrix's position."""
    position = camera_centre(extrinsic)
    direction = position / max(float(np.linalg.norm(position)), 1e-12)
    elevation = math.degrees(math.asin(float(np.clip(direction[2], -1.0, 1.0))))
    azimuth = math.degrees(math.atan2(float(direction[0]), float(-direction[1]))) % 360.0
    return azimuth, elevation


def azimuth_labels(azimuth: torch.Tensor, config: ViewpointConfig, sigma: float) -> torch.Tensor:
    """Soft targets (B, A) for azimuths (B,) in degrees: a wrapped Gaussian of ``sigma``
    degrees over the bin centres, normalised."""
    centres = torch.arange(config.azimuth_bins, dtype=torch.float32) * config.azimuth_step
    gap = torch.remainder(azimuth[:, None] - centres[None] + 180.0, 360.0) - 180.0
    weights = torch.exp(-0.5 * (gap / sigma) ** 2)
    return weights / weights.sum(-1, keepdim=True)


def elevation_labels(elevation: torch.Tensor, config: ViewpointConfig, sigma: float):
    """Soft targets (B, E) for elevations (B,) in degrees."""
    centres = torch.tensor(config.elevations, dtype=torch.float32)
    weights = torch.exp(-0.5 * ((elevation[:, None] - centres[None]) / sigma) ** 2)
    return weights / weights.sum(-1, keepdim=True)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -(target * F.log_softmax(logits, -1)).sum(-1).mean()
