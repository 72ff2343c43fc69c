"""Finding models: the bundled ones (models/ beside this file) and the user's folder."""

from __future__ import annotations

import functools
import json
import os
import struct
from pathlib import Path

BUNDLED = Path(__file__).resolve().parent / "models"


def model_files(user_dir: str = "") -> list[Path]:
    """Bundled checkpoints first, then the user's, each sorted by name."""
    found = sorted(BUNDLED.glob("*.safetensors"))
    if user_dir and os.path.isdir(user_dir):
        found += sorted(Path(user_dir).glob("*.safetensors"))
    return found


def read_metadata(path: Path) -> dict:
    """A checkpoint's metadata, read from the safetensors header with the standard library
    only (the panel must work before torch is installed)."""
    with open(path, "rb") as handle:
        size = struct.unpack("<Q", handle.read(8))[0]
        if size > 50_000_000:
            raise ValueError(f"{path.name}: not a safetensors file")
        header = json.loads(handle.read(size))
    return json.loads(header.get("__metadata__", {}).get("recon3d", "{}"))


def describe(path: Path) -> str:
    """One-line tooltip: method, categories and test metrics, or why it cannot be read."""
    try:
        meta = read_metadata(path)
    except (OSError, ValueError, struct.error) as exc:
        return f"{path.name}: unreadable ({exc})"
    categories = ", ".join(meta.get("categories", [])) or "unknown categories"
    mean = meta.get("metrics", {}).get("mean_over_categories", {})
    shown = ", ".join(
        f"{key} {mean[key]:.2f}"
        for key in ("iou", "f_score@0.02", "pred_to_gt_x100", "gt_to_pred_x100")
        if isinstance(mean.get(key), (int, float))
    )
    return f"{meta.get('method', '?')} model; {categories}" + (f"; test {shown}" if shown else "")


def method_of(path: str) -> str | None:
    """The checkpoint's method ("implicit", "pointcloud"), or None when it cannot be read;
    cached per file and modification time, since the panel asks on every redraw."""
    try:
        return _method(path, os.stat(path).st_mtime_ns)
    except OSError:
        return None


@functools.lru_cache(maxsize=64)
def _method(path: str, mtime_ns: int) -> str | None:
    try:
        return read_metadata(Path(path)).get("method")
    except (OSError, ValueError, struct.error):
        return None
