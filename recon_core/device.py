"""Which torch device a run or a reconstruction uses."""

from __future__ import annotations

import os

import torch

from recon_core.request import check_device

__all__ = ["DeviceError", "select_device"]


class DeviceError(ValueError):
    """A device that is not there; the message is one line."""


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; otherwise ``cpu``, ``cuda``,
    ``cuda:N`` or ``mps``, refused in one line when torch does not see it. Under torchrun,
    plain ``cuda`` is the process's own GPU (``LOCAL_RANK``)."""
    check_device(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name}: asked for, but torch sees no CUDA device")
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        elif device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name}: torch sees {torch.cuda.device_count()} CUDA device(s)"
            )
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise DeviceError(f"device {name}: asked for, but torch sees no MPS device")
    return device
