"""MostPop: rank every item by its popularity in training, the same list for every user.

The non-personalised baseline of every top-K study since Cremonesi, Koren and Turrin, "Performance
of Recommender Algorithms on Top-N Recommendation Tasks", RecSys 2010:

    x̂_ui = |{v : (v, i) ∈ R_train}|       (the item's number of training interactions)

Fitted when it is built (a column sum of the binary training matrix): it has no trainable
parameters, so ``fit()`` does not optimise it and evaluates it once on validation (status
``closed_form``). ``loss()`` raises a :class:`~fusionrec.errors.FusionrecError` saying so.

Note:
    Counts come from the training split only, never from validation or test interactions. The
    training matrix is binary (a repeated (user, item) pair counts once), so the count is the number
    of distinct training users of the item. Many items share a count: ties are ranked pessimistically
    by the evaluator, where Cornac's and RecBole's MostPop break them arbitrarily.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from fusionrec.data.batches import UserBatch
from fusionrec.errors import FusionrecError
from fusionrec.models.base import LossOutput, ModelConfig, Recommender, Scorer
from fusionrec.registry import MODELS


class MostPopConfig(ModelConfig):
    name: str = "mostpop"


@MODELS.register(
    "mostpop", config=MostPopConfig, task="topk", paper="Cremonesi et al., RecSys 2010 (baseline)", modalities="none"
)
class MostPop(Recommender):
    """Training popularity as the score of every (user, item) pair.

    Args:
        popularity: number of training interactions of each item (I,).

    Shapes:
        popularity: (I,)
        score: UserBatch users (B,) -> (B, I) or (B, C)
    """

    popularity: Tensor  # buffer (I,)

    def __init__(self, popularity: Tensor) -> None:
        super().__init__()
        # persistent: a vector of I floats, so best.pt holds the very scores that were evaluated
        self.register_buffer("popularity", popularity.to(torch.float32))  # (I,)

    @classmethod
    def from_dataset(cls, config: MostPopConfig, dataset) -> MostPop:
        counts = np.asarray(dataset.matrix("train").sum(axis=0), dtype=np.float32).ravel()  # (I,)
        return cls(torch.from_numpy(counts))

    def loss(self, batch: object) -> LossOutput:
        """Refuses: MostPop has no training loss (its counts are fitted in ``from_dataset``)."""
        raise FusionrecError(
            "mostpop has no trainable parameters and no training loss: it is fitted when built "
            "(training counts); fusionrec's fit() evaluates it once on validation instead"
        )

    def score(self, batch: UserBatch) -> Tensor:
        return self.scorer()(batch.users, batch.items)

    def scorer(self) -> Scorer:
        popularity = self.popularity

        def score(users: Tensor, items: Tensor | None) -> Tensor:
            row = popularity if items is None else popularity[items]  # (C,)
            return row.unsqueeze(0).repeat(len(users), 1)  # (B, C), a fresh tensor (the evaluator masks in place)

        return score
