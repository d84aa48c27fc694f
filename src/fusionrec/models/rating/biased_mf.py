"""Biased matrix factorisation: Koren, Bell, Volinsky, "Matrix Factorization Techniques for Recommender
Systems", IEEE Computer 2009 (the SVD-style model of the Netflix Prize, eq. 4-5).

    r̂_ui = μ + b_u + b_i + <p_u, q_i>,    L = mean (r_ui - r̂_ui)² + λ (‖p_u‖² + ‖q_i‖² + b_u² + b_i²)

Note:
    μ is the training mean, fixed (not learnt). Trained with the optimiser of ``train`` (Adam by
    default) on mini-batches, not the paper's per-rating stochastic gradient descent; the L2 term is
    averaged over the batch's pairs (``reg_weight`` λ), so λ does not scale with the batch size.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.reviews import RatingBatch
from fusionrec.models.base import LossOutput, Recommender
from fusionrec.models.rating.common import RatingModelConfig, as_scores, training_ratings
from fusionrec.registry import MODELS


class BiasedMFConfig(RatingModelConfig):
    name: str = "biased_mf"
    embedding_dim: int = Field(32, gt=0)
    reg_weight: float = Field(0.02, ge=0)
    init_std: float = Field(0.01, gt=0)


@MODELS.register(
    "biased_mf", config=BiasedMFConfig, task="rating", paper="Koren et al., Computer 2009", modalities="none"
)
class BiasedMF(Recommender):
    """μ + user bias + item bias + dot product of user and item factors.

    Shapes: RatingBatch users (B,), items (B,) -> (B,)."""

    def __init__(
        self, num_users: int, num_items: int, mean: float, embedding_dim: int, reg_weight: float, init_std: float
    ) -> None:
        super().__init__()
        self.user_factors = nn.Embedding(num_users, embedding_dim)
        self.item_factors = nn.Embedding(num_items, embedding_dim)
        self.user_bias = nn.Embedding(num_users, 1)
        self.item_bias = nn.Embedding(num_items, 1)
        for table in (self.user_factors, self.item_factors):
            nn.init.normal_(table.weight, std=init_std)
        for table in (self.user_bias, self.item_bias):
            nn.init.zeros_(table.weight)
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.reg_weight = reg_weight

    @classmethod
    def from_dataset(cls, config: BiasedMFConfig, dataset) -> BiasedMF:
        ratings = training_ratings(dataset)
        return cls(
            dataset.num_users,
            dataset.num_items,
            float(ratings.mean()) if len(ratings) else 0.0,
            config.embedding_dim,
            config.reg_weight,
            config.init_std,
        )

    def predict(self, batch: RatingBatch) -> Tensor:
        p, q = self.user_factors(batch.users), self.item_factors(batch.items)  # (B, D)
        bias = self.user_bias(batch.users).squeeze(-1) + self.item_bias(batch.items).squeeze(-1)  # (B,)
        return self.mean + bias + (p * q).sum(-1)

    def loss(self, batch: RatingBatch) -> LossOutput:
        mse = torch.mean((self.predict(batch) - batch.ratings) ** 2)
        params = (
            self.user_factors(batch.users),
            self.item_factors(batch.items),
            self.user_bias(batch.users),
            self.item_bias(batch.items),
        )
        reg = self.reg_weight * sum(p.pow(2).sum(-1) for p in params).mean()  # type: ignore[union-attr]
        return LossOutput(mse + reg, {"mse": mse.detach(), "reg": reg.detach()})

    def lookup_embeddings(self) -> tuple[nn.Embedding, ...]:
        """Every table is read row by row (the L2 term too), so ``train.sparse_embeddings`` may apply."""
        return (self.user_factors, self.item_factors, self.user_bias, self.item_bias)

    def score(self, batch: RatingBatch) -> Tensor:
        return as_scores(self.predict(batch))
