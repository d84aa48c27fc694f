"""The top-K task's vectorised training sampler: (user, positive, negatives) triples."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from fusionrec.data.batches import PairBatch
from fusionrec.errors import DataError


class PairSampler:
    """One epoch = every training (user, item) pair once, in a seeded random order, each with
    ``num_negatives`` items drawn uniformly from those the user never interacted with in training.

    The epoch's order and negatives are a function of ``(seed, epoch)`` only, so a resumed run
    draws exactly what an uninterrupted one would. ``rank``/``world_size`` give each data-parallel
    process a disjoint, equally sized share of every epoch.

    ``negative_pool`` says which items may be drawn as negatives: ``"train"`` (default) only items
    with at least one training interaction, so items that exist only in validation or test (all of
    them under a cold-start-item split) are never pushed down by training: a model learns nothing
    about them beyond their content, as if they arrived after training; ``"all"`` every item
    (RecBole's convention), which tells the model which items are absent from training.

    Negatives are sampled in bulk and only the collisions with positives are redrawn, so the cost is
    O(pairs) vectorised work, with no Python loop over users or pairs.
    """

    def __init__(
        self,
        train: sp.csr_matrix,
        batch_size: int,
        num_negatives: int = 1,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        negative_pool: str = "train",
    ) -> None:
        train = train.tocsr()
        self.num_users, self.num_items = train.shape
        coo = train.tocoo()
        self.users = coo.row.astype(np.int64)
        self.items = coo.col.astype(np.int64)
        self.positive_keys = np.sort(self.users * self.num_items + self.items)
        if negative_pool == "train":
            self.pool = np.unique(self.items)
        elif negative_pool == "all":
            self.pool = np.arange(self.num_items, dtype=np.int64)
        else:
            raise DataError(f"negative_pool must be 'train' or 'all', got {negative_pool!r}")
        full = np.bincount(self.users, minlength=self.num_users)
        if (full >= len(self.pool)).any():
            user = int(np.flatnonzero(full >= len(self.pool))[0])
            raise DataError(
                f"user index {user} has a training interaction with every item that can be a negative, "
                "so no negative can be sampled; drop such users (or use a data set with more items)"
            )
        self.batch_size = batch_size
        self.num_negatives = num_negatives
        self.seed = seed
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        per_rank = len(self.users) // self.world_size
        return (per_rank + self.batch_size - 1) // self.batch_size

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.num_items + items
        # looked up in sorted order, the queries walk the sorted positives once instead of missing the
        # cache on every query: 15.2 -> 3.0 s for 8M queries into 8M positives (10^7 interactions)
        order = np.argsort(keys)
        sorted_keys = keys[order]
        pos = np.minimum(np.searchsorted(self.positive_keys, sorted_keys), len(self.positive_keys) - 1)
        found = np.empty(len(keys), dtype=bool)
        found[order] = self.positive_keys[pos] == sorted_keys
        return found

    def sample_negatives(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(len(users), num_negatives)`` items that are not training positives of their user."""
        rows = np.repeat(users, self.num_negatives)
        neg = self.pool[rng.integers(0, len(self.pool), len(rows))]
        bad = np.flatnonzero(self.is_positive(rows, neg))
        while len(bad):
            neg[bad] = self.pool[rng.integers(0, len(self.pool), len(bad))]
            bad = bad[self.is_positive(rows[bad], neg[bad])]
        return neg.reshape(len(users), self.num_negatives)

    def epoch(self, epoch: int) -> Iterator[PairBatch]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.users))
        per_rank = len(order) // self.world_size
        order = order[self.rank * per_rank : (self.rank + 1) * per_rank]
        negatives = self.sample_negatives(self.users[order], rng)
        users = torch.from_numpy(self.users[order])
        items = torch.from_numpy(self.items[order])
        negs = torch.from_numpy(negatives)
        for start in range(0, len(order), self.batch_size):
            end = start + self.batch_size
            yield PairBatch(users[start:end], items[start:end], negs[start:end])
