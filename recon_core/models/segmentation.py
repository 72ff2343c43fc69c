"""U^2-Net's small variant, u2netp (Qin et al., Pattern Recognition 2020): salient-object
segmentation, the object's mask from any background. nn.Modules only.

The layout is the paper's: nested U-shaped residual blocks (RSU), six encoder and five
decoder stages, a side output per stage fused by a 1x1 convolution. Each convolution carries
its batch normalisation folded into its bias, as the released ONNX export has it, which is
where the shipped weights come from (`training.tools.convert_segmentation`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["U2NetP", "SEGMENTATION_SIZE", "IMAGENET_MEAN", "IMAGENET_STD"]

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
