"""IM-NET style networks: a ResNet image encoder and occupancy decoders (nn.Modules only)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from recon_core.models.backbone import (
    FEATURE_CHANNELS,
    EfficientNetLite0,
    load_imagenet_weights,
    picture_input,
)
from recon_core.viewframe import image_coordinates

__all__ = [
    "ResNetEncoder",
    "PretrainedEncoder",
    "PixelCode",
    "sample_features",
    "VoxelEncoder",
    "IMNetDecoder",
    "ResidualDecoder",
    "ImplicitNetwork",
]


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = None
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.skip is None else self.skip(x)))


class ResNetEncoder(nn.Module):
    """ResNet-18 layout (four stages of two basic blocks) at ``width`` base channels.

    image: (B, 4, H, W) RGBA in [0, 1] -> latent code (B, latent_dim)."""

    def __init__(self, latent_dim: int = 256, width: int = 32, in_channels: int = 4):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        widths = [width, 2 * width, 4 * width, 8 * width]
        layers, cin = [], width
        for k, cout in enumerate(widths):
            stride = 1 if k == 0 else 2
            layers += [_BasicBlock(cin, cout, stride), _BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, latent_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.blocks(self.stem(image * 2.0 - 1.0))
        return self.fc(features.mean(dim=(2, 3)))


class PixelCode(NamedTuple):
    """What a pixel-aligned encoder makes of a picture: the global code, a feature map aligned
    with the framed picture, and the camera's elevation it estimates."""

    latent: torch.Tensor
    """(B, Z) global shape code."""
    features: torch.Tensor
    """(B, C, H/2, W/2) pixel-aligned features of the framed picture."""
    elevation: torch.Tensor
    """(B,) the camera's elevation above the object, radians."""


_LOCAL_STRIDES = (2, 4, 8, 16)
"""Backbone feature maps fused into the pixel-aligned features, finest first."""


