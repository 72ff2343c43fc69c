"""Fitting an implicit model's latent code to the picture's silhouette.

The encoder reads one picture once; its code falls short of what the decoder can represent
(see docs/experiments.md). The picture's mask says more: seen from the picture's camera, the field
should be occupied along the rays through the object and empty along the others. The fit
optimises the latent code (the decoder stays frozen) so that the highest occupancy along
each ray matches the mask, with a pull back to the encoder's code so that what the picture
does not show (the back, the hidden legs) stays the encoder's guess.

It needs the picture's camera: its angles and its framing (where the object sits in the
picture and how large). The angles come from `recon_core.colour.estimate_view`, and are only
right often enough when the user says roughly where the picture was taken from (a
`ViewHint`). The framing is learnt with the code: a scale and a shift of the image, through
rays that depend on them. Each step marches the rays without gradients (the occupancy at
``samples`` points along each of ``rays`` x ``rays`` rays), then takes the gradient of the
loss through the one sample per ray that holds the highest occupancy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from recon_core.extraction import latent_field
from recon_core.geometry import Camera

__all__ = [
    "FitSettings",
    "FitResult",
    "fit_silhouette",
    "silhouette_logits",
    "framed_rays",
    "framed_camera",
    "grid_pixels",
]


@dataclass(frozen=True)
class FitSettings:
    steps: int = 40
    rays: int = 48
    """Rays per side: one through the centre of each cell of a ``rays`` x ``rays`` grid over
    the picture, aiming at the mask's coverage of its cell (pixels drawn at random each
    step, each aiming at its own mask value, measured the same, see docs/experiments.md)."""
    samples: int = 40
    """Samples per ray, within ``span`` either side of the ray's closest approach to the
    object frame's origin (the unit box's half diagonal is 0.87)."""
    span: float = 0.9
    lr: float = 0.02
    """Adam step of the latent code."""
    frame_lr: float = 0.03
    """Adam step of the framing (log scale, then shifts in image widths); 0 keeps it."""
    pull: float = 0.1
    """Weight of the squared distance to the encoder's code, relative to its mean square."""
    chunk: int = 16384

    def __post_init__(self):
        for name in ("steps", "rays", "samples", "chunk"):
            if getattr(self, name) < 1:
                raise ValueError(f"FitSettings.{name} must be at least 1")
        for name in ("span", "lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"FitSettings.{name} must be positive")
        if self.frame_lr < 0 or self.pull < 0:
            raise ValueError("FitSettings.frame_lr and pull must not be negative")

    def replace(self, **changes) -> FitSettings:
        return dataclasses.replace(self, **changes)


@dataclass
class FitResult:
    latent: torch.Tensor
    """The fitted code, shaped as the one given."""
    camera: Camera
    """The camera with the learnt framing."""
    losses: list[float]
    """The silhouette loss (binary cross-entropy) at each step, before its update."""


def grid_pixels(camera: Camera, rays: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Pixel coordinates (R*R, 2), (u, v), of the centres of a ``rays`` x ``rays`` grid over
    the camera's image, row by row."""
    u = (torch.arange(rays, dtype=dtype, device=device) + 0.5) * (camera.width / rays)
    v = (torch.arange(rays, dtype=dtype, device=device) + 0.5) * (camera.height / rays)
    v, u = torch.meshgrid(v, u, indexing="ij")
    return torch.stack([u.reshape(-1), v.reshape(-1)], dim=1)


def framed_rays(camera: Camera, pixels: torch.Tensor, frame: torch.Tensor):
    """Ray origin (3,), unit directions (N, 3) through ``pixels`` (N, 2) of the picture, and
    the distance along each ray of its closest approach to the origin (N,), for a
    perspective camera whose image is scaled by exp(frame[0]) about its principal point and
    shifted by frame[1:] image sizes; differentiable in ``frame``."""
    if camera.projection != "perspective":
        raise ValueError("silhouette fitting needs a perspective camera")
    dtype, device = frame.dtype, frame.device
    intrinsic = torch.tensor(np.asarray(camera.intrinsic), dtype=dtype, device=device)
    extrinsic = torch.tensor(np.asarray(camera.extrinsic), dtype=dtype, device=device)
    rotation, translation = extrinsic[:3, :3], extrinsic[:3, 3]
    origin = -rotation.T @ translation
    u, v = pixels.to(device=device, dtype=dtype).unbind(dim=1)
    scale = torch.exp(frame[0])
    cx = intrinsic[0, 2] + frame[1] * camera.width
    cy = intrinsic[1, 2] + frame[2] * camera.height
    x = (u - cx) / (intrinsic[0, 0] * scale)
    y = -(v - cy) / (intrinsic[1, 1] * scale)
    local = torch.stack([x, y, -torch.ones_like(u)], dim=1)
    directions = local / local.norm(dim=1, keepdim=True) @ rotation  # camera to world
    return origin, directions, -(directions @ origin)


def silhouette_logits(
    decoder, latent, camera: Camera, pixels: torch.Tensor, settings: FitSettings, frame=None
):
    """Per ray of ``framed_rays``: the highest occupancy logit along it (N,), with its
    gradient through that one sample (to the code and the framing)."""
    device = latent.device
    if frame is None:
        frame = torch.zeros(3, device=device)
    steps = torch.linspace(-settings.span, settings.span, settings.samples, device=device)
    with torch.no_grad():
        origin, directions, closest = framed_rays(camera, pixels, frame.detach())
        points = origin + (closest[:, None] + steps)[..., None] * directions[:, None]
        field = latent_field(decoder, latent.detach())
        logits = torch.cat([field(chunk) for chunk in points.reshape(-1, 3).split(settings.chunk)])
        best = logits.reshape(len(directions), settings.samples).argmax(dim=1)
    origin, directions, closest = framed_rays(camera, pixels, frame)
    chosen = origin + (closest + steps[best])[:, None] * directions
    return decoder(latent.reshape(1, -1), chosen[None])[0]


def _coverage(mask: np.ndarray, rays: int, device) -> torch.Tensor:
    """The mask's coverage of each cell of a ``rays`` x ``rays`` grid (R*R,), in [0, 1]."""
    mask = torch.as_tensor(np.asarray(mask, dtype=np.float32), device=device)
    return F.interpolate(mask[None, None], size=(rays, rays), mode="area").reshape(-1)


def fit_silhouette(
    decoder,
    latent: torch.Tensor,
    mask: np.ndarray,
    camera: Camera,
    settings: FitSettings | None = None,
) -> FitResult:
    """Fit ``latent`` (Z,) or (1, Z) so that the field's silhouette from ``camera`` matches
    ``mask`` (H, W) bool, the picture's object mask, in ``camera``'s image. The decoder's
    parameters are left as they are (and get no gradients)."""
    settings = settings or FitSettings()
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (camera.height, camera.width):
        raise ValueError(f"mask {mask.shape} does not match the camera's image size")
    if not mask.any():
        raise ValueError("the mask is empty: no silhouette to fit")
    device = latent.device
    start = latent.detach().reshape(1, -1).float()
    scale = start.pow(2).mean().clamp_min(1e-12)
    code = start.clone().requires_grad_(True)
    frame = torch.zeros(3, device=device, requires_grad=settings.frame_lr > 0)
    groups = [{"params": [code], "lr": settings.lr}]
    if settings.frame_lr > 0:
        groups.append({"params": [frame], "lr": settings.frame_lr})
    optimiser = torch.optim.Adam(groups)
    pixels = grid_pixels(camera, settings.rays, device)
    target = _coverage(mask, settings.rays, device)
    frozen = [p for p in decoder.parameters() if p.requires_grad]
    for parameter in frozen:
        parameter.requires_grad_(False)
    losses = []
    try:
        with torch.enable_grad():
            for _ in range(settings.steps):
                logits = silhouette_logits(decoder, code, camera, pixels, settings, frame)
                silhouette = F.binary_cross_entropy_with_logits(logits, target)
                loss = silhouette + settings.pull * (code - start).pow(2).mean() / scale
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                losses.append(float(silhouette.detach()))
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)
    return FitResult(
        code.detach().reshape(latent.shape).to(latent.dtype),
        framed_camera(camera, frame.detach().cpu().numpy()),
        losses,
    )


def framed_camera(camera: Camera, frame: np.ndarray) -> Camera:
    """``camera`` with the image scaled by exp(frame[0]) about its principal point and
    shifted by frame[1:] image sizes, as `framed_rays` applies it."""
    intrinsic = np.array(camera.intrinsic, dtype=np.float64)
    intrinsic[0, 0] *= float(np.exp(frame[0]))
    intrinsic[1, 1] *= float(np.exp(frame[0]))
    intrinsic[0, 2] += float(frame[1]) * camera.width
    intrinsic[1, 2] += float(frame[2]) * camera.height
    return Camera(camera.extrinsic, intrinsic, camera.projection, camera.width, camera.height)
