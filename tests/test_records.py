"""The prepared-dataset format: records, index, splits, atomic writes, the torch reader."""

import json
from collections import Counter

import numpy as np
import pytest
import torch

from recon_core import data
from recon_core.geometry import fixed_views, sample_novel_views


def fake_arrays(rng, views=3, novel=4, size=16, points=400):
    fixed = fixed_views(8, size)
    novel_cams = sample_novel_views(novel, rng, size)
    labels = rng.random(points) < 0.3
    return {
        "renders": rng.integers(0, 255, (views, 32, 32, 4), dtype=np.uint8),
        "render_extrinsics": np.stack([np.eye(4)] * views),
        "render_intrinsics": np.stack([np.eye(3)] * views),
        "fixed_depth": rng.random((8, size, size)) * (rng.random((8, size, size)) > 0.5),
        "fixed_extrinsics": np.stack([c.extrinsic for c in fixed]),
        "fixed_intrinsics": fixed[0].intrinsic,
        "novel_depth": rng.random((novel, size, size)),
        "novel_extrinsics": np.stack([c.extrinsic for c in novel_cams]),
        "novel_intrinsics": novel_cams[0].intrinsic,
        "occupancy_points": rng.uniform(-0.55, 0.55, (points, 3)),
        "occupancy_labels": np.packbits(labels),
        "voxels": np.packbits(rng.random(8**3) < 0.2),
        "surface_points": rng.uniform(-0.5, 0.5, (100, 3)),
        "surface_normals": rng.normal(size=(100, 3)),
    }, labels


def make_dataset(root, ids, rng):
    entries = []
    for shape_id in ids:
        arrays, _ = fake_arrays(rng)
        meta = {"id": shape_id, "category": shape_id.split("/")[0], "uniform_count": 200}
        path = data.write_record(root, arrays, meta)
        entries.append(
            {
                "id": shape_id,
                "file": str(path.relative_to(root)),
                "category": meta["category"],
                "split": data.split_of(shape_id),
                "uniform_count": 200,
            }
        )
    data.write_index(root, {"records": entries})


def test_record_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    arrays, labels = fake_arrays(rng)
    meta = {"id": "chair/0001", "category": "chair", "licence": "CC0-1.0", "uniform_count": 200}
    path = data.write_record(tmp_path, arrays, meta)
    assert path == data.record_path(tmp_path, "chair/0001")
    back, back_meta = data.read_record(path)
    assert back_meta["category"] == "chair" and back_meta["format_version"] == data.FORMAT_VERSION
    for key, value in arrays.items():
        expected = value.astype(back[key].dtype)
        np.testing.assert_array_equal(back[key], expected, err_msg=key)
    assert np.array_equal(np.unpackbits(back["occupancy_labels"], count=len(labels)), labels)
    only, _ = data.read_record(path, ["fixed_depth"])
    assert list(only) == ["fixed_depth"]


