"""IM-NET style networks: a ResNet image encoder and occupancy decoders (nn.Modules only)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ResNetEncoder", "IMNetDecoder", "ResidualDecoder", "ImplicitNetwork"]


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
    conditioned on z by FiLM (per-block scale and shift) or by concatenation.

    (z (B, Z), points (B, P, 3)) -> occupancy logits (B, P)."""

    def __init__(
        self, latent_dim: int = 256, hidden: int = 256, blocks: int = 4, conditioning: str = "film"
    ):
        super().__init__()
        self.conditioning = conditioning
        self.lift = nn.Linear(3, hidden)
        self.cond = nn.ModuleList(
            nn.Linear(latent_dim, 2 * hidden if conditioning == "film" else hidden)
            for _ in range(blocks)
        )
        self.fc1 = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(blocks))
        self.fc2 = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(blocks))
        self.out = nn.Linear(hidden, 1)
        for layer in self.cond:  # start as the identity modulation
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, z: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        h = self.lift(points)
        for cond, fc1, fc2 in zip(self.cond, self.fc1, self.fc2, strict=True):
            c = cond(z)[:, None, :]
            if self.conditioning == "film":
                scale, shift = c.chunk(2, dim=-1)
                x = h * (1.0 + scale) + shift
            else:
                x = h + c
            h = h + fc2(F.relu(fc1(F.relu(x))))
        return self.out(F.relu(h)).squeeze(-1)


class ImplicitNetwork(nn.Module):
    """Encoder and decoder together: ``encode(image) -> z``, ``decode(z, points) -> logits``."""

    def __init__(self, encoder: ResNetEncoder, decoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return self.encoder(image)

    def decode(self, z: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return self.decoder(z, points)

    def forward(self, image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(image), points)
