"""Where training runs and in what precision: ``train.device`` and ``train.precision``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from fusionrec.errors import ConfigError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str, precision: str = "fp32") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; a CUDA device that is not there, or a
    reduced precision without CUDA, is refused in one line."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={device}: no CUDA GPU is visible here; use train.device=auto or cpu")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"train.device={device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if precision != "fp32" and not device.startswith("cuda"):
        raise ConfigError(f"train.precision={precision} is for CUDA (autocast); on {device} train in fp32")
    return device


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """The training step's forward pass under CUDA autocast at ``precision`` (nothing for fp32)."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=_DTYPES[precision]):
        yield


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """fp16 needs its loss scaled against underflow; bf16 and fp32 do not."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None
