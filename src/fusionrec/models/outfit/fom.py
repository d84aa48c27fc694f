"""FOM: the Fashion Outfit Model of POG.

Chen et al., "POG: Personalized Outfit Generation for Fashion Recommendation at Alibaba iFashion", KDD 2019
(Applied Data Science track). FOM learns outfit compatibility by masked item prediction: a Transformer encoder
reads the items of an outfit (no order) with one item replaced by ``[MASK]`` and must pick the hidden item::

    h = Transformer({e_j : j != k} ∪ {m})[k],     P(i | outfit \\ k) = softmax_i(cos(h, e_i) / τ)

Args (``FOMConfig``): ``dim`` 64, ``num_heads`` 2, ``num_layers`` 2, ``dropout`` 0.1, ``temperature`` 0.1,
``same_category`` True (the softmax runs over the batch's items of the hidden item's category).

Compatibility of an outfit (CP): the mean over its items of ``cos(h_k, e_k) / τ``, each item predicted from the
others (a pseudo-likelihood without the normaliser). FITB: the candidate with the largest ``cos(h, e) / τ``.

Note:
    - Items are their category plus name text (MiniLM or a word embedding) and, where a data set has them,
      image features; POG's items add a collaborative embedding from iFashion's click graph, not available here.
    - The candidate pool of the softmax is the batch's items (of the same category by default); POG's pool
      size and sampling are not stated in the parts of the paper available here [U].
    - Layer, head and width counts are small defaults for two CPU cores, not the paper's.
    - The CP score is our choice: the paper's CP head is not described in the parts available [U].
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from fusionrec.models.base import LossOutput
from fusionrec.models.outfit.base import (
    ItemEncoder,
    MaskedOutfitEncoder,
    OutfitBatch,
    OutfitConfig,
    OutfitModel,
    cosine_logits,
    item_inputs,
)
from fusionrec.registry import MODELS


class FOMConfig(OutfitConfig):
    num_heads: int = Field(2, gt=0)
    num_layers: int = Field(2, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    temperature: float = Field(0.1, gt=0)
    same_category: bool = Field(True, description="softmax over the batch's items of the hidden item's category")


def masked_item_loss(
    network: MaskedOutfitEncoder, batch: OutfitBatch, temperature: float, same_category: bool
) -> Tensor:
    """Cross-entropy of one randomly hidden item per outfit against the batch's items (FOM's objective)."""
    items, mask = batch.items, batch.mask
    blank = torch.multinomial(mask.float(), 1)[:, 0]  # (B,) one valid slot per outfit
    query, _ = network(items, mask, blank)  # (B, D)
    pool = items[mask]  # (N,) the batch's items, flattened in row order
    logits = cosine_logits(query, network.items(pool), temperature)  # (B, N)
    cats = network.items.categories
    if same_category:
        target_cat = cats[items.gather(1, blank[:, None])]  # (B, 1)
        logits = logits.masked_fill(cats[pool][None, :] != target_cat, float("-inf"))
    flat = torch.cumsum(mask.flatten(), 0).reshape(mask.shape) - 1  # position of each valid slot in ``pool``
    target = flat.gather(1, blank[:, None])[:, 0]
    return F.cross_entropy(logits, target)


@MODELS.register("fom", config=FOMConfig, task="outfit", paper="Chen et al., KDD 2019 (POG)", modalities="text, image")
class FOM(OutfitModel):
    """Masked-item Transformer over the items of an outfit (module docstring)."""

    def __init__(
        self,
        items: ItemEncoder,
        num_heads: int = 2,
        num_layers: int = 2,
        dropout: float = 0.1,
        temperature: float = 0.1,
        same_category: bool = True,
    ) -> None:
        super().__init__()
        self.network = MaskedOutfitEncoder(items, num_heads, num_layers, dropout)
        self.temperature, self.same_category = temperature, same_category

    @classmethod
    def from_dataset(cls, config: FOMConfig, dataset: Any) -> FOM:
        items = ItemEncoder(**item_inputs(config, dataset), dim=config.dim)
        return cls(items, config.num_heads, config.num_layers, config.dropout, config.temperature, config.same_category)

    def loss(self, batch: OutfitBatch) -> LossOutput:
        loss = masked_item_loss(self.network, batch, self.temperature, self.same_category)
        return LossOutput(loss, {"masked_item": loss.detach()})

    def fill_scores(self, items: Tensor, mask: Tensor, blank: Tensor, candidates: Tensor) -> Tensor:
        query, _ = self.network(items, mask, blank)  # (B, D)
        return cosine_logits(query, self.network.items(candidates), self.temperature)  # (B, C)

    def outfit_scores(self, items: Tensor, mask: Tensor) -> Tensor:
        b, length = items.shape
        blank = torch.arange(length, device=items.device).repeat_interleave(b)  # (L*B,) every slot in turn
        query, _ = self.network(items.repeat(length, 1), mask.repeat(length, 1), blank)
        own = items.T.reshape(-1)  # the hidden item of each row
        scores = F.cosine_similarity(query, self.network.items(own), dim=-1).reshape(length, b).T / self.temperature
        valid = mask.float()
        return (scores * valid).sum(1) / valid.sum(1).clamp_min(1.0)

    def blank_attention(self, items: Tensor, mask: Tensor, blank: Tensor) -> Tensor:
        """(B, L) the last layer's attention of the blank over the outfit's slots (heads averaged)."""
        _, weights = self.network(items, mask, blank)
        return weights[torch.arange(items.shape[0]), blank]
