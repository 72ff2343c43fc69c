"""Photo-like training views: made from the training renders and cut out as users' photos
are, then drawn by the data loader in place of the renders."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from recon_core.config import ConfigError, apply_overrides
from recon_core.data import (
    PHOTO_VIEWS,
    DatasetError,
    PreparedDataset,
    SampleSettings,
    read_index,
    read_photo_views,
    read_record,
)
from recon_core.imaging import network_input
from training.data import photo_views
from training.presets import preset


@pytest.fixture(scope="module")
def with_photos(tiny_dataset, tmp_path_factory):
    """A copy of the tiny dataset with two photo views of each training render."""
    root = tmp_path_factory.mktemp("photos") / "tiny"
    shutil.copytree(tiny_dataset, root)
    assert photo_views.main(["--data", str(root), "--views", "2", "--workers", "1"]) == 0
    return root


def test_photo_views_are_the_renders_cut_out_of_photos(with_photos, capsys):
    index = read_index(with_photos)
    train = [r for r in index["records"] if r["split"] == "train"]
    listed = json.loads((with_photos / PHOTO_VIEWS / "index.json").read_text())
    assert [r["id"] for r in listed["records"]] == [r["id"] for r in train]
    files = read_photo_views(with_photos)
    ious, framed = [], []
    for record in train:
        renders = read_record(with_photos / record["file"], ["renders"])[0]["renders"]
        with np.load(files[record["id"]]) as stored:
            photos, views, iou = stored["photos"], stored["views"], stored["mask_iou"]
        assert photos.shape[1:] == renders.shape[1:] and photos.dtype == np.uint8
        assert len(photos) == len(views) == len(iou) and set(views) <= {0, 1}
        for photo, view in zip(photos, views, strict=True):
            truth = renders[view][..., 3] > 127
            found = photo[..., 3] > 127
            # the photo's own colours (relit, on a background, JPEG), not the render's
            framed.append((found & truth).sum() / (found | truth).sum())
            assert not np.array_equal(photo[..., :3], renders[view][..., :3])
            # no background passes (only the faint rim whose alpha rounds to 0, as in renders)
            assert (photo[photo[..., 3] == 0][..., :3] > 0).any(-1).mean() < 0.02
        ious.extend(iou)
    # most masks are right, and where they are the object is framed as in its render
    assert np.mean(ious) > 0.7 and np.median(framed) > 0.8
    # a rerun finds every record made and writes the same index
    before = {p.name: p.stat().st_mtime_ns for p in (with_photos / PHOTO_VIEWS).glob("*.npz")}
    assert photo_views.main(["--data", str(with_photos), "--views", "2", "--workers", "1"]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (with_photos / PHOTO_VIEWS).glob("*.npz")}
    assert before == after
    assert json.loads((with_photos / PHOTO_VIEWS / "index.json").read_text()) == listed


def test_the_loader_draws_photo_views_with_their_render_camera(with_photos):
    plain = PreparedDataset(with_photos, "train", "implicit", SampleSettings())
    photos = PreparedDataset(with_photos, "train", "implicit", SampleSettings(photo_views=1.0))
    files = read_photo_views(with_photos)
    for i, record in enumerate(photos.records):
        arrays = read_record(with_photos / record["file"])[0]
        with np.load(files[record["id"]]) as stored:
            stored_photos, views = stored["photos"], stored["views"]
        for draw in range(3):
            sample = photos[i, draw]
            image = sample["image"].numpy()
            matches = [
                k
                for k in range(len(stored_photos))
                if np.array_equal(image, network_input(stored_photos[k : k + 1])[0].numpy())
            ]
            assert len(matches) == 1
            view = views[matches[0]]
            np.testing.assert_array_equal(
                sample["image_extrinsic"].numpy(), arrays["render_extrinsics"][view]
            )
            assert sample["points"].shape == plain[i, draw]["points"].shape
            again = photos[i, draw]
            assert np.array_equal(again["image"].numpy(), sample["image"].numpy())
    # half the time a photo, half the time a render
    half = PreparedDataset(with_photos, "train", "implicit", SampleSettings(photo_views=0.5))
    renders = read_record(with_photos / half.records[0]["file"], ["renders"])[0]["renders"]
    kinds = [
        any(np.array_equal(half[0, d]["image"].numpy(), network_input(r[None])[0]) for r in renders)
        for d in range(40)
    ]
    assert 8 <= sum(kinds) <= 32


def test_photo_views_missing_or_misused_are_refused(tiny_dataset, with_photos):
    with pytest.raises(DatasetError, match=r"photo-views: no photo-like training views .*"):
        PreparedDataset(tiny_dataset, "train", "implicit", SampleSettings(photo_views=0.5))
    with pytest.raises(DatasetError, match="one input view per sample"):
        PreparedDataset(
            with_photos, "train", "implicit", SampleSettings(photo_views=0.5, input_views=2)
        )
    config = apply_overrides(preset("implicit-smoke"), ["data.photo_views=0.5"])
    assert config.data.photo_views == 0.5
    with pytest.raises(ConfigError, match="data.photo_views"):
        apply_overrides(config, ["data.photo_views=1.5"])
    with pytest.raises(ConfigError, match="photo_views change the pictures"):
        apply_overrides(config, ["data.cache_backbone=true"])
