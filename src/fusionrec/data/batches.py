"""Typed batches handed to models (never string-keyed dicts)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor


class _Batch:
    def to(self, device: torch.device | str):
        moved = {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]
        moved = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in moved.items()}
        return replace(self, **moved)  # type: ignore[type-var]

    def __len__(self) -> int:
        return int(getattr(self, fields(self)[0].name).shape[0])  # type: ignore[arg-type]


@dataclass(frozen=True)
class PairBatch(_Batch):
    """Training triples for pairwise losses. Shapes: users (B,), pos_items (B,), neg_items (B, N)."""

    users: Tensor
    pos_items: Tensor
    neg_items: Tensor


@dataclass(frozen=True)
class UserBatch(_Batch):
    """Users to score against ``items`` (C,), or against every item when ``items`` is None."""

    users: Tensor
    items: Tensor | None = None
