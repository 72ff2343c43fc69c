"""The named training presets: the methods' defaults, small ones for smoke tests and CPU
checks, the bundled models' schedules, and variants. Built from the typed configs of
`recon_core.config`."""

from __future__ import annotations

import copy

from recon_core.config import (
    ConfigError,
    DataConfig,
    ImplicitModelConfig,
    OptimConfig,
    PointCloudModelConfig,
    StageConfig,
    TrainConfig,
    validate,
)

__all__ = [
    "PRESETS",
    "preset",
    "JOINT_LOSSES",
    "IMNET_STAGES",
    "EARLY_BACKBONE",
    "STRIDE16_BACKBONE",
]

JOINT_LOSSES = {"fixed_xyz": 1.0, "fixed_mask": 1.0, "novel_depth": 1.0, "novel_mask": 1.0}
"""The point-cloud method's second stage: the pseudo-rendered novel views together with the
fixed views. Without the fixed-view terms, the masks of points that land inside a novel
silhouette drift on, wherever they are (docs/experiments.md, "Defaults chosen by
measurement")."""


def _frozen_batchnorm_stage(steps: int, lr_scale: float) -> StageConfig:
    """The joint losses once more, with BatchNorm in inference mode (see
    `StageConfig.frozen_batchnorm`): the statistics of single pictures at inference stop
    differing from the batches' (docs/experiments.md, "Defaults chosen by measurement")."""
    return StageConfig("joint, frozen BatchNorm", steps, dict(JOINT_LOSSES), lr_scale, True)


def _pointcloud() -> TrainConfig:
    return TrainConfig(
        method="pointcloud",
        model=PointCloudModelConfig(),
        data=DataConfig(batch_size=20, novel_views=5),
        optim=OptimConfig(lr=1e-4, warmup_steps=200),
        stages=[
            StageConfig("fixed views", 20_000, {"fixed_xyz": 1.0, "fixed_mask": 1.0}),
            StageConfig("joint", 80_000, JOINT_LOSSES, lr_scale=0.5),
        ],
    )


def _pointcloud_smoke() -> TrainConfig:
    config = _pointcloud()
    config.model = PointCloudModelConfig(
        encoder_channels=(16, 32, 48, 64),
        encoder_fc=(256, 128),
        decoder_fc=(256, 4096),
        decoder_channels=(64, 48, 32, 24, 16),
    )
    config.data = DataConfig(batch_size=4, workers=0, novel_views=2)
    config.optim = OptimConfig(lr=1e-3, warmup_steps=10)
    config.stages = [
        StageConfig("fixed views", 150, {"fixed_xyz": 1.0, "fixed_mask": 1.0}),
        StageConfig("joint", 150, JOINT_LOSSES),
        _frozen_batchnorm_stage(30, 0.5),
    ]
    config.log_every, config.preview_every, config.checkpoint_every = 10, 0, 100
    return config


def _implicit() -> TrainConfig:
    return TrainConfig(
        method="implicit",
        model=ImplicitModelConfig(),
        data=DataConfig(batch_size=16, occupancy_points=2048),
        optim=OptimConfig(lr=3e-4, warmup_steps=200),
        stages=[StageConfig("occupancy", 100_000, {"occupancy": 1.0})],
    )


IMNET_STAGES = (("shape autoencoder", {"autoencoder": 1.0}), ("image to code", {"latent": 1.0}))
"""IM-NET's two-stage route: a shape autoencoder (64^3 voxel grid -> code -> occupancy),
then the image encoder regressing the frozen autoencoder's codes (L2)."""


def _implicit_imnet() -> TrainConfig:
    """IM-NET as published: its decoder (1024-512-256-128, z and xyz at every layer) and its
    two-stage training."""
    config = _implicit()
    config.model = ImplicitModelConfig(
        decoder="imnet", decoder_hidden=(1024, 512, 256, 128), conditioning="concat"
    )
    config.stages = [StageConfig(name, 50_000, dict(losses)) for name, losses in IMNET_STAGES]
    return config


def _implicit_imnet_smoke() -> TrainConfig:
    config = _implicit_smoke()
    config.model.decoder, config.model.decoder_hidden = "imnet", (64, 32)
    config.stages = [StageConfig(name, 150, dict(losses)) for name, losses in IMNET_STAGES]
    return config


def _implicit_smoke() -> TrainConfig:
    config = _implicit()
    config.model = ImplicitModelConfig(
        input_size=64, latent_dim=64, encoder_width=8, decoder_hidden=(64,), decoder_blocks=2
    )
    config.data = DataConfig(batch_size=4, workers=0, occupancy_points=1024)
    config.optim = OptimConfig(lr=1e-3, warmup_steps=10)
    config.stages = [StageConfig("occupancy", 300, {"occupancy": 1.0})]
    config.log_every, config.preview_every, config.checkpoint_every = 10, 0, 100
    return config


