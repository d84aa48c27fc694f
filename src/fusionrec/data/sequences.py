"""User sequences in time order and their side information (the sequential task's sampler, in
tasks/sequential/sampler.py, cuts its batches from these views).

Every user's interactions are flattened into one array ordered by (user, split, time), so under
a per-user temporal split a user's rows are ``[train ...][valid ...][test ...]`` and every view
the sequential protocol needs (the training sequence, the input before a validation or test
target) is one contiguous range per user. Batches are cut from those ranges with one gather:
the last ``L`` rows before a range end, left-padded (no Python loop over users or positions).

Shapes:
    N interactions, U users, I items, B batch, L sequence length, F feature dim, N_neg negatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fusionrec.data.dataset import TEST, TRAIN, VALID, Dataset
from fusionrec.errors import ConfigError, DataError

BEHAVIOUR_SIDE = ("position", "rating", "time_gap")
"""Behaviour side information a sequential model may ask for (position is always carried)."""

NUM_GAP_CODES = 64
MAX_ITEM_CODES = 100_000


@dataclass(frozen=True)
class Sequences:
    """All interactions ordered by (user, split, time), with each user's split segments.

    Attributes:
        items: (N,) item of each row. rows: (N,) the row in ``dataset.interactions``.
        starts: (U + 1,) where each user's rows begin. num_train / num_valid / num_test: (U,).
        timestamps: (N,) or None.
    """

    items: np.ndarray
    rows: np.ndarray
    starts: np.ndarray
    num_train: np.ndarray
    num_valid: np.ndarray
    num_test: np.ndarray
    timestamps: np.ndarray | None

    @property
    def num_users(self) -> int:
        return len(self.starts) - 1


def user_sequences(dataset: Dataset) -> Sequences:
    """Order every user's interactions by time and check the sequential protocol's split rule.

    The rule: a user's validation interactions are no earlier than its training ones, and its test
    interactions no earlier than both (ties allowed), so the input before a target never contains
    later interactions. ``loo``, ``temporal``, ``global_time`` and ``cold_user`` splits satisfy it;
    a ``random`` split does not and is refused. Without timestamps, the row order is the time.
    """
    inter = dataset.interactions
    users = inter["user"].to_numpy().astype(np.int64)
    split = inter["split"].to_numpy()
    if ((split != TRAIN) & (split != VALID) & (split != TEST)).any():
        raise DataError(f"{dataset.name}: the sequential task needs a split data set (every row train, valid or test)")
    rows = np.arange(len(inter), dtype=np.int64)
    ts = inter["timestamp"].to_numpy() if "timestamp" in inter else None
    time_key = ts if ts is not None else rows
    order = np.lexsort((rows, time_key, split, users))
    sorted_users = users[order]
    same_user = sorted_users[1:] == sorted_users[:-1]
    backwards = same_user & (time_key[order][1:] < time_key[order][:-1])
    if backwards.any():
        bad = np.unique(sorted_users[1:][backwards])
        method = (dataset.meta.get("split") or {}).get("method", "?")
        raise DataError(
            f"{dataset.name}: {len(bad)} user(s) have validation or test interactions earlier than training ones "
            f"(first: user {dataset.user_ids[bad[0]]!r}); the sequential task needs a per-user temporal split: "
            f"data.split.method=loo, temporal, global_time or cold_user (got {method})"
        )
    U = dataset.num_users
    num_train, num_valid, num_test = (np.bincount(users[split == code], minlength=U) for code in (TRAIN, VALID, TEST))
    starts = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=U))]).astype(np.int64)
    return Sequences(
        inter["item"].to_numpy().astype(np.int64)[order],
        order,
        starts,
        num_train,
        num_valid,
        num_test,
        None if ts is None else ts[order].astype(np.int64),
    )


def view(seq: Sequences, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Input and target ranges of every user for ``split``.

    - ``train``: input = the training rows (the sequence models learn from); no targets.
    - ``valid``: input = training rows, targets = validation rows.
    - ``test``: input = training + validation rows, targets = test rows.
    - ``next``: input = every row (to recommend what comes after the data); no targets.

    A user without training rows (``cold_user`` split) is a new user: its input is its own rows
    before the split's last one, which is the single target.

    Returns:
        input begin, input end, target begin, target end: four (U,) int64 arrays (rows of ``seq``).
    """
    s = seq.starts[:-1]
    ends = seq.starts[1:]
    if split == "train":
        return s, s + seq.num_train, s, s
    if split == "next":
        return s, ends, ends, ends
    if split == "valid":
        tb, te = s + seq.num_train, s + seq.num_train + seq.num_valid
    elif split == "test":
        tb, te = s + seq.num_train + seq.num_valid, ends
    else:
        raise ConfigError(f"unknown sequence view {split!r}; choose train, valid, test or next")
    cold = (seq.num_train == 0) & (te > tb)
    tb = np.where(cold, te - 1, tb)  # a warm user's input ends where its targets begin
    return s, tb, tb, te


# ---------------------------------------------------------------------------------------------------
# Side information


