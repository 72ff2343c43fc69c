"""IM-NET style implicit method: image -> latent z -> occupancy of any point."""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from recon_core.config import ConfigError, ImplicitModelConfig
from recon_core.data import SampleSettings
from recon_core.extraction import (
    CPU_BATCH,
    EmptyFieldError,
    ExtractionError,
    default_batch,
    extract_mesh,
    latent_field,
)
from recon_core.feature_cache import cached_maps
from recon_core.geometry import FIXED_VIEW_DISTANCE, ORTHO_HALF_EXTENT
from recon_core.methods.base import Encoded, Generator, Method
from recon_core.models.implicit import (
    IMNetDecoder,
    ImplicitNetwork,
    PixelCode,
    PretrainedEncoder,
    ResidualDecoder,
    ResNetEncoder,
    VoxelEncoder,
    sample_features,
)
from recon_core.visualize import depth_image, hstack, rgba_image

__all__ = [
    "ImplicitMethod",
    "ImplicitGenerator",
    "build_implicit_network",
    "occupancy_depth",
    "TWO_STAGE_TERMS",
    "LOWERED_ISO_SHARE",
    "LOWERED_ISO_FLOOR",
]

log = logging.getLogger("recon3d")

LOWERED_ISO_SHARE = 0.5
"""When nothing of an implicit field reaches the iso level asked for, the mesh is extracted
at this share of the field's highest occupancy instead (a thin or uncertain shape: chair
legs, plants), unless that is below `LOWERED_ISO_FLOOR` (no shape to speak of)."""
LOWERED_ISO_FLOOR = 0.05

CACHEABLE_STRIDES = (2, 4, 8, 16)
"""Strides up to which a frozen backbone's maps may be cached (the stride-32 stage feeds
the global code, which trains)."""

TWO_STAGE_TERMS = ("autoencoder", "latent")
"""Loss terms of IM-NET's two-stage route: a shape autoencoder on the voxel grid, then the
image encoder regressing the autoencoder's codes."""


def build_implicit_network(
    model: ImplicitModelConfig, shape_encoder: bool = False, pretrained: bool = False
) -> ImplicitNetwork:
    """The image encoder and decoder; with ``shape_encoder``, also IM-NET's voxel encoder
    (at the image encoder's base width, as IM-NET's 32, unless ``shape_encoder_width``).
    ``pretrained`` loads the ImageNet weights into a pretrained encoder (training starts
    from them; a checkpoint brings its own)."""
    if model.encoder == "efficientnet-lite0":
        encoder = PretrainedEncoder(model.latent_dim, pretrained, model.local_features)
    else:
        encoder = ResNetEncoder(model.latent_dim, model.encoder_width)
    if model.decoder == "imnet":
        decoder = IMNetDecoder(model.latent_dim, model.decoder_hidden)
    else:
        decoder = ResidualDecoder(
            model.latent_dim,
            model.decoder_hidden[0],
            model.decoder_blocks,
            model.conditioning,
            model.local_features,
        )
    width = model.shape_encoder_width or model.encoder_width
    voxels = VoxelEncoder(model.latent_dim, width) if shape_encoder else None
    return ImplicitNetwork(encoder, decoder, voxels)


@torch.no_grad()
def occupancy_depth(
    network: ImplicitNetwork,
    z: torch.Tensor | PixelCode,
    extrinsic: np.ndarray,
    size: int = 64,
    samples: int = 96,
    view_transform: torch.Tensor | None = None,
) -> np.ndarray:
    """Orthographic depth (size, size) of the occupied region seen by a fixed-distance
    camera, found by sampling each pixel's ray: the first sample whose logit is positive.
    ``view_transform`` (4, 4) takes the camera's world to the frame the code decodes in
    (a pixel-aligned code's viewer-centred frame)."""
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
    if view_transform is not None:
        to_view = view_transform.float().cpu()
        world = world @ to_view[:3, :3].T + to_view[:3, 3]
    device = z.latent.device if isinstance(z, PixelCode) else z.device
    logits = network.decode(z, world[None].to(device))[0].view(size, size, samples)
    inside = logits > 0
    first = torch.where(inside.any(-1), inside.float().argmax(-1), torch.tensor(-1))
    depth = torch.where(first >= 0, depths[first.clamp(min=0)], torch.tensor(0.0))
    return depth.cpu().numpy()


