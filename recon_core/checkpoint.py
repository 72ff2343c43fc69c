"""Checkpoints: one ``.safetensors`` file each, never a pickle.

Tensors: the model's weights under ``model/``; in training checkpoints also the optimizer
state under ``optim/`` and the random generator state under ``rng/``; optionally the
viewpoint estimator's weights under ``viewpoint/`` (`recon_core.viewpoint`, its layout and
metrics under the ``viewpoint`` metadata key). Metadata (strings):
``recon3d`` (JSON) holding the format version, method, config, categories, fixed views,
a summary of the training data, metrics, the step, and a SHA-256 of the canonical config
JSON. Loading rebuilds the config strictly (unknown or missing keys are errors), checks the
hash (a hand-edited config is refused), and loads the weights strictly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from recon_core.config import ConfigError, TrainConfig, config_json, from_dict
from recon_core.files import atomic_write_bytes

__all__ = [
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "read_metadata",
    "check_config",
    "attach_viewpoint",
]

CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, of another version, or inconsistent."""


@dataclass
class Checkpoint:
    """What a checkpoint file holds, rebuilt."""

    config: TrainConfig
    model_state: dict[str, torch.Tensor]
    info: dict[str, Any]
    """Everything else from the metadata: categories, fixed_views, data, metrics, step..."""
    optim_state: dict[str, Any] | None = None
    rng_state: dict[str, torch.Tensor] = field(default_factory=dict)
    viewpoint_state: dict[str, torch.Tensor] | None = None
    """The viewpoint estimator's weights, when one is attached (its layout and metrics are
    ``info["viewpoint"]``)."""


