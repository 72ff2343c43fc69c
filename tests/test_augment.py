"""Training-sample augmentation: the left-right mirror keeps every target consistent with the
flipped picture, and colour jitter touches colours only."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from recon_core.config import ConfigError, apply_overrides
from recon_core.data import (
    DatasetError,
    PreparedDataset,
    SampleSettings,
    mirror_permutation,
    mirrored_extrinsics,
    voxel_index,
)
from recon_core.geometry import fixed_views, project, unproject
from training.presets import preset


def _pair(root, index, draw=0, **augment):
    plain = PreparedDataset(root, "train", "all", SampleSettings(voxels=True))
    mirrored = PreparedDataset(root, "train", "all", SampleSettings(voxels=True, **augment))
    return plain[index, draw], mirrored[index, draw]


def _cloud(depth, extrinsics, intrinsic):
    """World points of every non-empty pixel of orthographic depth maps."""
    points = []
    for d, e in zip(depth.numpy(), extrinsics, strict=True):
        v, u = np.nonzero(d > 0)
        pixels = np.stack([u + 0.5, v + 0.5], axis=1)
        points.append(unproject(pixels, d[v, u], e, intrinsic, "orthographic"))
    return np.concatenate(points)


def _inside_on_mask(sample) -> float:
    """Share of the inside occupancy points that project into the picture's mask."""
    points = sample["points"].numpy()[sample["occupancy"].numpy() > 0.5]
    pixels, _ = project(
        points, sample["image_extrinsic"].numpy(), sample["image_intrinsic"].numpy(), "perspective"
    )
    alpha = sample["image"][3].numpy()
    size = alpha.shape[0]
    u = np.clip(pixels[:, 0].astype(int), 0, size - 1)
    v = np.clip(pixels[:, 1].astype(int), 0, size - 1)
    return float((alpha[v, u] > 0.5).mean())


def test_mirror_keeps_every_target_consistent(tiny_dataset):
    for index in range(3):
        plain, mirrored = _pair(tiny_dataset, index, mirror=1.0)
        flip = np.array([-1.0, 1.0, 1.0])
        assert np.array_equal(mirrored["image"].numpy(), plain["image"].flip(-1).numpy())
        np.testing.assert_array_equal(mirrored["points"].numpy(), plain["points"].numpy() * flip)
        assert np.array_equal(mirrored["occupancy"].numpy(), plain["occupancy"].numpy())
        # the flipped picture is what the mirrored camera sees of the mirrored shape, as the
        # plain picture is what the plain camera sees (thin parts lose a few points to the
        # mask's anti-aliased edge in both)
        assert _inside_on_mask(plain) > 0.95
        assert _inside_on_mask(mirrored) == pytest.approx(_inside_on_mask(plain), abs=0.005)
        wrong = dict(mirrored, image=plain["image"])  # mirrored camera, picture not flipped
        assert _inside_on_mask(wrong) < _inside_on_mask(mirrored) - 0.05
        # fixed views: the mirrored depth maps unproject to the mirrored surface, pixel for
        # pixel, through the same fixed cameras
        fixed = plain["fixed_extrinsics"].numpy().astype(np.float64)
        intrinsic = fixed_views(len(fixed), plain["fixed_depth"].shape[-1])[0].intrinsic
        truth = _cloud(plain["fixed_depth"], fixed, intrinsic) * flip
        got = _cloud(mirrored["fixed_depth"], fixed, intrinsic)
        assert len(got) == len(truth)
        assert cKDTree(truth).query(got)[0].max() < 1e-4
        assert np.array_equal(mirrored["fixed_mask"].numpy(), mirrored["fixed_depth"].numpy() > 0)
        # novel views: through the mirrored cameras
        novel = mirrored["novel_extrinsics"].numpy().astype(np.float64)
        truth = _cloud(plain["novel_depth"], plain["novel_extrinsics"].numpy(), intrinsic) * flip
        got = _cloud(mirrored["novel_depth"], novel, intrinsic)
        assert cKDTree(truth).query(got)[0].max() < 1e-4
        for rotation in novel[:, :3, :3]:
            np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-5)
            assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-5)
        # voxels: the mirrored grid holds the mirrored inside points where the grid held them
        resolution = mirrored["voxels"].shape[-1]
        inside = plain["points"].numpy()[plain["occupancy"].numpy() > 0.5]
        before = plain["voxels"][0].numpy()[tuple(voxel_index(inside, resolution).T)]
        after = mirrored["voxels"][0].numpy()[tuple(voxel_index(inside * flip, resolution).T)]
        assert before.mean() > 0.9 and after.mean() > 0.9
        assert np.array_equal(mirrored["voxels"][0].numpy(), plain["voxels"][0].numpy()[::-1])


def test_mirror_is_drawn_with_its_probability_and_deterministic(tiny_dataset):
    dataset = PreparedDataset(tiny_dataset, "train", "implicit", SampleSettings(mirror=0.5))
    plain = PreparedDataset(tiny_dataset, "train", "implicit", SampleSettings())
    flips = []
    for draw in range(40):
        sample, reference = dataset[0, draw], plain[0, draw]
        flips.append(bool((sample["points"][:, 0] != reference["points"][:, 0]).any()))
        again = dataset[0, draw]
        assert np.array_equal(again["image"].numpy(), sample["image"].numpy())
    assert 8 <= sum(flips) <= 32


def test_colour_jitter_scales_colours_only(tiny_dataset):
    plain, jittered = _pair(tiny_dataset, 0, colour_jitter=0.3)
    assert np.array_equal(jittered["image"][3].numpy(), plain["image"][3].numpy())
    assert np.array_equal(jittered["points"].numpy(), plain["points"].numpy())
    rgb, reference = jittered["image"][:3].numpy(), plain["image"][:3].numpy()
    lit = (reference > 0.05) & (reference < 0.7)
    ratio = rgb[lit] / reference[lit]
    assert ratio.min() >= 0.7 - 1e-4 and ratio.max() <= 1.3 + 1e-4
    assert not np.allclose(rgb, reference)
    channel = [np.median(rgb[c][lit[c]] / reference[c][lit[c]]) for c in range(3)]
    assert np.ptp(channel) > 1e-3  # one factor per channel
    assert np.array_equal(
        PreparedDataset(tiny_dataset, "train", "all", SampleSettings(colour_jitter=0.3))[0, 0][
            "image"
        ].numpy(),
        jittered["image"].numpy(),
    )


def test_mirror_needs_fixed_views_symmetric_about_the_left_right_plane():
    eight = np.stack([c.extrinsic for c in fixed_views(8)])
    perm = mirror_permutation(eight)
    assert sorted(perm.tolist()) == list(range(8)) and (perm != np.arange(8)).all()
    np.testing.assert_allclose(mirrored_extrinsics(eight[perm]), eight, atol=1e-9)
    four = np.stack([c.extrinsic for c in fixed_views(4)])
    with pytest.raises(DatasetError, match="symmetric about the object's left-right plane"):
        mirror_permutation(four, "somewhere")


def test_augmentation_settings_are_checked():
    config = preset("implicit-smoke")
    assert config.data.mirror == 0.0 and config.data.colour_jitter == 0.0
    apply_overrides(config, ["data.mirror=0.5", "data.colour_jitter=0.2"])
    with pytest.raises(ConfigError, match="data.mirror"):
        apply_overrides(config, ["data.mirror=1.5"])
    with pytest.raises(ConfigError, match="data.colour_jitter"):
        apply_overrides(config, ["data.colour_jitter=-0.1"])
