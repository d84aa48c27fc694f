"""Typed batches handed to models (never string-keyed dicts)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

import torch
from torch import Tensor


def _map(value: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    if isinstance(value, Tensor):
        return fn(value)
    if isinstance(value, tuple):
        return tuple(_map(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map(v, fn) for k, v in value.items()}
    return value  # None, or a plain setting


class _Batch:
    shared_fields: ClassVar[tuple[str, ...]] = ()
    """Fields that are not per row (a candidate list every row is scored against): every shard keeps them."""

    def apply(self, fn: Callable[[Tensor], Tensor], skip: tuple[str, ...] = ()):
        """A copy with ``fn`` applied to every tensor of every field (inside tuples and dicts too),
        except the fields named in ``skip``."""
        changed = {
            f.name: _map(getattr(self, f.name), fn)
            for f in fields(self)  # type: ignore[arg-type]
            if f.name not in skip
        }
        return replace(self, **changed)  # type: ignore[type-var]

    def shard(self, rank: int, world_size: int):
        """Rows ``[B·rank/W, B·(rank+1)/W)`` of every per-row field: this rank's part of a global batch
        in data-parallel training (tensors, tuples and dicts of tensors are cut along their first axis)."""
        rows = len(self)
        start, stop = rows * rank // world_size, rows * (rank + 1) // world_size
        return self.apply(lambda t: t[start:stop], skip=self.shared_fields)

    def to(self, device: torch.device | str, non_blocking: bool = False):
        return self.apply(lambda t: t.to(device, non_blocking=non_blocking))

    def pinned(self):
        """A copy in page-locked memory, so that ``to(cuda, non_blocking=True)`` overlaps the copy."""
        return self.apply(lambda t: t.pin_memory())

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

    shared_fields = ("items",)


@dataclass(frozen=True)
class SequenceBatch(_Batch):
    """Left-padded item sequences (most recent item last) with aligned side information.

    Tokens in ``items``: an item index ``0..I-1``, :data:`PAD_ITEM` (-1) before the sequence starts,
    or the mask token ``I`` (Cloze training; the slot to predict at inference for BERT-style models).

    Attributes:
        users: (B,) user indices; -1 for a user unknown to the data set (a history sent to the server),
            whom a model that reads user ids must treat as a new user.
        items: (B, L) input tokens.
        positions: (B, L) distance from the end of the sequence (0 = last slot), -1 at padding, so
            a sequence's positions do not depend on how much padding the batch adds.
        targets: (B, L) item to predict at each slot, -1 where there is none (None when scoring).
        negatives: (B, L, N) sampled negative items for sampled losses, (N,) when shared by every
            target of the batch, else None.
        side: side information of each slot, by name: ``(B, L)`` int64 codes (0 = missing, padded
            or masked) or ``(B, L, F)`` float features (zeros there). Item side information (genre,
            year, text) belongs to the slot's item; behaviour side information (rating, time gap)
            to the interaction.
        candidates: (C,) items to score, or None for all items.
    """

    users: Tensor
    items: Tensor
    positions: Tensor
    targets: Tensor | None = None
    negatives: Tensor | None = None
    side: dict[str, Tensor] = field(default_factory=dict)
    candidates: Tensor | None = None

    @property
    def mask(self) -> Tensor:
        """(B, L) bool, True at real (non-padded) slots."""
        return self.items != PAD_ITEM

    shared_fields = ("candidates",)

    def shard(self, rank: int, world_size: int) -> SequenceBatch:
        part = super().shard(rank, world_size)
        if self.negatives is not None and self.negatives.dim() == 1:  # (N,): shared by every target
            part = replace(part, negatives=self.negatives)
        return part


PAD_ITEM = -1
"""Padding token of :class:`SequenceBatch` sequences."""
