"""Finding models: the bundled ones (models/ beside this file) and the user's folder."""

from __future__ import annotations

import os
from pathlib import Path

BUNDLED = Path(__file__).resolve().parent / "models"


def package_name() -> str:
    return __package__ or "image_to_3d"


def model_files(user_dir: str = "") -> list[Path]:
    """Bundled checkpoints first, then the user's, each sorted by name."""
    found = sorted(BUNDLED.glob("*.safetensors"))
    if user_dir and os.path.isdir(user_dir):
        found += sorted(Path(user_dir).glob("*.safetensors"))
    return found


def describe(path: Path) -> str:
    """One-line tooltip: method, categories and test metrics from the checkpoint's metadata,
    or why it cannot be read."""
    try:
        from recon_core.checkpoint import CheckpointError, read_metadata
    except ImportError as exc:
        return f"cannot read models: {exc}"
    try:
        meta = read_metadata(path)
    except CheckpointError as exc:
        return str(exc)
    categories = ", ".join(meta.get("categories", [])) or "unknown categories"
    metrics = meta.get("metrics", {})
    shown = ", ".join(
        f"{k} {v:.3f}" for k, v in list(metrics.items())[:4] if isinstance(v, (int, float))
    )
    return f"{meta.get('method')} model; {categories}" + (f"; {shown}" if shown else "")
