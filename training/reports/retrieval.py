"""The retrieval baseline: answer a picture with the training shape whose rendered
silhouette best matches the picture's mask (IoU over every training render). A network that
does not beat it is memorising shapes rather than reconstructing them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recon_core.data import DatasetError, read_index, read_record

__all__ = ["SilhouetteIndex"]

SIZE = 64
"""Side of the compared silhouettes."""


def _silhouettes(alpha: np.ndarray) -> np.ndarray:
    """(V, H, W) uint8 alpha of framed renders -> (V, SIZE*SIZE) float32 masks."""
    v, h, w = alpha.shape
    rows = ((np.arange(SIZE) + 0.5) * h / SIZE).astype(int)
    cols = ((np.arange(SIZE) + 0.5) * w / SIZE).astype(int)
    return (alpha[:, rows][:, :, cols] > 127).reshape(v, -1).astype(np.float32)


class SilhouetteIndex:
    """Every render of the training shapes of ``root``'s ``splits``."""

    def __init__(self, root: str | Path, splits: tuple[str, ...] = ("train",)):
        self.root = Path(root)
        index = read_index(self.root)
        self.records = [r for r in index["records"] if r["split"] in splits]
        if not self.records:
            raise DatasetError(f"{root}: no records in {', '.join(splits)} to retrieve from")
        masks, owners = [], []
        for k, entry in enumerate(self.records):
            arrays, _ = read_record(self.root / entry["file"], ("renders",))
            masks.append(_silhouettes(arrays["renders"][..., 3]))
            owners += [k] * len(arrays["renders"])
        self.masks = np.concatenate(masks)
        self.areas = self.masks.sum(axis=1)
        self.owners = np.asarray(owners)

    def query(self, alpha: np.ndarray) -> tuple[dict, float]:
        """The training record whose best render matches ``alpha`` (H, W) uint8, and the
        silhouette IoU."""
        query = _silhouettes(alpha[None])[0]
        inter = self.masks @ query
        iou = inter / np.maximum(self.areas + query.sum() - inter, 1.0)
        best = int(np.argmax(iou))
        return self.records[self.owners[best]], float(iou[best])

    def shape(self, entry: dict) -> dict[str, np.ndarray]:
        """The retrieved shape's occupancy samples and surface."""
        keys = ("occupancy_points", "occupancy_labels", "surface_points", "surface_normals")
        arrays, _ = read_record(self.root / entry["file"], keys)
        count = len(arrays["occupancy_points"])
        return {
            "points": arrays["occupancy_points"].astype(np.float64),
            "labels": np.unpackbits(arrays["occupancy_labels"], count=count).astype(bool),
            "surface_points": arrays["surface_points"].astype(np.float64),
            "surface_normals": arrays["surface_normals"].astype(np.float64),
        }

    def inside(self, shape: dict[str, np.ndarray], points: np.ndarray) -> np.ndarray:
        """Inside test of ``points`` against a retrieved shape: the label of the nearest of
        its occupancy samples (dense near the surface, so the boundary is sharp)."""
        from scipy.spatial import cKDTree

        _, nearest = cKDTree(shape["points"]).query(points, workers=-1)
        return shape["labels"][nearest]
