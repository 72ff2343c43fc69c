"""Metrics against cases with known answers."""

import numpy as np
import pytest

from recon_core import metrics


def _sphere_points(n, radius=0.3, center=(0, 0, 0), seed=0):
    rng = np.random.default_rng(seed)
    normals = rng.normal(size=(n, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return normals * radius + np.asarray(center), normals


def test_identical_shapes_score_perfectly():
    points, normals = _sphere_points(20_000)
    out = metrics.surface_metrics(points, normals, points, normals)
    assert out["chamfer_l1"] == 0 and out["accuracy"] == 0 and out["completeness"] == 0
    assert out["normal_consistency"] == pytest.approx(1.0)
    assert out["f_score@0.01"] == 1.0 and out["f_score@0.02"] == 1.0
    occupancy = np.random.default_rng(1).random(1000) < 0.3
    assert metrics.iou(occupancy, occupancy) == 1.0


def test_shifted_sphere_distances_and_fscore():
    shift = 0.015
    a, na = _sphere_points(200_000, seed=1)
    b, nb = _sphere_points(200_000, center=(shift, 0, 0), seed=2)
    out = metrics.surface_metrics(a, na, b, nb)
    # mean distance from a sphere to the same sphere shifted by s along x is about s/2
    assert out["accuracy"] == pytest.approx(shift / 2, rel=0.1)
    assert out["completeness"] == pytest.approx(shift / 2, rel=0.1)
    assert out["f_score@0.02"] > out["f_score@0.01"] > 0.3
    assert out["f_score@0.02"] > 0.95
    assert out["normal_consistency"] > 0.99
    pc = metrics.pointcloud_metrics(a, b)
    assert pc["pred_to_gt_x100"] == pytest.approx(100 * out["accuracy"])


def test_iou_of_two_half_overlapping_sets():
    truth = np.zeros(100, bool)
    truth[:50] = True
    predicted = np.zeros(100, bool)
    predicted[25:75] = True
    assert metrics.iou(predicted, truth) == pytest.approx(25 / 75)
    assert metrics.iou(np.zeros(10, bool), np.zeros(10, bool)) == 1.0


def test_empty_prediction_gets_the_worst_score_not_nan():
    truth, normals = _sphere_points(1000)
    out = metrics.surface_metrics(np.zeros((0, 3)), np.zeros((0, 3)), truth, normals)
    assert out["chamfer_l1"] == metrics.WORST_DISTANCE
    assert out["normal_consistency"] == 0 and out["f_score@0.01"] == 0
    assert all(np.isfinite(v) for v in out.values())
    nan_cloud = np.full((10, 3), np.nan)
    assert metrics.pointcloud_metrics(nan_cloud, truth)["f_score@0.02"] == 0
    assert metrics.iou(np.zeros(100, bool), np.ones(100, bool)) == 0.0


def test_a_truth_with_no_inside_has_no_iou_and_stays_out_of_the_means():
    from training.reports.evaluate import _defined_iou, _markdown, _summarise

    truth = np.zeros(100, bool)
    assert _defined_iou(np.ones(100, bool), truth) is None  # a sheet: nothing could score
    truth[:10] = True
    assert _defined_iou(truth.copy(), truth) == 1.0
    per_shape = [
        {"id": "a", "category": "bin", "iou": None, "chamfer_l1": 0.2},
        {"id": "b", "category": "chair", "iou": 0.2, "chamfer_l1": 0.1},
        {"id": "c", "category": "chair", "iou": None, "chamfer_l1": 0.3},
        {"id": "d", "category": "sofa", "iou": 0.6, "chamfer_l1": 0.4},
    ]
    summary = _summarise(per_shape)
    assert summary["per_category"]["bin"]["iou"] is None
    assert summary["per_category"]["chair"]["iou"] == pytest.approx(0.2)
    assert summary["mean_over_categories"]["iou"] == pytest.approx(0.4)  # chair and sofa
    assert summary["mean_over_categories"]["chamfer_l1"] == pytest.approx((0.2 + 0.2 + 0.4) / 3)
    summary.update(model="m", split="test", data="d")
    assert "| bin | 1 | - | 0.2000 |" in _markdown(summary)


def test_evaluation_counts_meshes_extracted_below_the_iso_level(tiny_dataset, tmp_path):
    """A field whose highest occupancy is 0.4 is meshed at 0.2 through the inference path the
    evaluation uses: counted and said in the report; with the level kept, every mesh is
    empty and scores the padded box's diagonal as its Chamfer distance."""
    import math

    from helpers import octahedron_model

    from recon_core.geometry import PADDED_HALF_EXTENT
    from training.bundle import _lowered_lines
    from training.reports.evaluate import evaluate

    faint = octahedron_model(tmp_path / "faint.safetensors", peak=math.log(0.4 / 0.6))
    lowered = evaluate(
        faint, tiny_dataset, "all", tmp_path / "lowered", 64, device="cpu", progress=False
    )
    shapes = lowered["mean_over_categories"]["shapes"]
    assert lowered["lowered_iso_shapes"] == shapes == 9
    assert {r["lowered_iso"] for r in lowered["per_shape"]} == {0.2}
    assert (
        "9 of 9 meshes came at a lower iso level than 0.5"
        in (tmp_path / "lowered" / "report.md").read_text()
    )
    assert _lowered_lines(lowered)[0].startswith("9 of the 9 test meshes came at a lower")
    kept = evaluate(
        faint,
        tiny_dataset,
        "all",
        tmp_path / "kept",
        64,
        device="cpu",
        progress=False,
        lower_iso=False,
    )
    assert kept["lowered_iso_shapes"] == 0 and _lowered_lines(kept) == []
    diagonal = 2 * PADDED_HALF_EXTENT * math.sqrt(3)
    assert kept["mean_over_categories"]["chamfer_l1"] == pytest.approx(diagonal, rel=1e-3)
    assert lowered["mean_over_categories"]["chamfer_l1"] < 0.5 * diagonal