def _one(code: torch.Tensor | PixelCode, b: int) -> torch.Tensor | PixelCode:
    """Sample ``b`` of a batch of codes, as a batch of one."""
    if isinstance(code, PixelCode):
        return PixelCode(*(part[b : b + 1] for part in code))
    return code[b : b + 1]


class ImplicitMethod(Method):
    """Stages weight ``occupancy`` (image -> occupancy end to end, as Occupancy Networks
    trains), or IM-NET's two stages: ``autoencoder`` (voxel grid -> code -> occupancy), then
    ``latent`` (the image encoder regresses the frozen autoencoder's code, L2); an
    ``occupancy`` stage may follow to fine-tune end to end."""

    name = "implicit"
    loss_terms = ("occupancy", "elevation", *TWO_STAGE_TERMS)

    @property
    def two_stage(self) -> bool:
        return any(
            stage.losses.get(term, 0.0) != 0.0
            for stage in self.config.stages
            for term in TWO_STAGE_TERMS
        )

    @property
    def partial_stages(self) -> bool:
        return self.two_stage

    def sample_settings(self) -> SampleSettings:
        return SampleSettings(
            occupancy_points=self.config.data.occupancy_points,
            image_size=self.config.model.input_size,
            voxels=self.two_stage,
            mirror=self.config.data.mirror,
            colour_jitter=self.config.data.colour_jitter,
            photo_views=self.config.data.photo_views,
            viewer_frame=self.viewer_frame,
        )

    @property
    def viewer_frame(self) -> bool:
        """Whether shapes are reconstructed in the picture's viewer-centred frame."""
        return self.config.model.local_features > 0

    def build_model(self, pretrained: bool = False) -> nn.Module:
        return build_implicit_network(self.config.model, self.two_stage, pretrained)

    def cacheable_backbone(self, network: nn.Module) -> tuple[nn.Module, int]:
        encoder = getattr(network, "encoder", None)
        if not isinstance(encoder, PretrainedEncoder):
            raise ConfigError("config.data.cache_backbone: needs the efficientnet-lite0 encoder")

        def frozen(name: str, stage) -> bool:
            return any(name == f or name.startswith(f + ".") for f in stage.frozen)

        backbone, reach = encoder.backbone, 0
        for stride in CACHEABLE_STRIDES:
            names = [f"encoder.backbone.{n}" for n in backbone.early_layers(stride)]
            if all(frozen(n, stage) for n in names for stage in self.config.stages):
                reach = stride
        if not reach:
            raise ConfigError(
                "config.data.cache_backbone: every stage must freeze the backbone's early "
                "layers, at least to stride 2 (stages.N.frozen)"
            )
        return backbone, reach

    def generator(self, model, device, path, info) -> ImplicitGenerator:
        return ImplicitGenerator(self, model, device, path, info)

    def losses(self, model, batch, weights):
        terms = {}
        if weights.get("elevation", 0.0) and not self.viewer_frame:
            raise ValueError("the elevation term needs pixel-aligned features (local_features)")
        if self.viewer_frame:
            cached = cached_maps(batch)
            logits, elevation = model(
                batch["image"], batch["points"], task="aligned", cached=cached
            )
            terms["occupancy"] = F.binary_cross_entropy_with_logits(logits, batch["occupancy"])
            terms["elevation"] = F.l1_loss(elevation, batch["elevation"])
            return terms
        if weights.get("occupancy", 0.0):
            logits = model(batch["image"], batch["points"], cached=cached_maps(batch))
            terms["occupancy"] = F.binary_cross_entropy_with_logits(logits, batch["occupancy"])
        if weights.get("autoencoder", 0.0):
            logits = model(None, batch["points"], batch["voxels"], task="autoencoder")
            terms["autoencoder"] = F.binary_cross_entropy_with_logits(logits, batch["occupancy"])
        if weights.get("latent", 0.0):
            predicted, target = model(batch["image"], None, batch["voxels"], task="latent")
            terms["latent"] = F.mse_loss(predicted, target)
        return terms

    def preview(self, model, batch) -> np.ndarray:
        network = model.module if hasattr(model, "module") else model
        rows = []
        z = network.encode(batch["image"])
        for b in range(min(4, len(batch["image"]))):
            tiles = [rgba_image(batch["image"][b].cpu().numpy())]
            code = _one(z, b)
            transform = batch["view_transform"][b] if "view_transform" in batch else None
            for view in (0, 4):
                ext = batch["fixed_extrinsics"][b, view].cpu().numpy()
                depth = occupancy_depth(network, code, ext, view_transform=transform)
                tiles.append(depth_image(depth))
                tiles.append(depth_image(batch["fixed_depth"][b, view].cpu().numpy()))
            rows.append(hstack(tiles))
        return np.concatenate(rows, axis=0)


