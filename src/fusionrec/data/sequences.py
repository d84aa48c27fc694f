"""User sequences in time order, their side information, and vectorised sequence samplers.

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
import torch

from fusionrec.data.batches import PAD_ITEM, SequenceBatch
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
            f"data.split.method=loo, temporal, global_time or cold_user (got {method})")
    U = dataset.num_users
    counts = [np.bincount(users[split == code], minlength=U) for code in (TRAIN, VALID, TEST)]
    starts = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=U))]).astype(np.int64)
    return Sequences(inter["item"].to_numpy().astype(np.int64)[order], order, starts, *counts,
                     None if ts is None else ts[order].astype(np.int64))


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


def window(end: np.ndarray, begin: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the last ``length`` rows of each range ``[begin, end)``, left-padded.

    Returns:
        index (B, L) int64 (clipped to a valid row where padded) and valid (B, L) bool.
    """
    index = end[:, None] - length + np.arange(length)  # (B, L)
    valid = index >= begin[:, None]
    return np.where(valid, index, 0), valid


def cloze_mask(valid: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Cloze positions: each real slot with probability ``ratio``, and at least one per sequence.

    Shapes: valid (B, L) bool -> masked (B, L) bool.
    """
    draw = rng.random(valid.shape)
    masked = (draw < ratio) & valid
    none = ~masked.any(1) & valid.any(1)
    forced = np.where(valid, rng.random(valid.shape), -1.0).argmax(1)  # a random real slot per row
    masked[np.flatnonzero(none), forced[none]] = True
    return masked


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


def side_info(dataset: Dataset, item_side: tuple[str, ...] | list[str] = (),
              behaviour_side: tuple[str, ...] | list[str] = ()) -> SideInfo:
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
    for name in item_side:
        if name in dataset.modalities:
            m = dataset.modalities[name]
            if m.kind == "regions":
                raise ConfigError(f"item side information {name!r} is a region grid; sequential models take "
                                  "dense or categorical modalities")
            table = np.zeros((I + 2, m.dim), dtype=np.float32)
            table[:I] = m.values * m.mask[:, None]
            features.append(SideFeature(name, "dense", m.dim, "item"))
        elif name in columns:
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
            raise ConfigError(f"behaviour side information {name!r} needs a "
                              f"{'rating' if name == 'rating' else 'timestamp'} column, which {dataset.name} lacks")
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


class SequenceSampler:
    """Training and scoring batches of left-padded sequences.

    Training (``objective``): ``next`` gives one sample per user with at least two training
    items, input = the training sequence without its last item, target at every slot = the item
    that follows (SASRec); ``cloze`` gives one sample per user with a training item, input = the
    training sequence with a random ``mask_ratio`` share of slots (at least one) replaced by the
    mask token, targets = the original items there (BERT4Rec). ``windows="last"`` (the papers'
    samplers) keeps only the last ``max_length`` items of each user, so the older part of a long
    history is never a target; ``windows="all"`` cuts the training sequence into consecutive,
    non-overlapping windows of ``max_length`` targets from the end, so an epoch uses every training
    interaction as a target exactly once (one pass over the data, as a prefix-augmented epoch of
    RecBole's does, with the history of each target truncated at its window's start).
    An epoch visits the samples in a random order drawn from ``(seed, epoch)``, so a resumed run
    draws exactly what an uninterrupted one would.

    Scoring: the input before a view's targets (see :func:`view`), the last ``max_length`` items;
    ``cloze`` models get the last ``max_length - 1`` items and a mask token in the last slot.

    With ``num_negatives > 0`` every target slot gets that many items drawn uniformly from those
    the user never interacted with in training (rejection sampling in bulk); with ``shared_negatives``
    a batch gets ``num_negatives`` distinct items, uniform over all items, shared by every target (the loss
    masks a target's own item among them; a shared item may be one the user has seen).
    """

    def __init__(self, seq: Sequences, num_items: int, *, objective: Literal["next", "cloze"] = "next",
                 max_length: int = 50, mask_ratio: float = 0.2, num_negatives: int = 0,
                 shared_negatives: bool = False, side: SideInfo | None = None, batch_size: int = 128, seed: int = 0,
                 windows: Literal["last", "all"] = "last") -> None:
        if objective not in ("next", "cloze"):
            raise ConfigError(f"unknown sequence objective {objective!r}; choose next or cloze")
        if windows not in ("last", "all"):
            raise ConfigError(f"unknown sequence windows {windows!r}; choose last or all")
        if max_length < (2 if objective == "cloze" else 1):
            raise ConfigError(f"max_length must be at least {2 if objective == 'cloze' else 1}, got {max_length}")
        self.seq = seq
        self.num_items = num_items
        self.objective = objective
        self.max_length = max_length
        self.mask_ratio = mask_ratio
        self.num_negatives = num_negatives
        self.shared_negatives = shared_negatives
        if shared_negatives and num_negatives > num_items:
            raise ConfigError(f"{num_negatives} shared negatives per batch but only {num_items} items")
        self.side = side or SideInfo((), {}, {})
        self.batch_size = batch_size
        self.seed = seed
        self.begin, self.end, _, _ = view(seq, "train")
        shortest = 2 if objective == "next" else 1  # a next-item sample needs an input and a target
        self.train_users = np.flatnonzero(self.end - self.begin >= shortest)
        self.sample_users, self.sample_ends = self._windows(windows, shortest)
        # behaviour codes aligned with the rows of seq, with a trailing 0 for padding
        self.row_codes = {n: c[seq.rows] for n, c in self.side.row_codes.items()}
        user_of_row = np.repeat(np.arange(seq.num_users), np.diff(seq.starts))
        train_rows = np.flatnonzero(np.arange(len(seq.items)) < (seq.starts[:-1] + seq.num_train)[user_of_row])
        self.train_keys = np.unique(user_of_row[train_rows] * num_items + seq.items[train_rows])

    def _windows(self, windows: str, shortest: int) -> tuple[np.ndarray, np.ndarray]:
        """Training samples as (user, exclusive end row of the window's targets)."""
        users = self.train_users
        if windows == "last":
            return users, self.end[users]
        # window k of a user ends max_length targets before window k - 1; it exists while it still
        # holds a target (and, for next-item, an input before it)
        counts = (self.end[users] - self.begin[users] - shortest) // self.max_length + 1
        sample_users = np.repeat(users, counts)
        k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)  # 0, 1, .. per user
        return sample_users, self.end[sample_users] - k * self.max_length

    def __len__(self) -> int:
        return (len(self.sample_users) + self.batch_size - 1) // self.batch_size

    def epoch(self, epoch: int):
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.sample_users))
        for start in range(0, len(order), self.batch_size):
            chosen = order[start:start + self.batch_size]
            yield self.train_batch(self.sample_users[chosen], rng, self.sample_ends[chosen])

    def train_batch(self, users: np.ndarray, rng: np.random.Generator, ends: np.ndarray | None = None) -> SequenceBatch:
        """A training batch of ``users``' windows ending at row ``ends`` (default: their whole training sequence)."""
        begin = self.begin[users]
        end = self.end[users] if ends is None else ends
        if self.objective == "next":  # input rows [begin, end - 1), targets shifted by one
            L = int(min(self.max_length, (end - 1 - begin).max()))
            index, valid = window(end - 1, begin, L)
            targets = np.where(valid, self.seq.items[index + 1], PAD_ITEM)
            masked = np.zeros_like(valid)
        else:
            L = int(min(self.max_length, (end - begin).max()))
            index, valid = window(end, begin, L)
            masked = cloze_mask(valid, self.mask_ratio, rng)
            targets = np.where(masked, self.seq.items[index], PAD_ITEM)
        negatives = self.negatives(users, targets, rng) if self.num_negatives else None
        return self._batch(users, index, valid, masked, targets, negatives, None)

    def score_batch(self, users: np.ndarray, split: str, candidates: torch.Tensor | None = None) -> SequenceBatch:
        """The input sequences of ``users`` for predicting their ``split`` targets."""
        begin, end, _, _ = view(self.seq, split)
        begin, end = begin[users], end[users]
        cloze = self.objective == "cloze"
        L = int(min(self.max_length - cloze, max(int((end - begin).max(initial=0)), 1)))
        index, valid = window(end, begin, L)
        masked = np.zeros_like(valid)
        if cloze:  # one more slot holding the mask token: the item to predict
            index = np.concatenate([index, np.zeros((len(users), 1), dtype=np.int64)], 1)
            valid = np.concatenate([valid, np.ones((len(users), 1), dtype=bool)], 1)
            masked = np.concatenate([masked, np.ones((len(users), 1), dtype=bool)], 1)
        return self._batch(users, index, valid, masked, None, None, candidates)

    def negatives(self, users: np.ndarray, targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(B, L, N_neg) items outside each user's training interactions, or (N_neg,) distinct items shared
        by the batch (``shared_negatives``)."""
        if self.shared_negatives:
            return rng.choice(self.num_items, self.num_negatives, replace=False)
        rows = np.repeat(users, targets.shape[1] * self.num_negatives)
        neg = rng.integers(0, self.num_items, len(rows))
        bad = np.flatnonzero(self._seen(rows, neg))
        for _ in range(100):
            if not len(bad):
                break
            neg[bad] = rng.integers(0, self.num_items, len(bad))
            bad = bad[self._seen(rows[bad], neg[bad])]
        return neg.reshape(*targets.shape, self.num_negatives)

    def _seen(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.num_items + items
        pos = np.minimum(np.searchsorted(self.train_keys, keys), max(len(self.train_keys) - 1, 0))
        return self.train_keys[pos] == keys if len(self.train_keys) else np.zeros(len(keys), dtype=bool)

    def _batch(self, users: np.ndarray, index: np.ndarray, valid: np.ndarray, masked: np.ndarray,
               targets: np.ndarray | None, negatives: np.ndarray | None,
               candidates: torch.Tensor | None) -> SequenceBatch:
        L = index.shape[1]
        tokens = np.where(valid, np.where(masked, self.num_items, self.seq.items[index]), PAD_ITEM)  # (B, L)
        positions = np.where(valid, L - 1 - np.arange(L), -1)  # (B, L) distance from the end
        lookup = np.where(tokens == PAD_ITEM, self.num_items + 1, tokens)  # mask -> row I, pad -> row I + 1
        side = {n: torch.from_numpy(t[lookup]) for n, t in self.side.item_tables.items()}
        known = valid & ~masked  # a masked or padded slot reveals nothing about its interaction
        side.update({n: torch.from_numpy(np.where(known, c[index], 0)) for n, c in self.row_codes.items()})
        return SequenceBatch(
            users=torch.from_numpy(np.asarray(users, dtype=np.int64)),
            items=torch.from_numpy(tokens),
            positions=torch.from_numpy(positions),
            targets=None if targets is None else torch.from_numpy(targets),
            negatives=None if negatives is None else torch.from_numpy(negatives),
            side=side,
            candidates=candidates,
        )