def _implicit_bundled() -> TrainConfig:
    """The model shipped with the add-on: the default networks, trained for what a 2-core
    CPU does in about two hours beside the point-cloud model (longer on a GPU: raise
    ``stages.0.steps``)."""
    config = _implicit()
    config.data = DataConfig(batch_size=16, workers=1, occupancy_points=2048)
    config.optim = OptimConfig(lr=5e-4, warmup_steps=100)
    config.stages = [StageConfig("occupancy", 7000, {"occupancy": 1.0})]
    config.preview_every, config.checkpoint_every = 0, 250
    return config


def _implicit_pretrained() -> TrainConfig:
    """The bundled schedule with the EfficientNet-Lite0 encoder, fine-tuned from ImageNet."""
    config = _implicit_bundled()
    config.model.encoder = "efficientnet-lite0"
    config.optim = OptimConfig(lr=3e-4, warmup_steps=200)
    return config


EARLY_BACKBONE = [
    "encoder.backbone.stem",
    "encoder.backbone.stem_bn",
    *(f"encoder.backbone.blocks.{k}" for k in range(5)),
]
"""EfficientNet-Lite0's layers up to stride 8: generic edges and textures that ImageNet
taught well, and at the highest resolutions the most costly to train."""


def _implicit_aligned() -> TrainConfig:
    """The pretrained encoder with pixel-aligned features, in the viewer-centred frame; the
    backbone's early layers keep their ImageNet weights."""
    config = _implicit_pretrained()
    config.model.local_features = 64
    config.stages = [
        StageConfig(
            "occupancy",
            7000,
            {"occupancy": 1.0, "elevation": 1.0},
            frozen=list(EARLY_BACKBONE),
        )
    ]
    return config


STRIDE16_BACKBONE = [*EARLY_BACKBONE, *(f"encoder.backbone.blocks.{k}" for k in range(5, 11))]
"""EfficientNet-Lite0's layers up to stride 16: all that make the pixel-aligned features."""


def _implicit_aligned_cached() -> TrainConfig:
    """The pixel-aligned model with the backbone frozen up to stride 16 and its maps cached
    per render (``data.cache_backbone``): only the stride-32 stage, the heads and the
    decoder train, at several times the samples per second."""
    config = _implicit_aligned()
    config.data.cache_backbone = True
    for stage in config.stages:
        stage.frozen = list(STRIDE16_BACKBONE)
    return config


def _pointcloud_bundled() -> TrainConfig:
    """The point-cloud model shipped with the add-on: the paper's layout at reduced widths
    (the paper's fully connected layers alone would exceed the 25 MB bundle budget in fp16
    and its step is too slow for a CPU), 64x64 input, 8 fixed views at 128x128."""
    config = _pointcloud()
    config.model = PointCloudModelConfig(
        encoder_channels=(32, 64, 96, 128),
        encoder_fc=(1024, 256),
        decoder_fc=(1024, 4096),
        decoder_channels=(128, 96, 64, 48, 32),
    )
    config.data = DataConfig(batch_size=8, workers=1, novel_views=3)
    config.optim = OptimConfig(lr=5e-4, warmup_steps=100)
    config.stages = [
        StageConfig("fixed views", 2000, {"fixed_xyz": 1.0, "fixed_mask": 1.0}),
        StageConfig("joint", 3000, JOINT_LOSSES, lr_scale=0.5),
    ]
    config.preview_every, config.checkpoint_every = 0, 250
    return config


def _pointcloud_pretrained() -> TrainConfig:
    """The bundled layout with EfficientNet-Lite0 from ImageNet as the structure generator's
    encoder, reading 128-pixel pictures; its layers to stride 8 keep their ImageNet
    weights."""
    config = _pointcloud_bundled()
    config.model.encoder = "efficientnet-lite0"
    config.model.input_size = 128
    early = [name.removeprefix("encoder.") for name in EARLY_BACKBONE]
    for stage in config.stages:
        stage.frozen = list(early)
    return config


PRESETS = {
    "pointcloud": _pointcloud,
    "pointcloud-smoke": _pointcloud_smoke,
    "implicit": _implicit,
    "implicit-imnet": _implicit_imnet,
    "implicit-smoke": _implicit_smoke,
    "implicit-imnet-smoke": _implicit_imnet_smoke,
    "implicit-bundled": _implicit_bundled,
    "implicit-pretrained": _implicit_pretrained,
    "implicit-aligned": _implicit_aligned,
    "implicit-aligned-cached": _implicit_aligned_cached,
    "pointcloud-bundled": _pointcloud_bundled,
    "pointcloud-pretrained": _pointcloud_pretrained,
}
"""Named configurations: the method's default, a small one for smoke tests and CPU checks,
and variants."""


def preset(name: str) -> TrainConfig:
    """A fresh copy of a named preset."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    config = copy.deepcopy(PRESETS[name]())
    validate(config)
    return config
