"""Logistic matrix factorisation for ``toy_click``: logit = b_i + <p_u, q_i>, binary cross-entropy."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.models.base import LossOutput, ModelConfig, Recommender
from fusionrec.registry import MODELS


class LogisticMFConfig(ModelConfig):
    name: str = "toy_logistic_mf"
    dim: int = Field(8, gt=0)


@MODELS.register("toy_logistic_mf", config=LogisticMFConfig, task="toy_click", paper="(toy)", modalities="none")
class LogisticMF(Recommender):
    def __init__(self, num_users: int, num_items: int, dim: int) -> None:
        super().__init__()
        self.users, self.items = nn.Embedding(num_users, dim), nn.Embedding(num_items, dim)
        self.bias = nn.Embedding(num_items, 1)
        for table in (self.users, self.items):
            nn.init.normal_(table.weight, std=0.1)
        nn.init.zeros_(self.bias.weight)

    @classmethod
    def from_dataset(cls, config: LogisticMFConfig, dataset) -> LogisticMF:
        return cls(dataset.num_users, dataset.num_items, config.dim)

    def logits(self, users: Tensor, items: Tensor) -> Tensor:
        return (self.users(users) * self.items(items)).sum(-1) + self.bias(items).squeeze(-1)  # (B,)

    def logits_all(self, users: Tensor) -> Tensor:
        return self.users(users) @ self.items.weight.T + self.bias.weight.T  # (B, I)

    def parts(self, user: int, item: int) -> dict[str, float]:
        with torch.no_grad():
            u, i = torch.tensor([user]), torch.tensor([item])
            return {"item bias": float(self.bias(i)), "user x item": float((self.users(u) * self.items(i)).sum())}

    def loss(self, batch) -> LossOutput:
        loss = nn.functional.binary_cross_entropy_with_logits(self.logits(batch.users, batch.items), batch.labels)
        return LossOutput(loss, {"bce": loss.detach()})

    def score(self, batch) -> Tensor:
        return self.logits_all(batch.users) if batch.items is None else self.logits_all(batch.users)[:, batch.items]
