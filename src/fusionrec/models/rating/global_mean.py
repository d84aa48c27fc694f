"""Global mean: every rating is predicted as the mean training rating.

    r̂_ui = μ = mean of the training ratings

The floor every rating model must beat. Fitted when it is built (a mean of training ratings): it has
no trainable parameters, so ``fit()`` evaluates it once on validation (status ``closed_form``) and
``loss()`` refuses.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fusionrec.data.reviews import RatingBatch
from fusionrec.errors import FusionrecError
from fusionrec.models.base import LossOutput, Recommender
from fusionrec.models.rating.common import RatingModelConfig, as_scores, training_ratings
from fusionrec.registry import MODELS


class GlobalMeanConfig(RatingModelConfig):
    name: str = "global_mean"


@MODELS.register("global_mean", config=GlobalMeanConfig, task="rating", paper="(baseline)", modalities="none")
class GlobalMean(Recommender):
    """Predicts the training mean for every pair. Shapes: RatingBatch of B pairs -> (B,)."""

    def __init__(self, mean: float) -> None:
        super().__init__()
        self.mean: Tensor
        self.register_buffer("mean", torch.tensor(float(mean)))

    @classmethod
    def from_dataset(cls, config: GlobalMeanConfig, dataset) -> GlobalMean:
        ratings = training_ratings(dataset)
        return cls(float(ratings.mean()) if len(ratings) else 0.0)

    def predict(self, batch: RatingBatch) -> Tensor:
        return torch.full(batch.users.shape, float(self.mean), device=batch.users.device)  # (B,)

    def loss(self, batch: RatingBatch) -> LossOutput:
        raise FusionrecError(
            "global_mean has no trainable parameters and no training loss: it is the training mean, "
            "fitted when built; fusionrec's fit() evaluates it once on validation instead"
        )

    def score(self, batch: RatingBatch) -> Tensor:
        return as_scores(self.predict(batch))
