"""The backbone cache: stored early maps give the same training step as the pictures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from recon_core.config import ConfigError, validate
from recon_core.data import DatasetError, PreparedDataset
from recon_core.engine import _freeze, _train_mode
from recon_core.feature_cache import BackboneCache, CacheError, cached_maps
from recon_core.methods import METHODS
from recon_core.models.backbone import picture_input
from training import presets, train


def _aligned(cached: bool):
    config = presets.preset("implicit-aligned-cached" if cached else "implicit-aligned")
    config.model.input_size = 64
    config.data.occupancy_points = 256
    config.stages[0].frozen = list(presets.STRIDE16_BACKBONE)
    config.data.cache_backbone = cached
    return config


def test_early_features_resume_where_the_cache_stops():
    from recon_core.models.backbone import EfficientNetLite0

    torch.manual_seed(0)
    backbone = EfficientNetLite0(classes=0).eval()
    image = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        maps, head = backbone.features(image)
        for stride in (2, 4, 8, 16):
            early = backbone.early_features(image, stride)
            assert sorted(early) == [s for s in (2, 4, 8, 16) if s <= stride]
            resumed, resumed_head = backbone.features(None, early)
            assert sorted(resumed) == sorted(maps)
            for s in maps:
                assert torch.allclose(resumed[s], maps[s], atol=1e-5)
            assert torch.allclose(resumed_head, head, atol=1e-5)
    assert backbone.early_layers(8) == ["stem", "stem_bn", *(f"blocks.{k}" for k in range(5))]
    with pytest.raises(ValueError, match="stride must be one of"):
        backbone.early_features(image, 32)


def test_a_cached_step_matches_the_step_on_the_pictures(tiny_dataset, tmp_path):
    """Same loss terms and the same gradients of every trained parameter, from the stored
    maps as from the pictures (the frozen layers in inference mode either way)."""
    config = _aligned(cached=True)
    method = METHODS["implicit"](config)
    torch.manual_seed(0)
    network = method.build_model(pretrained=True)
    _freeze(network, config.stages[0])
    _train_mode(network, network, config.stages[0])
    plain = PreparedDataset(tiny_dataset, "train", "implicit", method.sample_settings())
    backbone, stride = method.cacheable_backbone(network)
    assert stride == 16
    cache = BackboneCache.open_or_build(tmp_path / "cache", plain, backbone, stride)
    cached = PreparedDataset(tiny_dataset, "train", "implicit", method.sample_settings())
    cached.use_backbone_cache(cache)

    # the stored maps are those of the render the sample drew
    sample = cached[1, 3]
    with torch.no_grad():
        early = backbone.early_features(picture_input(sample["image"][None]), stride)
    for s, m in early.items():
        stored = sample[f"backbone_s{s}"]
        assert torch.allclose(stored, m[0], atol=1e-4 * float(m.abs().max()))

    draws = [(i, 5) for i in range(len(plain))]
    collate = torch.utils.data.default_collate
    results = []
    for dataset in (plain, cached):
        batch = collate([dataset[key] for key in draws])
        assert (cached_maps(batch) is not None) == (dataset is cached)
        network.zero_grad(set_to_none=True)
        terms = method.losses(network, batch, config.stages[0].losses)
        sum(terms.values()).backward()
        grads = {n: p.grad.clone() for n, p in network.named_parameters() if p.grad is not None}
        results.append(({k: float(v) for k, v in terms.items()}, grads))
    (terms_a, grads_a), (terms_b, grads_b) = results
    for k in terms_a:
        assert terms_b[k] == pytest.approx(terms_a[k], rel=1e-5)
    assert sorted(grads_a) == sorted(grads_b)
    assert not any(n.startswith("encoder.backbone.blocks.10.") for n in grads_a)
    assert any(n.startswith("encoder.backbone.blocks.11.") for n in grads_a)
    for name in grads_a:
        a, b = grads_a[name], grads_b[name]
        assert torch.linalg.norm(a - b) <= 1e-3 * torch.linalg.norm(a) + 1e-7, name


def test_the_cache_is_reused_only_for_its_records_and_weights(tiny_dataset, tmp_path):
    config = _aligned(cached=True)
    method = METHODS["implicit"](config)
    network = method.build_model()
    dataset = PreparedDataset(tiny_dataset, "train", "implicit", method.sample_settings())
    backbone, stride = method.cacheable_backbone(network)
    cache = BackboneCache.open_or_build(tmp_path / "c", dataset, backbone, stride)
    stamp = (tmp_path / "c" / "stride16.npy").stat().st_mtime_ns
    again = BackboneCache.open_or_build(tmp_path / "c", dataset, backbone, stride)
    assert (tmp_path / "c" / "stride16.npy").stat().st_mtime_ns == stamp
    assert again.meta == cache.meta
    with torch.no_grad():
        backbone.blocks[3].project.weight.mul_(1.5)
    rebuilt = BackboneCache.open_or_build(tmp_path / "c", dataset, backbone, stride)
    assert rebuilt.meta["weights"] != cache.meta["weights"]
    assert not list((tmp_path / "c").glob("*.part"))

    fewer = PreparedDataset(tiny_dataset, "train", "implicit", method.sample_settings())
    fewer.records = fewer.records[:-1]
    with pytest.raises(CacheError, match="cached for other records"):
        fewer.use_backbone_cache(rebuilt)
    with pytest.raises(CacheError, match="not a backbone cache"):
        BackboneCache(tmp_path / "nothing")
    mirrored = PreparedDataset(
        tiny_dataset, "train", "implicit", method.sample_settings().__class__(mirror=0.5)
    )
    with pytest.raises(DatasetError, match="no picture augmentation"):
        mirrored.use_backbone_cache(rebuilt)


def test_what_cannot_be_cached_is_refused_in_one_line():
    config = _aligned(cached=True)
    config.data.mirror = 0.5
    with pytest.raises(ConfigError, match="photo_views change the pictures"):
        validate(config)
    config = _aligned(cached=True)
    config.stages[0].frozen = ["encoder.backbone.blocks.3"]  # not the stem: nothing cacheable
    method = METHODS["implicit"](config)
    with pytest.raises(ConfigError, match="must freeze the backbone's early layers"):
        method.cacheable_backbone(method.build_model())
    config = presets.preset("implicit-smoke")
    config.data.cache_backbone = True
    method = METHODS["implicit"](config)
    with pytest.raises(ConfigError, match="needs the efficientnet-lite0 encoder"):
        method.cacheable_backbone(method.build_model())
    config = presets.preset("pointcloud-smoke")
    method = METHODS["pointcloud"](config)
    with pytest.raises(ConfigError, match="the pointcloud method has none"):
        method.cacheable_backbone(method.build_model())


def test_training_with_the_cache_builds_it_once_and_resumes_from_it(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    argv = [
        "--method",
        "implicit",
        "--preset",
        "implicit-aligned-cached",
        "--data",
        str(tiny_dataset),
        "--out",
        str(run),
        "--no-progress",
        "--set",
        "model.input_size=64",
        "--set",
        "data.batch_size=2",
        "--set",
        "data.workers=0",
        "--set",
        "data.occupancy_points=128",
        "--set",
        "checkpoint_every=2",
        "--set",
        "stages.0.steps=3",
    ]
    assert train.main(argv) == 0
    meta = json.loads((run / "backbone-cache" / "meta.json").read_text())
    assert meta["strides"] == [2, 4, 8, 16] and meta["input_size"] == 64
    maps = np.load(run / "backbone-cache" / "stride8.npy", mmap_mode="r")
    assert maps.dtype == np.float32 and maps.shape[:2] == (len(meta["records"]), meta["views"])
    assert np.isfinite(maps).all() and np.abs(maps).max() > 0
    stamp = (run / "backbone-cache" / "stride8.npy").stat().st_mtime_ns
    longer = [a if a != "stages.0.steps=3" else "stages.0.steps=5" for a in argv]
    assert train.main([*longer, "--resume"]) == 0
    assert (run / "backbone-cache" / "stride8.npy").stat().st_mtime_ns == stamp