class ImplicitGenerator(Generator):
    """Picture -> latent code (pixel-aligned models: and the feature map and the camera's
    elevation) -> occupancy field -> coarse-to-fine marching cubes at any resolution."""

    fits_silhouette = True

    def encode(self, image: torch.Tensor) -> Encoded:
        code = self.model.encode(image)
        if isinstance(code, PixelCode):
            elevation = float(code.elevation[0])
            return Encoded("implicit", code.latent, features=code.features, elevation=elevation)
        return Encoded("implicit", latent=code)

    def field(self, encoded: Encoded):
        """Occupancy logits of points (N, 3) (viewer-centred points for a pixel-aligned
        model)."""
        field = latent_field(self.model.decoder, encoded.latent.to(self.device))
        if encoded.features is None:
            return field
        features = encoded.features.to(self.device)
        return lambda points: field(points, sample_features(features, points[None])[0])

    def mesh(self, encoded: Encoded, resolution: int, iso: float, lower_iso: bool, options):
        """The iso level's mesh; with ``lower_iso``, when nothing reaches ``iso``, the mesh
        at `LOWERED_ISO_SHARE` of the field's highest occupancy, said in one log line."""
        if not torch.isfinite(encoded.latent).all():
            raise ExtractionError("the latent code is not finite")
        try:
            return self._extract(encoded, resolution, iso, options.symmetric)
        except EmptyFieldError as exc:
            level = math.floor(100.0 * LOWERED_ISO_SHARE * exc.highest) / 100.0
            if not lower_iso or level < LOWERED_ISO_FLOOR or level >= iso:
                raise
            log.warning(
                "nothing reaches the iso level %g (highest occupancy %.2f); "
                "extracting at %g instead",
                iso,
                exc.highest,
                level,
            )
            return self._extract(encoded, resolution, level, options.symmetric)

    def _extract(self, encoded: Encoded, resolution: int, iso: float, symmetric: bool):
        if symmetric and encoded.features is not None:
            raise ValueError(
                f"{self.path}: mirror-symmetric results need a model that reconstructs in "
                "the object's own frame; this one reconstructs as the picture shows the object"
            )
        batch = default_batch(self.device)
        while True:
            try:
                return extract_mesh(
                    self.field(encoded),
                    resolution,
                    iso,
                    batch=batch,
                    device=self.device,
                    symmetric=symmetric,
                )
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if batch > CPU_BATCH:
                    batch //= 8
                    log.warning("GPU out of memory; evaluating in chunks of %d points", batch)
                else:
                    self.to_cpu("GPU out of memory even in small chunks")
