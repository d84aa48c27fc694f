"""Typed configuration of data preparation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field, field_validator

from fusionrec.config import StrictConfig, parse_overrides
from fusionrec.registry import READERS

SplitMethod = Literal["random", "loo", "temporal", "global_time", "column", "files", "cold_item", "cold_user"]


class SplitConfig(StrictConfig):
    """How interactions are divided into train / valid / test.

    - ``random``: per-user random ratio (seeded); every user keeps at least one training item.
    - ``loo``: leave-one-out by time: each user's last interaction is test, the one before valid.
    - ``temporal``: per-user ratio in time order (oldest for training).
    - ``global_time``: one global cut in time at the ratio quantiles; valid/test rows of users or
      items never seen in training are dropped (counted in the manifest).
    - ``column``: the reader supplied a split column (MMRec ``x_label``, a ``split`` column).
    - ``files``: ``path`` is a folder with ``train``, ``valid`` and ``test`` files of raw
      (user, item) pairs (tab- or comma-separated, with a header) assigning every interaction.
    - ``cold_item``: a ``cold_item_ratio`` share of items is held out entirely, half of them for
      valid and half for test; the remaining items' interactions are training.
    - ``cold_user``: users with 2 to ``cold_user_max_interactions`` interactions are held out
      entirely as new users, half of them (seeded) for valid and half for test; the other users'
      interactions are training. For sequential models, whose input is a new user's earlier items.

    ``cold_users`` says what happens to valid/test rows of users without any training interaction:
    ``drop`` them (counted in the manifest's ``meta.split``), or ``error``. ``auto`` drops for
    ``global_time`` and ``cold_item`` (where it is part of the protocol) and errors for ``column``
    and ``files`` (a given split should not be changed silently); the per-user methods never
    produce such rows.
    """

    method: SplitMethod = "random"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 2024
    path: str | None = None
    cold_item_ratio: float = Field(0.2, gt=0.0, lt=1.0)
    cold_user_max_interactions: int = Field(10, ge=2)
    cold_users: Literal["auto", "drop", "error"] = "auto"

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(r < 0 for r in value) or abs(sum(value) - 1.0) > 1e-6 or value[0] <= 0:
            raise ValueError(f"ratios must be non-negative, train > 0, and sum to 1 (got {value})")
        return value


class DataConfig(StrictConfig):
    """Where the data comes from and how it is prepared.

    ``name`` is a registered data set (``fusionrec list datasets``) or a path: a prepared fusionrec
    folder, an MMRec folder, a RecBole atomic-file folder, or a CSV/Parquet file.
    """

    name: str = "ml-100k"
    format: str = Field(
        "auto",
        description="auto, or a registered reader (fusionrec.registry.READERS): fusionrec, mmrec, recbole, csv, ...",
    )
    split: SplitConfig = SplitConfig()
    kcore: int = Field(0, ge=0)
    implicit_threshold: float | None = None
    duplicates: Literal["error", "first", "last"] = "error"
    columns: dict[str, str] = Field(default_factory=dict)
    modalities: dict[str, str] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict, description="options of a built-in data set")

    @field_validator("format")
    @classmethod
    def _registered_format(cls, value: str) -> str:
        # READERS is filled by fusionrec.data.readers, which importing fusionrec.data loads.
        choices = ["auto", *READERS.names()]
        if value not in choices:
            raise ValueError(f"unknown data format {value!r}; choose one of: {', '.join(choices)}")
        return value


def parse_data_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """``["data.columns.user=userId", "split.method=loo"]`` -> a ``data`` section tree (the ``data.``
    prefix is optional, as in ``fusionrec data prepare SOURCE KEY=VALUE ...``)."""
    return parse_overrides(pair[len("data.") :] if pair.startswith("data.") else pair for pair in pairs)
