"""Pairwise compatibility: an outfit's score is the mean of its item pairs' scores.

The baseline behind most outfit-compatibility work before set models (e.g. Veit et al., "Learning Visual
Clothing Style with Heterogeneous Dyadic Co-occurrences", ICCV 2015; McAuley et al., SIGIR 2015): items are
embedded in a compatibility space and a pair scores their inner product::

    s(i, j) = <f(e_i), f(e_j)> / sqrt(D),     s(O) = mean_{i<j in O} s(i, j)

trained with BPR of every training outfit against its copy with items swapped for random items of the same
category (or, under the matching protocol, a top with its bottom against a random bottom).

Args (``PairwiseCompatConfig``): ``dim`` 64, ``hidden_dim`` 64 (the MLP f).

Note:
    - f is a two-layer MLP over the shared item encoder (category + text/image); Veit et al. learn a Siamese CNN
      on images with a contrastive loss; the BPR loss against swapped outfits is our choice.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.models.base import LossOutput
from fusionrec.models.outfit.base import ItemEncoder, OutfitBatch, OutfitConfig, OutfitModel, bpr, item_inputs
from fusionrec.registry import MODELS


class PairwiseCompatConfig(OutfitConfig):
    hidden_dim: int = Field(64, gt=0)


@MODELS.register(
    "pairwise_compat",
    config=PairwiseCompatConfig,
    task="outfit",
    paper="Veit et al., ICCV 2015",
    modalities="text, image",
)
class PairwiseCompat(OutfitModel):
    """Mean of item-pair inner products in a learnt compatibility space (module docstring)."""

    def __init__(self, items: ItemEncoder, hidden_dim: int = 64) -> None:
        super().__init__()
        self.items_encoder = items
        self.f = nn.Sequential(nn.Linear(items.dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim))
        self.scale = 1.0 / math.sqrt(hidden_dim)

    @classmethod
    def from_dataset(cls, config: PairwiseCompatConfig, dataset: Any) -> PairwiseCompat:
        return cls(ItemEncoder(**item_inputs(config, dataset), dim=config.dim), config.hidden_dim)

    def pair_scores(self, items: Tensor) -> Tensor:
        """(B, L, L) scores of every pair of slots."""
        z = self.f(self.items_encoder(items))  # (B, L, D)
        return z @ z.transpose(1, 2) * self.scale

    def outfit_scores(self, items: Tensor, mask: Tensor) -> Tensor:
        pairs = self.pair_scores(items)
        valid = (mask[:, :, None] & mask[:, None, :]).float()
        valid = valid * (1 - torch.eye(items.shape[1], device=items.device))  # i != j
        return (pairs * valid).sum((1, 2)) / valid.sum((1, 2)).clamp_min(1.0)

    def loss(self, batch: OutfitBatch) -> LossOutput:
        assert batch.negatives is not None
        loss = bpr(self.outfit_scores(batch.items, batch.mask), self.outfit_scores(batch.negatives, batch.mask))
        return LossOutput(loss, {"bpr": loss.detach()})