def _config_hash(stored: dict) -> str:
    """The hash of a config as a checkpoint stores it (`config_json`'s canonical text), not
    of the config rebuilt from it: keys added since it was written take their defaults on
    loading and are not in it."""
    text = json.dumps(stored, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _flatten_optim(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state_dict -> tensors and a JSON-able skeleton."""
    tensors, skeleton = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, entry in state["state"].items():
        skeleton["state"][str(pid)] = {}
        for name, value in entry.items():
            if torch.is_tensor(value):
                key = f"optim/{pid}/{name}"
                tensors[key] = value.detach().cpu().contiguous()
                skeleton["state"][str(pid)][name] = {"tensor": key}
            else:
                skeleton["state"][str(pid)][name] = {"value": value}
    return tensors, skeleton


def _unflatten_optim(tensors: dict[str, torch.Tensor], skeleton: dict[str, Any]) -> dict:
    state = {}
    for pid, entry in skeleton["state"].items():
        state[int(pid)] = {
            name: tensors[v["tensor"]] if "tensor" in v else v["value"] for name, v in entry.items()
        }
    return {"state": state, "param_groups": skeleton["param_groups"]}


def save_checkpoint(
    path: str | Path,
    config: TrainConfig,
    model_state: dict[str, torch.Tensor],
    info: dict[str, Any],
    optim_state: dict[str, Any] | None = None,
    rng_state: dict[str, torch.Tensor] | None = None,
    dtype: torch.dtype | None = None,
    viewpoint: tuple[dict[str, Any], dict[str, torch.Tensor]] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file, then rename). ``dtype`` casts floating
    weights (e.g. torch.float16 for bundled models). ``viewpoint``: a viewpoint estimator's
    metadata (layout and metrics) and weights, stored in ``dtype`` too."""
    from safetensors.torch import save

    tensors = _prefixed(model_state, "model/", dtype)
    meta = dict(info)
    meta.pop("viewpoint", None)
    if viewpoint is not None:
        meta["viewpoint"] = viewpoint[0]
        tensors.update(_prefixed(viewpoint[1], "viewpoint/", dtype))
    stored = json.loads(config_json(config))
    meta.update(
        format_version=CHECKPOINT_VERSION,
        method=config.method,
        config=stored,
        config_sha256=_config_hash(stored),
        weights_dtype=str(dtype or "as trained").replace("torch.", ""),
    )
    if optim_state is not None:
        optim_tensors, skeleton = _flatten_optim(optim_state)
        tensors.update(optim_tensors)
        meta["optim"] = skeleton
    for name, value in (rng_state or {}).items():
        tensors[f"rng/{name}"] = value.detach().cpu().contiguous()
    blob = save(tensors, metadata={"recon3d": json.dumps(meta)})
    path = Path(path)
    atomic_write_bytes(path, lambda handle: handle.write(blob))
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, without loading its tensors."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get("recon3d")
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{path}: not a readable .safetensors file ({exc})") from exc
    if raw is None:
        raise CheckpointError(f"{path}: not a recon3d checkpoint (no recon3d metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: corrupt metadata ({exc})") from exc
    if meta.get("format_version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {meta.get('format_version')}, "
            f"this version reads {CHECKPOINT_VERSION}"
        )
    return meta


def check_config(path: Path, meta: dict[str, Any]) -> TrainConfig:
    """The config a checkpoint's metadata holds, rebuilt and checked against its method and
    its checksum; a CheckpointError naming the file otherwise."""
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(
            f"{path}: holds no config (the settings that rebuild its network); "
            "not a model file this version wrote"
        )
    try:
        config = from_dict(meta["config"], f"{path.name}: config")
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    if meta.get("method") != config.method:
        raise CheckpointError(f"{path}: method {meta.get('method')!r} does not match its config")
    if meta.get("config_sha256") != _config_hash(meta["config"]):
        raise CheckpointError(f"{path}: config does not match its checksum (edited by hand?)")
    return config


def load_checkpoint(path: str | Path, with_training_state: bool = False) -> Checkpoint:
    """Read and validate a checkpoint. Raises CheckpointError with a one-line reason."""
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_metadata(path)
    config = check_config(path, meta)
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable tensors ({exc})") from exc
    model_state = _group(tensors, "model/")
    if not model_state:
        raise CheckpointError(f"{path}: no model weights")
    for name, value in tensors.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: tensor {name} holds NaN or infinite values")
    info = {
        k: v
        for k, v in meta.items()
        if k not in ("config", "config_sha256", "format_version", "optim")
    }
    viewpoint_state = _group(tensors, "viewpoint/") or None
    if viewpoint_state is not None and "viewpoint" not in meta:
        raise CheckpointError(f"{path}: viewpoint estimator weights without their layout")
    if viewpoint_state is None and "viewpoint" in meta:
        raise CheckpointError(f"{path}: a viewpoint estimator layout without its weights")
    checkpoint = Checkpoint(
        config=config, model_state=model_state, info=info, viewpoint_state=viewpoint_state
    )
    if with_training_state:
        if "optim" not in meta:
            raise CheckpointError(f"{path}: holds no optimizer state to resume from")
        checkpoint.optim_state = _unflatten_optim(tensors, meta["optim"])
        checkpoint.rng_state = _group(tensors, "rng/")
    return checkpoint


def _prefixed(
    state: dict[str, torch.Tensor], prefix: str, dtype: torch.dtype | None
) -> dict[str, torch.Tensor]:
    """``state``'s tensors under ``prefix``, on the CPU, floating ones cast to ``dtype``."""
    tensors = {}
    for name, value in state.items():
        value = value.detach().cpu()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[f"{prefix}{name}"] = value.contiguous()
    return tensors


def _group(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def attach_viewpoint(
    path: str | Path,
    layout: dict[str, Any],
    state: dict[str, torch.Tensor],
    metrics: dict[str, Any],
    dtype: torch.dtype = torch.float16,
) -> Path:
    """Add (or replace) the viewpoint estimator in a checkpoint, rewriting it atomically;
    its model weights, training state and other metadata stay as they are."""
    from safetensors.torch import load_file, save

    path = Path(path)
    load_checkpoint(path)  # refuse to rewrite a file that does not validate
    meta = read_metadata(path)
    tensors = {k: v for k, v in load_file(str(path)).items() if not k.startswith("viewpoint/")}
    tensors.update(_prefixed(state, "viewpoint/", dtype))
    meta["viewpoint"] = {"layout": layout, "metrics": metrics}
    blob = save(tensors, metadata={"recon3d": json.dumps(meta)})
    atomic_write_bytes(path, lambda handle: handle.write(blob))
    return path
