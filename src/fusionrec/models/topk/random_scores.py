"""Random scores: the chance floor of a top-K table.

Every (user, item) pair gets a score drawn uniformly from [0, 1), a fixed function of
``(seed, user, item)``:

    x̂_ui = h(h(h(seed) + u) + i) / 2^32,    h = a 32-bit integer mixing function ("lowbias32")

with the top 24 bits kept, so the score is exact in float32 and strictly below 1. The score of a pair
does not depend on which other users or items are scored with it: evaluation chunked over users or
items gives the very scores of one unchunked call, and a run rebuilt from its config scores the same.
Different seeds give independent-looking draws, so a mean over seeds (``model.seed``) is a mean over
random rankings.

It has no parameters, so ``fit()`` does not optimise it and evaluates it once on validation (status
``closed_form``); ``loss()`` raises a :class:`~fusionrec.errors.FusionrecError` saying so.

Note:
    Scores take 2^24 distinct values: two items of one user tie with probability about 2^-24 per
    pair, and ties are ranked pessimistically by the evaluator. No data enters the scores except the
    catalogue size.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from fusionrec.data.batches import UserBatch
from fusionrec.errors import FusionrecError
from fusionrec.models.base import LossOutput, ModelConfig, Recommender, Scorer
from fusionrec.registry import MODELS

MASK32 = 0xFFFFFFFF


class RandomScoresConfig(ModelConfig):
    name: str = "random"
    seed: int = Field(0, ge=0, description="the draw: score(u, i) is a fixed function of (seed, u, i)")


def _mul32(x: Tensor, constant: int) -> Tensor:
    """(x * constant) mod 2^32 for int64 x in [0, 2^32), without int64 overflow (16-bit halves)."""
    low = x * (constant & 0xFFFF)  # < 2^48
    high = ((x * (constant >> 16)) & 0xFFFF) << 16  # only the low 16 bits survive the shift mod 2^32
    return (low + high) & MASK32


def mix32(x: Tensor) -> Tensor:
    """Chris Wellons' "lowbias32" integer hash on int64 tensors holding values in [0, 2^32)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def uniform_scores(seed: int, users: Tensor, items: Tensor) -> Tensor:
    """Scores in [0, 1) of every (user, item) pair: (B,), (C,) -> (B, C) float32."""
    base = mix32(torch.tensor(seed & MASK32, dtype=torch.int64))
    per_user = mix32((base + users.to(torch.int64)) & MASK32)  # (B,)
    pairs = mix32((per_user.unsqueeze(1) + items.to(torch.int64).unsqueeze(0)) & MASK32)  # (B, C)
    return (pairs >> 8).to(torch.float32) / float(1 << 24)


@MODELS.register("random", config=RandomScoresConfig, task="topk", paper="-", modalities="none")
class RandomScores(Recommender):
    """Uniform random scores, fixed per (seed, user, item).

    Args:
        num_items: catalogue size I (the items scored when a batch names none).
        seed: the draw.

    Shapes:
        score: UserBatch users (B,) -> (B, I) or (B, C)
    """

    def __init__(self, num_items: int, seed: int = 0) -> None:
        super().__init__()
        self.num_items = int(num_items)
        self.seed = int(seed)

    @classmethod
    def from_dataset(cls, config: RandomScoresConfig, dataset) -> RandomScores:
        return cls(dataset.num_items, config.seed)

    def loss(self, batch: object) -> LossOutput:
        """Refuses: random scores have nothing to train."""
        raise FusionrecError(
            "random has no trainable parameters and no training loss: its scores are a fixed "
            "function of (seed, user, item); fusionrec's fit() evaluates it once on validation instead"
        )

    def score(self, batch: UserBatch) -> Tensor:
        return self.scorer()(batch.users, batch.items)

    def scorer(self) -> Scorer:
        num_items, seed = self.num_items, self.seed

        def score(users: Tensor, items: Tensor | None) -> Tensor:
            items = torch.arange(num_items, device=users.device) if items is None else items
            return uniform_scores(seed, users.to(items.device), items)  # (B, C), a fresh tensor

        return score
