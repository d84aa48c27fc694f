"""Random outfit scores: every item gets a fixed random score (seeded), an outfit the mean of its items'.

The floor of every outfit protocol: FITB accuracy 1/4 and AUC 1/2 in expectation. Fitted when built.

Note: a baseline of ours (no paper).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor

from fusionrec.errors import FusionrecError
from fusionrec.models.base import LossOutput, ModelConfig
from fusionrec.models.outfit.base import OutfitBatch, OutfitModel
from fusionrec.registry import MODELS


class OutfitRandomConfig(ModelConfig):
    seed: int | None = Field(None, description="seed of the item scores (default: the run's seed)")


@MODELS.register("outfit_random", config=OutfitRandomConfig, task="outfit", paper="baseline", modalities="none")
class OutfitRandom(OutfitModel):
    """Fixed random item scores (module docstring)."""

    noise: Tensor

    def __init__(self, num_items: int, seed: int | None = None) -> None:
        super().__init__()
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        self.register_buffer("noise", torch.rand(num_items, generator=generator))  # global RNG: the run's seed

    @classmethod
    def from_dataset(cls, config: OutfitRandomConfig, dataset: Any) -> OutfitRandom:
        return cls(dataset.num_items, config.seed)

    def outfit_scores(self, items: Tensor, mask: Tensor) -> Tensor:
        valid = mask.float()
        return (self.noise[items] * valid).sum(1) / valid.sum(1).clamp_min(1.0)

    def fill_scores(self, items: Tensor, mask: Tensor, blank: Tensor, candidates: Tensor) -> Tensor:
        return self.noise[candidates]

    def loss(self, batch: OutfitBatch) -> LossOutput:
        raise FusionrecError("outfit_random has no trainable parameters: it is fitted when built")
