"""Popularity for outfits: an item is as good as its name's words are frequent in training outfits.

Polyvore items belong to one outfit each, so item counts carry nothing; the non-learning baseline counts the
words of training items' names instead::

    pop(i) = mean_{w in name(i)} log(1 + n_w),     s(O) = mean_{i in O} pop(i)

where n_w counts the training items whose name has w. FITB picks the candidate with the most common words; an
outfit of common items looks compatible. Fitted when built (no trainable parameters).

Note: a baseline of ours (no paper): the usual popularity baseline adapted to items that occur once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from fusionrec.errors import FusionrecError
from fusionrec.metrics.generation import words
from fusionrec.models.base import LossOutput, ModelConfig
from fusionrec.models.outfit.base import OutfitBatch, OutfitModel
from fusionrec.registry import MODELS


class OutfitPopConfig(ModelConfig):
    """Nothing to set: the scores are counts over the training outfits' item names."""


def word_popularity(dataset: Any) -> np.ndarray:
    """(I,) mean log(1 + training count) of each item's name words (0 for a name without a known word)."""
    outfits = dataset.tables["outfits"]
    train = np.unique(np.concatenate([np.asarray(x) for x in outfits.loc[outfits["split"] == 0, "items"]]))
    names = dataset.items["title"].astype(str).tolist()
    counts: dict[str, int] = {}
    for i in train:
        for w in set(words(names[i])):
            counts[w] = counts.get(w, 0) + 1
    return np.asarray(
        [np.mean([np.log1p(counts.get(w, 0)) for w in words(n)]) if words(n) else 0.0 for n in names], dtype=np.float32
    )


@MODELS.register("outfit_pop", config=OutfitPopConfig, task="outfit", paper="baseline", modalities="text")
class OutfitPop(OutfitModel):
    """Word popularity of item names (module docstring)."""

    popularity: Tensor

    def __init__(self, popularity: Tensor) -> None:
        super().__init__()
        self.register_buffer("popularity", popularity.float())

    @classmethod
    def from_dataset(cls, config: OutfitPopConfig, dataset: Any) -> OutfitPop:
        return cls(torch.from_numpy(word_popularity(dataset)))

    def outfit_scores(self, items: Tensor, mask: Tensor) -> Tensor:
        valid = mask.float()
        return (self.popularity[items] * valid).sum(1) / valid.sum(1).clamp_min(1.0)

    def fill_scores(self, items: Tensor, mask: Tensor, blank: Tensor, candidates: Tensor) -> Tensor:
        return self.popularity[candidates]

    def loss(self, batch: OutfitBatch) -> LossOutput:
        raise FusionrecError("outfit_pop has no trainable parameters: it is fitted when built")
