"""Where models are found: the bundled ones and the user's folder, by name or path."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recon_core.checkpoint import CheckpointError, check_config, read_metadata

__all__ = ["ModelEntry", "bundled_dir", "user_dir", "list_models", "resolve_model"]

log = logging.getLogger("recon3d")

DEFAULT_MODEL = "implicit"
"""The bundled model used when none is named."""


def bundled_dir() -> Path:
    """``$RECON3D_BUNDLED_MODELS``, else the ``models`` folder beside the ``recon_core``
    package: where the add-on ships its models next to the library (in a checkout, the
    top-level ``models`` link to the add-on's folder)."""
    if os.environ.get("RECON3D_BUNDLED_MODELS"):
        return Path(os.environ["RECON3D_BUNDLED_MODELS"]).expanduser()
    return Path(__file__).resolve().parent.parent / "models"


def user_dir() -> Path:
    """``$RECON3D_MODELS``, else ``~/.local/share/recon3d/models`` (XDG data home)."""
    if os.environ.get("RECON3D_MODELS"):
        return Path(os.environ["RECON3D_MODELS"]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "recon3d" / "models"


@dataclass
class ModelEntry:
    name: str
    path: Path
    origin: str
    """"bundled" or "user"."""
    meta: dict[str, Any] | None
    error: str | None = None

    @property
    def method(self) -> str:
        return (self.meta or {}).get("method", "?")

    @property
    def categories(self) -> list[str]:
        return list((self.meta or {}).get("categories", []))

    @property
    def size_mb(self) -> float:
        return self.path.stat().st_size / 1e6


_WARNED: set[str] = set()


def _model_files(folder: Path) -> list[Path]:
    """The ``.safetensors`` files of a models folder; none, with a one-line warning (once
    per folder and process), when the folder cannot be read."""
    try:
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix == ".safetensors")
    except OSError as exc:
        if str(folder) not in _WARNED:
            _WARNED.add(str(folder))
            log.warning(
                "warning: %s: cannot read this models folder (%s); its models are skipped",
                folder,
                exc.strerror or exc,
            )
        return []


def list_models(extra_dir: str | Path | None = None) -> list[ModelEntry]:
    """Bundled models, then the user's (and ``extra_dir``'s), each sorted by name; a file
    that is not a usable checkpoint (unreadable, or its config failing its checksum) is
    listed with its error; an unreadable folder is skipped with a warning."""
    entries = []
    folders = [(bundled_dir(), "bundled"), (user_dir(), "user")]
    if extra_dir:
        folders.append((Path(extra_dir), "user"))
    for folder, origin in folders:
        for path in _model_files(folder):
            try:
                meta = read_metadata(path)
                check_config(path, meta)
                entries.append(ModelEntry(path.stem, path, origin, meta))
            except (CheckpointError, OSError) as exc:
                entries.append(ModelEntry(path.stem, path, origin, None, str(exc)))
    return entries


def resolve_model(name_or_path: str | Path | None) -> Path:
    """A model file from a bundled or user model name, or a path. Raises CheckpointError
    naming what was looked for."""
    name = str(name_or_path or DEFAULT_MODEL)
    path = Path(name).expanduser()
    if path.suffix == ".safetensors" or path.exists() or os.sep in name:
        if not path.is_file():
            raise CheckpointError(f"{path}: no such model file")
        return path
    entries = list_models()
    for entry in entries:
        if entry.name == name:
            return entry.path
    known = ", ".join(e.name for e in entries) or "none installed"
    raise CheckpointError(f"{name}: unknown model name (known: {known})")
