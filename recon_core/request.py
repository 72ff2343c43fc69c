"""What a user asks of one reconstruction, checked once, before any work.

``recon3d reconstruct``, the worker (and through it the Blender add-on) all fill a
`ReconstructionRequest`; a request that cannot be served is refused with one line that
names the option and the problem, before a model is loaded or a picture read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "ReconstructionRequest",
    "RequestError",
    "OUTPUTS",
    "DEFAULT_RESOLUTION",
    "DEFAULT_ISO",
    "DEFAULT_POINTS",
    "check_device",
]

OUTPUTS = ("mesh", "points", "both")
BACKGROUNDS = ("auto", "alpha", "segment", "plain")
"""Mask sources without a mask file (the same as `recon_core.picture.BACKGROUNDS`)."""
DEFAULT_RESOLUTION = 128
DEFAULT_ISO = 0.5
DEFAULT_POINTS = 20000
"""Points sampled from an implicit model's mesh when no count is given."""

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class RequestError(ValueError):
    """A request that cannot be served; the message is one line."""


def check_device(device: Any) -> str:
    """The device name if it is one of auto, cpu, cuda, cuda:N, mps; else a RequestError."""
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise RequestError(f"device {device!r}: use auto, cpu, cuda, cuda:N or mps")
    return device


@dataclass(frozen=True)
class ReconstructionRequest:
    """The options of one reconstruction (the defaults are the CLI's and the add-on's)."""

    output: str = "both"
    """mesh, points or both."""
    resolution: int = DEFAULT_RESOLUTION
    """Mesh grid, 16-512."""
    iso: float = DEFAULT_ISO
    """Occupancy level of the mesh, strictly between 0 and 1."""
    faces: int | None = None
    """At most this many triangles (None: no budget)."""
    points: int | None = None
    """Point count (None: every point of a point-cloud model, `DEFAULT_POINTS` sampled from
    an implicit model's mesh)."""
    symmetric: bool = False
    """Mirror-symmetric results (see `recon_core.inference.Reconstructor`)."""
    view: Any = None
    """Where the picture was taken from: text as `recon_core.colour.parse_view` reads it,
    or a parsed `recon_core.colour.ViewHint` (None: estimated)."""
    fit_silhouette: bool = False
    """Implicit models, with a view: fit the shape to the picture's silhouette."""
    consistency: int | None = None
    """Point-cloud models: the silhouette test (see `Reconstructor`)."""
    device: str = "auto"
    """auto, cpu, cuda, cuda:N or mps."""
    background: str = "auto"
    """Where the picture's mask comes from without a mask file: auto, alpha, segment or
    plain (`recon_core.picture`)."""

    def __post_init__(self):
        if self.output not in OUTPUTS:
            raise RequestError(f"output {self.output!r}: use mesh, points or both")
        _integer("resolution", self.resolution)
        if not 16 <= self.resolution <= 512:
            raise RequestError(f"resolution must be between 16 and 512, got {self.resolution}")
        if isinstance(self.iso, bool) or not isinstance(self.iso, (int, float)):
            raise RequestError(f"iso must be a number, got {self.iso!r}")
        if not (math.isfinite(self.iso) and 0.0 < self.iso < 1.0):
            raise RequestError(f"iso must be strictly between 0 and 1, got {self.iso}")
        if self.faces is not None:
            _integer("faces", self.faces)
            if self.faces < 4:
                raise RequestError(f"faces must be at least 4, got {self.faces}")
        if self.points is not None:
            _integer("points", self.points)
            if self.points < 1:
                raise RequestError(f"points must be at least 1, got {self.points}")
        if self.consistency is not None:
            _integer("consistency", self.consistency)
            if self.consistency < 0:
                raise RequestError(f"consistency must be 0 or more, got {self.consistency}")
        for name in ("symmetric", "fit_silhouette"):
            if not isinstance(getattr(self, name), bool):
                raise RequestError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.view is not None:
            self.view_hint  # noqa: B018 (parses it, or raises)
        if self.fit_silhouette and self.view is None:
            raise RequestError(
                "fitting the silhouette needs a view: with the viewpoint estimated from the "
                "picture alone the fit gains nothing on average"
            )
        check_device(self.device)
        if self.background not in BACKGROUNDS:
            raise RequestError(f"background {self.background!r}: use {', '.join(BACKGROUNDS)}")

    @property
    def view_hint(self):
        """The parsed view (`recon_core.colour.ViewHint`), or None."""
        if self.view is None:
            return None
        from recon_core.colour import ViewHint, parse_view

        if isinstance(self.view, ViewHint):
            return self.view
        if not isinstance(self.view, str):
            raise RequestError(f"view must be text such as front-left, got {self.view!r}")
        try:
            return parse_view(self.view)
        except ValueError as exc:
            raise RequestError(str(exc)) from None

    @classmethod
    def from_job(cls, job: dict[str, Any]) -> ReconstructionRequest:
        """The request of a worker job (`recon_core.worker`): its option fields, where 0 or
        absent ``faces`` and ``points`` mean none, and "auto" or empty ``view`` means
        estimated."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in job and job[f.name] is not None:
                values[f.name] = job[f.name]
        for name in ("faces", "points"):
            if values.get(name) == 0 and not isinstance(values[name], bool):
                del values[name]
        if values.get("view") in ("", "auto"):
            del values["view"]
        return cls(**values)


def _integer(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name} must be a whole number, got {value!r}")
