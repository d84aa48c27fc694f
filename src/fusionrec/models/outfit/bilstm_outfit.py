"""Bi-LSTM outfit model.

Han, Wu, Jiang, Davis, "Learning Fashion Compatibility with Bidirectional LSTMs", ACM MM 2017. An outfit is a
sequence of items in a fixed category order (top to bottom to shoes to accessories); a forward LSTM predicts each
next item from the ones before and a backward LSTM each previous item from the ones after::

    L = -1/N Σ_t log P(x_{t+1} | x_{≤t}) - 1/N Σ_t log P(x_{t-1} | x_{≥t}),   P(x | h) = softmax over the batch's items

Compatibility (and FITB) use the same terms: the mean of the forward and backward step scores of the outfit.

Args (``BiLSTMOutfitConfig``): ``dim`` 64, ``hidden_dim`` 64, ``temperature`` 0.1.

Note:
    - Scores are cosines over a temperature between the LSTM state (projected) and the next item's vector; Han et
      al. use an inner product softmax over all images of the batch. Their visual-semantic embedding loss is left
      out (items here are text first: the name is already the item's input).
    - Items are category + name text (+ image features where present) instead of an Inception-v3 image embedding.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from fusionrec.models.base import LossOutput
from fusionrec.models.outfit.base import ItemEncoder, OutfitBatch, OutfitConfig, OutfitModel, cosine_logits, item_inputs
from fusionrec.registry import MODELS


class BiLSTMOutfitConfig(OutfitConfig):
    hidden_dim: int = Field(64, gt=0)
    temperature: float = Field(0.1, gt=0)


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row's first ``lengths[b]`` steps of x (B, L, ...), padding kept at the end."""
    length = x.shape[1]
    steps = torch.arange(length, device=x.device)[None, :]
    index = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)  # (B, L)
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


@MODELS.register(
    "bilstm_outfit", config=BiLSTMOutfitConfig, task="outfit", paper="Han et al., ACM MM 2017", modalities="text, image"
)
class BiLSTMOutfit(OutfitModel):
    """Forward and backward next-item LSTMs over the category-ordered outfit (module docstring)."""

    def __init__(self, items: ItemEncoder, hidden_dim: int = 64, temperature: float = 0.1) -> None:
        super().__init__()
        self.items_encoder = items
        self.forward_lstm = nn.LSTM(items.dim, hidden_dim, batch_first=True)
        self.backward_lstm = nn.LSTM(items.dim, hidden_dim, batch_first=True)
        self.out_forward = nn.Linear(hidden_dim, items.dim)
        self.out_backward = nn.Linear(hidden_dim, items.dim)
        self.temperature = temperature

    @classmethod
    def from_dataset(cls, config: BiLSTMOutfitConfig, dataset: Any) -> BiLSTMOutfit:
        return cls(ItemEncoder(**item_inputs(config, dataset), dim=config.dim), config.hidden_dim, config.temperature)

    def _states(self, items: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Forward predictions (B, L-1, D) of slots 1.., backward predictions (B, L-1, D) of slots ..L-2 in reversed
        order, the item vectors (B, L, D) and the lengths (B,)."""
        e = self.items_encoder(items)
        lengths = mask.sum(1)
        forward, _ = self.forward_lstm(e)
        backward, _ = self.backward_lstm(reverse_padded(e, lengths))
        return self.out_forward(forward[:, :-1]), self.out_backward(backward[:, :-1]), e, lengths

    def _step_scores(self, items: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 2(L-1)) cosine step scores over the temperature and their validity."""
        pred_f, pred_b, e, lengths = self._states(items, mask)
        target_f = e[:, 1:]
        target_b = reverse_padded(e, lengths)[:, 1:]
        valid = mask[:, 1:]  # step t predicts slot t+1 (forward) / reversed slot t+1 (backward)
        scores = (
            torch.cat([F.cosine_similarity(pred_f, target_f, dim=-1), F.cosine_similarity(pred_b, target_b, dim=-1)], 1)
            / self.temperature
        )
        return scores, torch.cat([valid, valid], 1)

    def outfit_scores(self, items: Tensor, mask: Tensor) -> Tensor:
        if items.shape[1] < 2:
            return items.new_zeros(items.shape[0], dtype=torch.float)
        scores, valid = self._step_scores(items, mask)
        return (scores * valid.float()).sum(1) / valid.float().sum(1).clamp_min(1.0)

    def loss(self, batch: OutfitBatch) -> LossOutput:
        items, mask = batch.items, batch.mask
        pred_f, pred_b, e, lengths = self._states(items, mask)
        pool = e[mask]  # (N, D) every item of the batch
        flat = torch.cumsum(mask.flatten(), 0).reshape(mask.shape) - 1  # (B, L) slot -> pool row
        valid = mask[:, 1:]
        forward_target = flat[:, 1:][valid]
        backward_target = reverse_padded(flat[..., None], lengths)[..., 0][:, 1:][valid]
        loss_f = F.cross_entropy(cosine_logits(pred_f[valid], pool, self.temperature), forward_target)
        loss_b = F.cross_entropy(cosine_logits(pred_b[valid], pool, self.temperature), backward_target)
        return LossOutput(loss_f + loss_b, {"forward": loss_f.detach(), "backward": loss_b.detach()})
