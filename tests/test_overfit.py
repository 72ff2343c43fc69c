"""Slow checks that the methods can fit a few shapes (make test-slow)."""

import json

import pytest
import torch

from training import train
from training.data import prepare
from training.reports import evaluate

OVERFIT_IMPLICIT = [
    "--preset",
    "implicit-smoke",
    "--set",
    'data.splits=["train","val","test"]',
    "--set",
    "model.decoder_hidden=[256]",
    "--set",
    "model.decoder_blocks=4",
    "--set",
    "stages.0.steps=3000",
    "--set",
    "data.batch_size=8",
    "--set",
    "optim.lr=0.001",
    "--no-progress",
]


def _eight_shapes(out, surface_points: int):
    argv = ["--source", "procedural", "--categories", "chair", "table", "--count", "4"]
    argv += ["--views", "4", "--novel-views", "8", "--occupancy-resolution", "128"]
    argv += ["--occupancy-points", "40000", "--surface-points", str(surface_points)]
    assert prepare.main([*argv, "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def eight_shapes(tmp_path_factory):
    return _eight_shapes(tmp_path_factory.mktemp("overfit") / "data", 20_000)


@pytest.fixture(scope="module")
def eight_shapes_dense(tmp_path_factory):
    """Lin et al. measure point clouds against 100K points densely sampled on the truth:
    against 20K, the distance to the nearest sample alone is about 0.4-0.5 (x100)."""
    return _eight_shapes(tmp_path_factory.mktemp("overfit-dense") / "data", 100_000)


def _train_and_evaluate(method: str, data, tmp_path, options: list[str], evaluation=()):
    """Train on every split of ``data``, evaluate on all of it; (run folder, metrics)."""
    run, report = tmp_path / "run", tmp_path / "report"
    command = ["--method", method, "--data", str(data), "--out", str(run), *options]
    assert train.main(command) == 0
    model = str(run / "model.safetensors")
    command = ["--model", model, "--data", str(data), "--split", "all", "--report", str(report)]
    assert evaluate.main([*command, *evaluation, "--no-progress"]) == 0
    return run, json.loads((report / "metrics.json").read_text())


@pytest.mark.slow
def test_implicit_overfits_eight_shapes(eight_shapes, tmp_path):
    run, metrics = _train_and_evaluate("implicit", eight_shapes, tmp_path, OVERFIT_IMPLICIT)
    assert metrics["mean_over_categories"]["shapes"] == 8
    assert metrics["mean_over_categories"]["iou"] >= 0.85, metrics["mean_over_categories"]
    # coarse-to-fine extraction equals dense evaluation for this trained decoder too
    from recon_core.data import read_index, read_record
    from recon_core.extraction import evaluate_grid, marching_cubes
    from recon_core.inference import Reconstructor

    reconstructor = Reconstructor(run / "model.safetensors", "cpu")
    for entry in read_index(eight_shapes)["records"][:2]:
        arrays, _ = read_record(eight_shapes / entry["file"], ["renders"])
        field = reconstructor.field(reconstructor.encode(arrays["renders"][0]))
        fast, stats = evaluate_grid(field, 128)
        dense, dense_stats = evaluate_grid(field, 128, start=128)
        assert stats.points_evaluated < 0.3 * dense_stats.points_evaluated
        assert torch.equal(fast > 0, dense > 0)
        assert len(marching_cubes(fast.numpy()).faces) == len(marching_cubes(dense.numpy()).faces)


OVERFIT_POINTCLOUD = [
    "--preset",
    "pointcloud-smoke",
    "--set",
    'data.splits=["train","val","test"]',
    "--set",
    "stages.0.steps=1500",
    "--set",
    "stages.1.steps=4500",
    "--set",  # then the joint losses with BatchNorm frozen (half the learning rate)
    "stages.2.steps=1000",
    "--set",  # the bundled model's widths: the smoke networks' stop at 1.58 / 0.95
    "model.encoder_channels=[32,64,96,128]",
    "--set",
    "model.encoder_fc=[1024,256]",
    "--set",
    "model.decoder_fc=[1024,4096]",
    "--set",
    "model.decoder_channels=[128,96,64,48,32]",
    "--set",
    "data.batch_size=8",
    "--no-progress",
]


@pytest.mark.slow
def test_pointcloud_overfits_eight_shapes(eight_shapes_dense, tmp_path):
    """One run on one thread measured pred->GT 0.775 / GT->pred 0.748 (x100), F@2% 0.955;
    with every positive-mask point (Lin et al.'s rule) 0.897 / 0.706. Without the frozen
    BatchNorm stage it was at the target's edge: 0.975 / 0.888 and 1.057 / 0.906."""
    data = eight_shapes_dense
    evaluation = ["--consistency", "0"]
    _, metrics = _train_and_evaluate("pointcloud", data, tmp_path, OVERFIT_POINTCLOUD, evaluation)
    mean = metrics["mean_over_categories"]
    assert mean["shapes"] == 8
    assert mean["pred_to_gt_x100"] < 1.0 and mean["gt_to_pred_x100"] < 1.0, mean