class PretrainedEncoder(nn.Module):
    """EfficientNet-Lite0 with ImageNet weights (`recon_core.models.backbone`), its pooled
    head features mapped to the latent code.

    The picture's colour is composited onto white, as product photos are, and fed to the
    backbone as it is, so that ImageNet's features hold from the first step (and early
    layers may stay frozen, with no gradients computed through them at all).

    With ``local_channels``, it also fuses the feature maps at strides 2 to 16 (upsampled to
    stride 2) and the object mask, by a 1x1 convolution, into pixel-aligned features, and
    estimates the camera's elevation from the pooled head features: it then returns a
    `PixelCode`.

    image: (B, 4, H, W) RGBA in [0, 1] -> latent code (B, latent_dim), or a `PixelCode`."""

    def __init__(self, latent_dim: int = 256, pretrained: bool = False, local_channels: int = 0):
        super().__init__()
        self.backbone = EfficientNetLite0(classes=0)
        if pretrained:
            load_imagenet_weights(self.backbone)
        self.fc = nn.Linear(1280, latent_dim)
        self.fuse = self.elevation = None
        if local_channels:
            fused = sum(FEATURE_CHANNELS[s] for s in _LOCAL_STRIDES) + 1
            self.fuse = nn.Conv2d(fused, local_channels, 1)
            self.elevation = nn.Linear(1280, 1)

    def forward(
        self, image: torch.Tensor, cached: dict[int, torch.Tensor] | None = None
    ) -> torch.Tensor | PixelCode:
        """``cached``: the backbone's early feature maps of these pictures
        (`EfficientNetLite0.early_features`), to skip the layers that make them."""
        alpha = image[:, 3:4]
        if cached:
            maps, head = self.backbone.features(None, cached)
        else:
            maps, head = self.backbone.features(picture_input(image))
        pooled = head.mean(dim=(2, 3))
        latent = self.fc(pooled)
        if self.fuse is None:
            return latent
        mask = F.interpolate(alpha, size=maps[_LOCAL_STRIDES[0]].shape[-2:], mode="area")
        features = self.fused(maps, mask)
        return PixelCode(latent, features, self.elevation(pooled)[:, 0])

    def fused(self, maps: dict[int, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """The 1x1 fusing convolution of the maps upsampled to stride 2 and of the mask
        (B, 1, H/2, W/2), computed as the sum of each map's share taken at its own stride,
        then upsampled: bilinear upsampling and the per-pixel linear map commute, so this is
        the same sum without the stacked full-size maps (`fused_reference`)."""
        shares = self.fuse.weight.split([*(FEATURE_CHANNELS[s] for s in _LOCAL_STRIDES), 1], 1)
        size = maps[_LOCAL_STRIDES[0]].shape[-2:]
        out = F.conv2d(maps[_LOCAL_STRIDES[0]], shares[0], self.fuse.bias)
        out = out + F.conv2d(mask * 2.0 - 1.0, shares[-1])
        for s, share in zip(_LOCAL_STRIDES[1:], shares[1:-1], strict=True):
            low = F.conv2d(maps[s], share)
            out = out + F.interpolate(low, size=size, mode="bilinear", align_corners=False)
        return out

    def fused_reference(self, maps: dict[int, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """`fused` as its definition: every map upsampled to stride 2, stacked with the
        mask, then the 1x1 convolution (slower; for tests)."""
        size = maps[_LOCAL_STRIDES[0]].shape[-2:]
        stacked = [
            F.interpolate(maps[s], size=size, mode="bilinear", align_corners=False)
            for s in _LOCAL_STRIDES
        ]
        return self.fuse(torch.cat([*stacked, mask * 2.0 - 1.0], dim=1))


def sample_features(features: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples (B, P, C) of feature maps (B, C, h, w) where viewer-frame points
    (B, P, 3) land in the framed picture (zero outside it)."""
    grid = image_coordinates(points)[:, :, None, :].to(features.dtype)
    sampled = F.grid_sample(features, grid, mode="bilinear", align_corners=False)
    return sampled[..., 0].transpose(1, 2)


class VoxelEncoder(nn.Module):
    """IM-NET's shape encoder for its two-stage route: four stride-2 4x4x4 convolutions
    (``width``, 2, 4 and 8 times ``width`` channels, instance norm, leaky ReLU) take the
    64^3 occupancy grid to 4^3, and a 4x4x4 convolution without padding to the code.

    voxels: (B, 1, 64, 64, 64) in {0, 1} -> latent code (B, latent_dim)."""

    def __init__(self, latent_dim: int = 256, width: int = 32):
        super().__init__()
        layers, cin = [], 1
        for cout in (width, 2 * width, 4 * width, 8 * width):
            layers += [
                nn.Conv3d(cin, cout, 4, 2, 1, bias=False),
                nn.InstanceNorm3d(cout, affine=True),
                nn.LeakyReLU(0.02, inplace=True),
            ]
            cin = cout
        self.blocks = nn.Sequential(*layers)
        self.out = nn.Conv3d(cin, latent_dim, 4)

    def forward(self, voxels: torch.Tensor) -> torch.Tensor:
        if voxels.shape[-3:] != (64, 64, 64):
            raise ValueError(f"the shape encoder takes 64^3 grids, got {tuple(voxels.shape)}")
        return self.out(self.blocks(voxels * 2.0 - 1.0)).flatten(1)


class IMNetDecoder(nn.Module):
    """IM-NET's decoder: every layer sees the previous output, z and the point, leaky ReLU.

    (z (B, Z), points (B, P, 3)) -> occupancy logits (B, P)."""

    def __init__(self, latent_dim: int = 256, hidden: tuple[int, ...] = (1024, 512, 256, 128)):
        super().__init__()
        layers, previous = [], 0
        for width in hidden:
            layers.append(nn.Linear(previous + latent_dim + 3, width))
            previous = width
        self.layers = nn.ModuleList(layers)
        self.out = nn.Linear(previous + latent_dim + 3, 1)

    def forward(self, z: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        condition = torch.cat([z[:, None, :].expand(-1, points.shape[1], -1), points], dim=-1)
        h = condition
        for layer in self.layers:
            h = F.leaky_relu(layer(h), 0.02)
            h = torch.cat([h, condition], dim=-1)
        return self.out(h).squeeze(-1)


class ResidualDecoder(nn.Module):
    """A lean residual MLP: the point lifted to ``hidden`` channels, then residual blocks
    ``h + fc2(relu(m(fc1(relu(h)))))`` where ``m`` conditions on z by FiLM (a per-block
    scale and shift) or by concatenation (a per-block shift, which is what concatenating z
    to the input of ``fc1`` amounts to).

    The conditioning acts on ``fc1``'s output, before any non-linearity, so for one fixed z
    it folds into ``fc1``'s weights: `specialize` returns a field over points alone whose
    per-point cost is the plain MLP's, which is what mesh extraction evaluates.

    (z (B, Z), points (B, P, 3)) -> occupancy logits (B, P)."""

    def __init__(
        self,
        latent_dim: int = 256,
        hidden: int = 256,
        blocks: int = 4,
        conditioning: str = "film",
        local_dim: int = 0,
    ):
        super().__init__()
        if conditioning not in ("film", "concat"):
            raise ValueError(f"conditioning must be film or concat, got {conditioning!r}")
        self.conditioning = conditioning
        self.lift = nn.Linear(3, hidden)
        self.cond = nn.ModuleList(
            nn.Linear(latent_dim, 2 * hidden if conditioning == "film" else hidden)
            for _ in range(blocks)
        )
        self.fc1 = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(blocks))
        self.fc2 = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(blocks))
        self.out = nn.Linear(hidden, 1)
        # pixel-aligned features: a shift of the lifted point and of each block's input
        self.local = nn.Linear(local_dim, hidden * (blocks + 1)) if local_dim else None
        for layer in self.cond:  # start as the identity modulation
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _modulation(self, cond: nn.Module, z: torch.Tensor):
        c = cond(z)
        if self.conditioning == "film":
            scale, shift = c.chunk(2, dim=-1)
            return 1.0 + scale, shift
        return torch.ones_like(c), c

    def forward(
        self, z: torch.Tensor, points: torch.Tensor, local: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``local``: (B, P, local_dim) pixel-aligned features of the points, when the
        decoder reads them."""
        h = self.lift(points)
        shifts = self._local_shifts(local)
        if shifts is not None:
            h = h + shifts[0]
        for k, (cond, fc1, fc2) in enumerate(zip(self.cond, self.fc1, self.fc2, strict=True)):
            scale, shift = self._modulation(cond, z)
            a = fc1(F.relu(h)) * scale[:, None, :] + shift[:, None, :]
            if shifts is not None:
                a = a + shifts[k + 1]
            h = h + fc2(F.relu(a))
        return self.out(F.relu(h)).squeeze(-1)

    def _local_shifts(self, local: torch.Tensor | None) -> tuple[torch.Tensor, ...] | None:
        if (self.local is None) != (local is None):
            raise ValueError("pixel-aligned features go with a decoder built for them")
        if local is None:
            return None
        return self.local(local).chunk(len(self.fc1) + 1, dim=-1)

    @torch.no_grad()
    def specialize(self, z: torch.Tensor):
        """The field of one code z (Z,) or (1, Z): points (N, 3) -> logits (N,), with the
        conditioning folded into the weights (same values as ``forward``, up to rounding)."""
        z = z.reshape(1, -1)
        layers = []
        for cond, fc1, fc2 in zip(self.cond, self.fc1, self.fc2, strict=True):
            scale, shift = self._modulation(cond, z)
            scale, shift = scale[0], shift[0]
            w1 = (fc1.weight * scale[:, None]).t().contiguous()
            b1 = fc1.bias * scale + shift
            layers.append((w1, b1, fc2.weight.t().contiguous(), fc2.bias))
        lift_w, lift_b = self.lift.weight.t().contiguous(), self.lift.bias
        out_w, out_b = self.out.weight.t().contiguous(), self.out.bias
        local_w = local_b = None
        if self.local is not None:
            local_w, local_b = self.local.weight.t().contiguous(), self.local.bias

        def field(points: torch.Tensor, local: torch.Tensor | None = None) -> torch.Tensor:
            """points (N, 3), and their pixel-aligned features (N, C) where the decoder
            reads them -> logits (N,)."""
            with torch.no_grad():
                h = torch.addmm(lift_b, points, lift_w)
                shifts = None
                if local_w is not None:
                    shifts = torch.addmm(local_b, local, local_w).chunk(len(layers) + 1, -1)
                    h += shifts[0]
                for k, (w1, b1, w2, b2) in enumerate(layers):
                    a = torch.addmm(b1, F.relu(h), w1)
                    if shifts is not None:
                        a += shifts[k + 1]
                    h = torch.addmm(h, a.relu_(), w2).add_(b2)
                return torch.addmm(out_b, h.relu_(), out_w).squeeze(-1)

        return field


class ImplicitNetwork(nn.Module):
    """Encoder and decoder together: ``encode(image) -> z``, ``decode(z, points) -> logits``.

    With a ``shape_encoder`` (IM-NET's two-stage route), ``forward`` also serves the two
    training stages: ``task="autoencoder"`` decodes the code of the voxel grid (the shape
    autoencoder), ``task="latent"`` returns the image's code beside the voxel grid's
    (detached), which the image encoder learns to regress. ``task="aligned"`` serves a
    pixel-aligned encoder: the logits of viewer-frame points and the estimated elevation.
    Every task goes through ``forward`` so that DistributedDataParallel sees it."""

    TASKS = ("occupancy", "aligned", "autoencoder", "latent")

    def __init__(
        self,
        encoder: ResNetEncoder | PretrainedEncoder,
        decoder: nn.Module,
        shape_encoder: VoxelEncoder | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.shape_encoder = shape_encoder

    def encode(
        self, image: torch.Tensor, cached: dict[int, torch.Tensor] | None = None
    ) -> torch.Tensor | PixelCode:
        """The pictures' codes; ``cached``: early backbone maps (pretrained encoders)."""
        if cached:
            return self.encoder(image, cached)
        return self.encoder(image)

    def decode(self, z: torch.Tensor | PixelCode, points: torch.Tensor) -> torch.Tensor:
        """Occupancy logits (B, P) of points (B, P, 3) for codes (B, Z) or a `PixelCode`
        (points then in the viewer-centred frame)."""
        if isinstance(z, PixelCode):
            return self.decoder(z.latent, points, sample_features(z.features, points))
        return self.decoder(z, points)

    def forward(
        self,
        image: torch.Tensor | None,
        points: torch.Tensor | None,
        voxels: torch.Tensor | None = None,
        task: str = "occupancy",
        cached: dict[int, torch.Tensor] | None = None,
    ):
        if task == "occupancy":
            return self.decode(self.encode(image, cached), points)
        if task == "aligned":
            code = self.encode(image, cached)
            if not isinstance(code, PixelCode):
                raise ValueError("the aligned task needs a pixel-aligned encoder")
            return self.decode(code, points), code.elevation
        if task not in self.TASKS:
            raise ValueError(f"task must be one of {self.TASKS}, got {task!r}")
        if self.shape_encoder is None or voxels is None:
            raise ValueError(f"the {task} task needs a shape encoder and voxels")
        if task == "autoencoder":
            return self.decode(self.shape_encoder(voxels), points)
        with torch.no_grad():
            target = self.shape_encoder(voxels)
        return self.encode(image), target