@dataclass(frozen=True)
class SideFeature:
    """One side feature: ``codes`` (int64, ``dim`` codes with 0 = missing) or ``dense`` (F = ``dim``)."""

    name: str
    kind: Literal["codes", "dense"]
    dim: int
    level: Literal["item", "behaviour"]


@dataclass(frozen=True)
class SideInfo:
    """The side features a model asked for and their tables.

    ``item_tables[name]`` is ``(I + 2, ...)``: one row per item, then two zero rows for the mask
    token (row I) and padding (row I + 1). ``row_codes[name]`` gives a behaviour code per
    interaction row of the data set (0 = missing).
    """

    features: tuple[SideFeature, ...]
    item_tables: dict[str, np.ndarray]
    row_codes: dict[str, np.ndarray]


def side_info(
    dataset: Dataset, item_side: tuple[str, ...] | list[str] = (), behaviour_side: tuple[str, ...] | list[str] = ()
) -> SideInfo:
    """Build the requested side features of ``dataset``.

    Item side information: a modality (``dense`` or ``categorical`` multi-hot, used as is) or a
    column of the item table (each distinct value a code, empty = missing; e.g. ``year``).
    Behaviour side information: ``rating`` (each distinct value a code, or 32 quantile buckets when
    there are more than 64), ``time_gap`` (log2 buckets of the time since the user's previous
    interaction; code 1 = first interaction) and ``position`` (carried by every batch, no table).
    """
    features: list[SideFeature] = []
    tables: dict[str, np.ndarray] = {}
    codes: dict[str, np.ndarray] = {}
    columns = [c for c in (dataset.items.columns if dataset.items is not None else ()) if c != "item"]
    I = dataset.num_items
    table: np.ndarray  # (I + 2, dim) float32 for a dense modality, (I + 2,) int64 codes for a column
    for name in item_side:
        if name in dataset.modalities:
            m = dataset.modalities[name]
            if m.kind == "regions":
                raise ConfigError(
                    f"item side information {name!r} is a region grid; sequential models take "
                    "dense or categorical modalities"
                )
            table = np.zeros((I + 2, m.dim), dtype=np.float32)
            table[:I] = m.values * m.mask[:, None]
            features.append(SideFeature(name, "dense", m.dim, "item"))
        elif name in columns:
            assert dataset.items is not None  # columns is empty without an item table
            raw = dataset.items[name].fillna("").astype(str).str.strip().to_numpy()
            values, inverse = np.unique(raw, return_inverse=True)
            if len(values) > MAX_ITEM_CODES:
                raise ConfigError(f"item column {name!r} has {len(values)} distinct values; too many to embed as codes")
            code_of = np.arange(1, len(values) + 1)
            code_of[values == ""] = 0
            table = np.zeros(I + 2, dtype=np.int64)
            table[:I] = code_of[inverse]
            features.append(SideFeature(name, "codes", len(values) + 1, "item"))
        else:
            have = ", ".join(list(dataset.modalities) + columns) or "none"
            raise ConfigError(f"unknown item side information {name!r} in {dataset.name}; choose from: {have}")
        tables[name] = table
    inter = dataset.interactions
    for name in behaviour_side:
        if name == "position":
            continue
        if name == "rating" and "rating" in inter:
            values = inter["rating"].to_numpy()
            distinct = np.unique(values)
            if len(distinct) <= 64:
                code = 1 + np.searchsorted(distinct, values)
                dim = len(distinct) + 1
            else:
                edges = np.quantile(values, np.linspace(0, 1, 33)[1:-1])
                code, dim = 1 + np.searchsorted(edges, values, side="right"), 33
            codes[name] = code.astype(np.int64)
        elif name == "time_gap" and "timestamp" in inter:
            codes[name], dim = _time_gap_codes(inter["user"].to_numpy(), inter["timestamp"].to_numpy()), NUM_GAP_CODES
        elif name in BEHAVIOUR_SIDE:
            raise ConfigError(
                f"behaviour side information {name!r} needs a "
                f"{'rating' if name == 'rating' else 'timestamp'} column, which {dataset.name} lacks"
            )
        else:
            raise ConfigError(f"unknown behaviour side information {name!r}; choose from: {', '.join(BEHAVIOUR_SIDE)}")
        features.append(SideFeature(name, "codes", dim, "behaviour"))
    return SideInfo(tuple(features), tables, codes)


def _time_gap_codes(users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Code of log2(1 + seconds since the user's previous interaction); 1 for a first interaction."""
    order = np.lexsort((np.arange(len(users)), timestamps, users))
    u, t = users[order], timestamps[order].astype(np.float64)
    gap = np.diff(t, prepend=t[:1])
    first = np.concatenate([[True], u[1:] != u[:-1]])
    code = np.where(first, 1, 2 + np.minimum(np.floor(np.log2(1.0 + np.maximum(gap, 0.0))), NUM_GAP_CODES - 3))
    out = np.empty(len(users), dtype=np.int64)
    out[order] = code.astype(np.int64)
    return out


# ---------------------------------------------------------------------------------------------------
# Batches
