"""The sequential task's sampler: training and scoring batches cut from the views of
:mod:`fusionrec.data.sequences` with one gather (no Python loop over users or positions).

Shapes:
    N interactions, U users, I items, B batch, L sequence length, N_neg negatives.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from fusionrec.data.batches import PAD_ITEM, SequenceBatch
from fusionrec.data.sequences import Sequences, SideInfo, view
from fusionrec.errors import ConfigError


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

    With ``num_negatives > 0`` every target slot gets that many items drawn uniformly from the
    ``negative_pool`` items the user never interacted with in training (rejection sampling in bulk);
    with ``shared_negatives`` a batch gets ``num_negatives`` distinct pool items shared by every target
    (the loss masks a target's own item among them; a shared item may be one the user has seen).
    ``negative_pool="train"`` (default, as for top-K) draws only items that occur in training, so an item
    that exists only in validation or test is never pushed down by training; ``"all"`` draws every item.
    """

    def __init__(
        self,
        seq: Sequences,
        num_items: int,
        *,
        objective: Literal["next", "cloze"] = "next",
        max_length: int = 50,
        mask_ratio: float = 0.2,
        num_negatives: int = 0,
        shared_negatives: bool = False,
        side: SideInfo | None = None,
        batch_size: int = 128,
        seed: int = 0,
        windows: Literal["last", "all"] = "last",
        negative_pool: Literal["train", "all"] = "train",
    ) -> None:
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
        if negative_pool not in ("train", "all"):
            raise ConfigError(f"unknown negative_pool {negative_pool!r}; choose train or all")
        self.pool = (
            np.unique(seq.items[train_rows]) if negative_pool == "train" else np.arange(num_items, dtype=np.int64)
        )
        if num_negatives and len(self.pool) < (num_negatives if shared_negatives else 2):
            raise ConfigError(
                f"{num_negatives} negatives requested but the negative pool ({negative_pool}) has only "
                f"{len(self.pool)} items"
            )

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
            chosen = order[start : start + self.batch_size]
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
            return rng.choice(self.pool, self.num_negatives, replace=False)
        rows = np.repeat(users, targets.shape[1] * self.num_negatives)
        neg = self.pool[rng.integers(0, len(self.pool), len(rows))]
        bad = np.flatnonzero(self._seen(rows, neg))
        for _ in range(100):
            if not len(bad):
                break
            neg[bad] = self.pool[rng.integers(0, len(self.pool), len(bad))]
            bad = bad[self._seen(rows[bad], neg[bad])]
        return neg.reshape(*targets.shape, self.num_negatives)

    def _seen(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.num_items + items
        pos = np.minimum(np.searchsorted(self.train_keys, keys), max(len(self.train_keys) - 1, 0))
        return self.train_keys[pos] == keys if len(self.train_keys) else np.zeros(len(keys), dtype=bool)

    def history_batch(self, histories: list[np.ndarray], candidates: torch.Tensor | None = None) -> SequenceBatch:
        """Scoring input for item histories given directly (most recent last), e.g. a new user's clicks sent
        to the server: user index -1 (unknown), no behaviour side information (codes 0, "missing")."""
        cloze = self.objective == "cloze"
        L = int(max(1, min(self.max_length - cloze, max((len(h) for h in histories), default=1))))
        slot_items = np.zeros((len(histories), L), dtype=np.int64)
        valid = np.zeros((len(histories), L), dtype=bool)
        for row, history in enumerate(histories):
            kept = np.asarray(history, dtype=np.int64)[-L:]
            slot_items[row, L - len(kept) :], valid[row, L - len(kept) :] = kept, True
        masked = np.zeros_like(valid)
        if cloze:  # the slot to predict, as in score_batch
            slot_items = np.concatenate([slot_items, np.zeros((len(histories), 1), dtype=np.int64)], 1)
            valid = np.concatenate([valid, np.ones((len(histories), 1), dtype=bool)], 1)
            masked = np.concatenate([masked, np.ones((len(histories), 1), dtype=bool)], 1)
        no_behaviour = {n: np.zeros(valid.shape, dtype=c.dtype) for n, c in self.row_codes.items()}
        users = np.full(len(histories), -1, dtype=np.int64)
        return self._assemble(users, slot_items, valid, masked, no_behaviour, None, None, candidates)

    def _batch(
        self,
        users: np.ndarray,
        index: np.ndarray,
        valid: np.ndarray,
        masked: np.ndarray,
        targets: np.ndarray | None,
        negatives: np.ndarray | None,
        candidates: torch.Tensor | None,
    ) -> SequenceBatch:
        known = valid & ~masked  # a masked or padded slot reveals nothing about its interaction
        behaviour = {n: np.where(known, c[index], 0) for n, c in self.row_codes.items()}
        return self._assemble(users, self.seq.items[index], valid, masked, behaviour, targets, negatives, candidates)

    def _assemble(
        self,
        users: np.ndarray,
        slot_items: np.ndarray,
        valid: np.ndarray,
        masked: np.ndarray,
        behaviour: dict[str, np.ndarray],
        targets: np.ndarray | None,
        negatives: np.ndarray | None,
        candidates: torch.Tensor | None,
    ) -> SequenceBatch:
        L = slot_items.shape[1]
        tokens = np.where(valid, np.where(masked, self.num_items, slot_items), PAD_ITEM)  # (B, L)
        positions = np.where(valid, L - 1 - np.arange(L), -1)  # (B, L) distance from the end
        lookup = np.where(tokens == PAD_ITEM, self.num_items + 1, tokens)  # mask -> row I, pad -> row I + 1
        side = {n: torch.from_numpy(t[lookup]) for n, t in self.side.item_tables.items()}
        side.update({n: torch.from_numpy(codes) for n, codes in behaviour.items()})
        return SequenceBatch(
            users=torch.from_numpy(np.asarray(users, dtype=np.int64)),
            items=torch.from_numpy(tokens),
            positions=torch.from_numpy(positions),
            targets=None if targets is None else torch.from_numpy(targets),
            negatives=None if negatives is None else torch.from_numpy(negatives),
            side=side,
            candidates=candidates,
        )