def test_truncated_record_is_a_dataset_error(tmp_path):
    arrays, _ = fake_arrays(np.random.default_rng(0))
    path = data.write_record(tmp_path, arrays, {"id": "x", "uniform_count": 200})
    whole = path.read_bytes()
    for cut in (len(whole) // 2, 100, 0):
        path.write_bytes(whole[:cut])
        with pytest.raises(data.DatasetError, match=f"{path}: unreadable record"):
            data.read_record(path)


def test_record_missing_array_is_refused(tmp_path):
    arrays, _ = fake_arrays(np.random.default_rng(0))
    del arrays["voxels"]
    with pytest.raises(data.DatasetError, match="voxels"):
        data.write_record(tmp_path, arrays, {"id": "x"})
    assert not any(tmp_path.rglob("*.npz")) and not any(tmp_path.rglob("*.tmp"))


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "index.json"
    data.atomic_write_bytes(target, lambda h: h.write(b"old"))

    def explode(handle):
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        data.atomic_write_bytes(target, explode)
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_split_is_stable_and_balanced():
    ids = [f"shape/{k}" for k in range(20_000)]
    splits = [data.split_of(i) for i in ids]
    fractions = Counter(splits)
    assert abs(fractions["train"] / 20_000 - 0.8) < 0.01
    assert abs(fractions["val"] / 20_000 - 0.1) < 0.01
    # a split depends on the id alone: more shapes never move the old ones
    more = [data.split_of(i) for i in ids[:100] + [f"new/{k}" for k in range(50)]]
    assert more[:100] == splits[:100]


def test_wrong_format_version_is_refused(tmp_path):
    data.write_index(tmp_path, {"records": []})
    index = json.loads((tmp_path / "index.json").read_text())
    index["format_version"] = 999
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(data.DatasetError, match="format version 999"):
        data.read_index(tmp_path)
    with pytest.raises(data.DatasetError, match="not a prepared dataset"):
        data.read_index(tmp_path / "nowhere")


def test_reader_gives_torch_tensors_for_both_methods(tmp_path):
    rng = np.random.default_rng(1)
    ids = [f"chair/{k}" for k in range(12)] + [f"table/{k}" for k in range(12)]
    make_dataset(tmp_path, ids, rng)
    settings = data.SampleSettings(novel_views=2, occupancy_points=64, image_size=16)
    pc = data.PreparedDataset(tmp_path, None, "pointcloud", settings)
    assert len(pc) == 24 and pc.categories == ["chair", "table"]
    item = pc[0]
    assert item["image"].shape == (4, 16, 16) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["fixed_depth"].shape == (8, 16, 16)
    assert torch.equal(item["fixed_mask"], (item["fixed_depth"] > 0).float())
    assert item["novel_depth"].shape == (2, 16, 16) and item["novel_extrinsics"].shape == (2, 4, 4)
    assert "points" not in item
    im = data.PreparedDataset(tmp_path, None, "implicit", settings)
    item = im[3]
    assert item["points"].shape == (64, 3) and item["occupancy"].shape == (64,)
    assert set(item["occupancy"].unique().tolist()) <= {0.0, 1.0}
    assert "fixed_depth" not in item
    # the intrinsics follow the resize
    full = data.PreparedDataset(tmp_path, None, "implicit", data.SampleSettings())
    assert torch.allclose(item["image_intrinsic"][:2] * 2, full[3]["image_intrinsic"][:2])


def test_reader_is_deterministic_per_epoch_and_split_filter(tmp_path):
    rng = np.random.default_rng(2)
    ids = [f"lamp/{k}" for k in range(30)]
    make_dataset(tmp_path, ids, rng)
    train = data.PreparedDataset(tmp_path, "train", "implicit", seed=5)
    assert 0 < len(train) < 30
    assert all(r["split"] == "train" for r in train.records)
    first = train[0]["points"]
    assert torch.equal(first, train[0]["points"])
    train.set_epoch(1)
    assert not torch.equal(first, train[0]["points"])
    train.set_epoch(0)
    assert torch.equal(first, train[0]["points"])
    with pytest.raises(data.DatasetError, match="split"):
        data.PreparedDataset(tmp_path, "nope")


def test_record_cache_gives_the_same_samples_and_keeps_to_its_budget(tmp_path):
    rng = np.random.default_rng(3)
    make_dataset(tmp_path, [f"sofa/{k}" for k in range(6)], rng)
    settings = data.SampleSettings(novel_views=2, occupancy_points=64)
    cached = data.PreparedDataset(tmp_path, None, "all", settings)
    uncached = data.PreparedDataset(tmp_path, None, "all", settings, cache_mb=0)
    for draw in range(3):
        for i in range(len(cached)):
            a, b = cached[i, draw], uncached[i, draw]
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len(cached._cache) == 6 and not uncached._cache
    one = cached._cached_bytes / 6
    small = data.PreparedDataset(tmp_path, None, "all", settings, cache_mb=2.5 * one / 2**20)
    for i in range(len(small)):
        small[i]
    assert len(small._cache) == 2 and small._cached_bytes <= small.cache_bytes
