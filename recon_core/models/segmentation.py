"""Salient-object segmentation, the object's mask from any background. nn.Modules only.

Two networks read the same input (`recon_core.segmentation.segmentation_input`) and give
the same output, a fused logit and the side logits it is made from:

- `U2NetP`, U^2-Net's small variant (Qin et al., Pattern Recognition 2020), as released;
- `LiteUNet`, the ImageNet-trained EfficientNet-Lite0 (`recon_core.models.backbone`) as a
  U-Net's encoder, with a light decoder trained on photo-like pictures.

U2NetP's layout is the paper's: nested U-shaped residual blocks (RSU), six encoder and five
decoder stages, a side output per stage fused by a 1x1 convolution. Each convolution carries
its batch normalisation folded into its bias, as the released ONNX export has it, which is
where the shipped weights come from (`training.tools.convert_segmentation`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "U2NetP",
    "LiteUNet",
    "NETWORKS",
    "supervision_loss",
    "SEGMENTATION_SIZE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

SEGMENTATION_SIZE = 320
"""Side of the square picture the network reads."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _Conv(nn.Module):
    """3x3 convolution (dilated by ``rate``) and ReLU; batch norm folded into the bias."""

    def __init__(self, cin: int, cout: int, rate: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=rate, dilation=rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class _RSU(nn.Module):
    """Residual U-block of ``depth`` levels (RSU-7 ... RSU-4): an input convolution, a small
    U-Net on its output (max pooling down, bilinear upsampling up, a dilated convolution at
    the bottom), and the two added."""

    def __init__(self, depth: int, cin: int, mid: int, cout: int):
        super().__init__()
        self.inp = _Conv(cin, cout)
        self.down = nn.ModuleList([_Conv(cout, mid)] + [_Conv(mid, mid) for _ in range(depth - 2)])
        self.bottom = _Conv(mid, mid, 2)
        self.up = nn.ModuleList(
            [_Conv(2 * mid, mid) for _ in range(depth - 2)] + [_Conv(2 * mid, cout)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start = self.inp(x)
        skips, h = [], start
        for k, conv in enumerate(self.down):
            if k:
                h = F.max_pool2d(h, 2, 2, ceil_mode=True)
            h = conv(h)
            skips.append(h)
        h = self.bottom(h)
        for k, conv in enumerate(self.up):
            skip = skips[-1 - k]
            if k:
                h = _up(h, skip)
            h = conv(torch.cat([h, skip], dim=1))
        return h + start


class _RSU4F(nn.Module):
    """RSU-4F: the residual U-block without pooling, dilation 1, 2, 4, 8 instead."""

    def __init__(self, cin: int, mid: int, cout: int):
        super().__init__()
        self.inp = _Conv(cin, cout)
        self.down = nn.ModuleList([_Conv(cout, mid, 1), _Conv(mid, mid, 2), _Conv(mid, mid, 4)])
        self.bottom = _Conv(mid, mid, 8)
        self.up = nn.ModuleList(
            [_Conv(2 * mid, mid, 4), _Conv(2 * mid, mid, 2), _Conv(2 * mid, cout, 1)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start = self.inp(x)
        skips, h = [], start
        for conv in self.down:
            h = conv(h)
            skips.append(h)
        h = self.bottom(h)
        for k, conv in enumerate(self.up):
            h = conv(torch.cat([h, skips[-1 - k]], dim=1))
        return h + start


class U2NetP(nn.Module):
    """image: (B, 3, H, W) normalised with `IMAGENET_MEAN` / `IMAGENET_STD` -> the fused
    saliency probability (B, 1, H, W)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.ModuleList(
            [
                _RSU(7, 3, 16, 64),
                _RSU(6, 64, 16, 64),
                _RSU(5, 64, 16, 64),
                _RSU(4, 64, 16, 64),
                _RSU4F(64, 16, 64),
                _RSU4F(64, 16, 64),
            ]
        )
        self.decoder = nn.ModuleList(
            [
                _RSU4F(128, 16, 64),
                _RSU(4, 128, 16, 64),
                _RSU(5, 128, 16, 64),
                _RSU(6, 128, 16, 64),
                _RSU(7, 128, 16, 64),
            ]
        )
        self.sides = nn.ModuleList(nn.Conv2d(64, 1, 3, padding=1) for _ in range(6))
        self.fuse = nn.Conv2d(6, 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(image)[0])

    def logits(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The fused logit (B, 1, H, W) and the six side logits it fuses (finest first),
        which U^2-Net's training supervises too."""
        stages, h = [], image
        for k, stage in enumerate(self.encoder):
            if k:
                h = F.max_pool2d(h, 2, 2, ceil_mode=True)
            h = stage(h)
            stages.append(h)
        decoded = [h]  # the deepest stage's output is its own side
        for k, stage in enumerate(self.decoder):
            skip = stages[-2 - k]
            h = stage(torch.cat([_up(h, skip), skip], dim=1))
            decoded.append(h)
        decoded = decoded[::-1]  # finest first: side 1 ... side 6
        first = self.sides[0](decoded[0])
        sides = [first] + [
            _up(side(d), first) for side, d in zip(self.sides[1:], decoded[1:], strict=True)
        ]
        return self.fuse(torch.cat(sides, dim=1)), sides


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class _Merge(nn.Module):
    """A decoder stage: the coarser map upsampled to the skip's size, the two concatenated,
    two 3x3 convolutions."""

    def __init__(self, cin: int, skip: int, cout: int):
        super().__init__()
        self.convs = nn.Sequential(_conv_bn_relu(cin + skip, cout), _conv_bn_relu(cout, cout))

    def forward(self, h: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.convs(torch.cat([_up(h, skip), skip], dim=1))


class LiteUNet(nn.Module):
    """EfficientNet-Lite0's feature maps at strides 32, 16, 8, 4 and 2 merged back up as in a
    U-Net (Ronneberger et al., 2015), and a last stage at the picture's own resolution that
    sees its colours, for thin parts. A side logit at each decoder stage is supervised in
    training as U^2-Net's are.

    image: (B, 3, H, W) normalised with `IMAGENET_MEAN` / `IMAGENET_STD`, as `U2NetP` reads
    it (the Lite backbone's own normalisation is applied inside) -> the probability (B, 1,
    H, W). The backbone's batch-norm statistics stay ImageNet's in training (`train`)."""

    WIDTHS = (128, 96, 64, 32, 16)
    """Channels of the decoder after strides 32, 16, 8, 4 and 2."""

    def __init__(self, pretrained: bool = False):
        super().__init__()
        from recon_core.models.backbone import (
            FEATURE_CHANNELS,
            EfficientNetLite0,
            load_imagenet_weights,
        )

        self.backbone = EfficientNetLite0(classes=0)
        if pretrained:
            load_imagenet_weights(self.backbone)
        w32, w16, w8, w4, w2 = self.WIDTHS
        self.reduce = _conv_bn_relu(FEATURE_CHANNELS[32], w32)
        self.merges = nn.ModuleList(
            [
                _Merge(w32, FEATURE_CHANNELS[16], w16),
                _Merge(w16, FEATURE_CHANNELS[8], w8),
                _Merge(w8, FEATURE_CHANNELS[4], w4),
                _Merge(w4, FEATURE_CHANNELS[2], w2),
            ]
        )
        self.full = nn.Sequential(_conv_bn_relu(w2 + 3, 8), nn.Conv2d(8, 1, 3, padding=1))
        self.sides = nn.ModuleList(nn.Conv2d(w, 1, 1) for w in (w16, w8, w4, w2))
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        # normalised -> [0, 1] -> the Lite models' (255 x - 127) / 128, as one affine map
        self.register_buffer("_scale", std * 255.0 / 128.0, persistent=False)
        self.register_buffer("_shift", (mean * 255.0 - 127.0) / 128.0, persistent=False)

    def train(self, mode: bool = True) -> LiteUNet:
        super().train(mode)
        for module in self.backbone.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(image)[0])

    def logits(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The fused logit (B, 1, H, W) and the decoder's side logits (finest first), each
        upsampled to the picture's size."""
        maps, _ = self.backbone.features(image * self._scale + self._shift, head=False)
        h = self.reduce(maps[32])
        sides = []
        for stride, merge, side in zip((16, 8, 4, 2), self.merges, self.sides, strict=True):
            h = merge(h, maps[stride])
            sides.append(side(h))
        fused = self.full(torch.cat([_up(h, image), image], dim=1)) + _up(sides[-1], image)
        return fused, [_up(s, image) for s in sides[::-1]]


NETWORKS = {"u2netp": U2NetP, "lite0-unet": LiteUNet}
"""The segmentation networks by the name a weights file's metadata gives (``architecture``;
files without one are u2netp's)."""


def supervision_loss(
    fused: torch.Tensor, sides: list[torch.Tensor], target: torch.Tensor
) -> torch.Tensor:
    """U^2-Net's deep-supervision loss, which both networks train with: binary cross-entropy
    of the fused logit and of each side logit (as `logits` gives them) against the truth
    (B, 1, H, W) in {0, 1}."""
    return sum(F.binary_cross_entropy_with_logits(x, target) for x in [fused, *sides])
