"""Reconstruction metrics, following the published protocols.

* Volumetric IoU on uniform points in the padded box (Occupancy Networks).
* Chamfer-L1 between surface samples: accuracy (prediction -> truth), completeness (truth ->
  prediction) and their mean (Occupancy Networks' convention), in units of the unit cube.
* Normal consistency: mean |cos| between a point's normal and its nearest neighbour's, both
  directions averaged.
* F-score at thresholds of 1% and 2% of the normalised cube's side (side 1).
* For point clouds, Lin et al.'s prediction -> truth and truth -> prediction mean distances,
  times 100.

An empty or degenerate prediction gets the worst score (IoU 0, F-score 0, normal
consistency 0, distances equal to the padded box's diagonal), never NaN.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from recon_core.geometry import PADDED_HALF_EXTENT

__all__ = [
    "WORST_DISTANCE",
    "F_THRESHOLDS",
    "iou",
    "fscore",
    "surface_metrics",
    "pointcloud_metrics",
]

WORST_DISTANCE = 2 * PADDED_HALF_EXTENT * math.sqrt(3.0)
"""Distance reported for an empty prediction: the padded box's diagonal."""

F_THRESHOLDS = (0.01, 0.02)


def iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """IoU of two boolean occupancy vectors over the same points (1 when both are empty)."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    union = np.logical_or(predicted, truth).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(predicted, truth).sum() / union)


def _nearest(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distance, index = cKDTree(target).query(source, workers=-1)
    return distance, index


def fscore(d_pred: np.ndarray, d_true: np.ndarray, threshold: float) -> float:
    """F-score at ``threshold`` from each prediction's distance to the truth (precision)
    and each true point's distance to the prediction (recall)."""
    precision = float((d_pred < threshold).mean())
    recall = float((d_true < threshold).mean())
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def surface_metrics(
    pred_points: np.ndarray,
    pred_normals: np.ndarray | None,
    true_points: np.ndarray,
    true_normals: np.ndarray | None,
) -> dict:
    """Chamfer-L1 (with accuracy and completeness), normal consistency and F-scores."""
    pred_points = np.asarray(pred_points, np.float64).reshape(-1, 3)
    true_points = np.asarray(true_points, np.float64).reshape(-1, 3)
    if len(true_points) == 0:
        raise ValueError("no ground-truth surface points")
    if len(pred_points) == 0 or not np.isfinite(pred_points).all():
        out = {
            "accuracy": WORST_DISTANCE,
            "completeness": WORST_DISTANCE,
            "chamfer_l1": WORST_DISTANCE,
            "normal_consistency": 0.0,
        }
        out.update({f"f_score@{t:g}": 0.0 for t in F_THRESHOLDS})
        return out
    d_pred, i_pred = _nearest(pred_points, true_points)
    d_true, i_true = _nearest(true_points, pred_points)
    out = {"accuracy": float(d_pred.mean()), "completeness": float(d_true.mean())}
    out["chamfer_l1"] = 0.5 * (out["accuracy"] + out["completeness"])
    if pred_normals is not None and true_normals is not None:
        pn = _unit(np.asarray(pred_normals, np.float64))
        tn = _unit(np.asarray(true_normals, np.float64))
        a = np.abs((pn * tn[i_pred]).sum(1)).mean()
        b = np.abs((tn * pn[i_true]).sum(1)).mean()
        out["normal_consistency"] = float(0.5 * (a + b))
    out.update({f"f_score@{t:g}": fscore(d_pred, d_true, t) for t in F_THRESHOLDS})
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def pointcloud_metrics(pred_points: np.ndarray, true_points: np.ndarray) -> dict:
    """Lin et al.'s mean distances x100 in both directions, plus F-scores."""
    surface = surface_metrics(pred_points, None, true_points, None)
    out = {
        "pred_to_gt_x100": 100 * surface["accuracy"],
        "gt_to_pred_x100": 100 * surface["completeness"],
    }
    out.update({k: v for k, v in surface.items() if k.startswith("f_score")})
    return out
