"""SASRec: Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.

A causal Transformer over the user's item sequence; the state at slot t predicts item t + 1:

    E = [e_{s_1} √d + p_1, ..., e_{s_L} √d + p_L]
    block:  Q = LN(X);  X' = Q + Attn_causal(Q, X, X);  X'' = X' + FFN(LN(X'))
    r_{t,i} = LN(F_t) · e_i          (item embeddings shared by input and output)

Args (``SASRecConfig``): hidden_dim 64, num_layers 2, num_heads 1, inner_dim = hidden_dim,
dropout 0.2 (embeddings, feed-forward, attention weights), max_length 50, loss ``ce``.

Note:
    - Loss: softmax cross-entropy over all items by default (the paper samples one negative per
      slot with a binary cross-entropy: ``model.loss=bce``; ``bpr`` and ``sampled_ce`` exist too).
    - Training uses one sample per user sequence per epoch with every slot a target, like the
      official code and unlike RecBole, which trains on every prefix separately.
    - Positions count from the most recent item (the official left-padded code gives the same
      position indices at a fixed length), so a slot's output does not depend on padding.
    - The attention has an output projection (as ``torch.nn.MultiheadAttention`` in the PyTorch
      port); the official TensorFlow code has none. Initialisation: normal(0, 0.02), LayerNorm 1/0.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from fusionrec.data.batches import SequenceBatch
from fusionrec.data.dataset import Dataset
from fusionrec.models.sequential.common import ItemPredictionModel, SequenceLoss, SequentialConfig, embedding_index
from fusionrec.nn.fusion.layers import FeedForward, MultiHeadAttention
from fusionrec.registry import MODELS


class SASRecConfig(SequentialConfig):
    name: str = "sasrec"
    objective: ClassVar[Literal["next", "cloze"]] = "next"


class SASRecBlock(nn.Module):
    """One SASRec block: ``Q = LN(x); h = Q + Attn_causal(Q, x, x); out = h' + FFN(h')`` with ``h' = LN(h)``.

    Shapes: x (B, L, D); mask (B, L) -> out (B, L, D) (zeros at padding), weights (B, H, L, L).
    """

    def __init__(self, dim: int, num_heads: int, inner_dim: int, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = MultiHeadAttention(dim, num_heads, dropout=attention_dropout)
        self.forward_norm = nn.LayerNorm(dim)
        self.feed_forward = FeedForward(dim, inner_dim, dropout, "relu")
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        q = self.attention_norm(x)  # (B, L, D)
        attended, weights = self.attention(q, x, x, key_mask=mask, query_mask=mask, causal=True)
        h = self.forward_norm(q + attended)  # (B, L, D)
        out = h + self.dropout(self.feed_forward(h))  # (B, L, D)
        return out * mask[..., None].to(out.dtype), weights


@MODELS.register(
    "sasrec", config=SASRecConfig, task="sequential", paper="Kang & McAuley, ICDM 2018", modalities="none (item ids)"
)
class SASRec(ItemPredictionModel):
    """Shapes:
    loss: SequenceBatch items/targets (B, L) -> scalar
    score: SequenceBatch items (B, L), candidates (C,) or None -> (B, C) or (B, I)
    """

    def __init__(
        self,
        num_items: int,
        hidden_dim: int = 64,
        num_layers: int = 2,
        num_heads: int = 1,
        inner_dim: int | None = None,
        dropout: float = 0.2,
        attention_dropout: float | None = None,
        max_length: int = 50,
        loss: SequenceLoss = "ce",
    ) -> None:
        super().__init__()
        self.num_items = num_items
        self.loss_kind = loss
        self.scale = math.sqrt(hidden_dim)
        self.item_embedding = nn.Embedding(num_items + 2, hidden_dim, padding_idx=num_items + 1)
        self.position_embedding = nn.Embedding(max_length, hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            SASRecBlock(
                hidden_dim,
                num_heads,
                inner_dim or hidden_dim,
                dropout,
                dropout if attention_dropout is None else attention_dropout,
            )
            for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(hidden_dim)
        for emb in (self.item_embedding, self.position_embedding):
            nn.init.normal_(emb.weight, std=0.02)
        with torch.no_grad():
            self.item_embedding.weight[num_items:].zero_()  # the unused mask row and padding

    @classmethod
    def from_dataset(cls, config: SASRecConfig, dataset: Dataset) -> SASRec:
        return cls(
            dataset.num_items,
            config.hidden_dim,
            config.num_layers,
            config.num_heads,
            config.inner_dim,
            config.dropout,
            config.attention_dropout,
            config.max_length,
            config.loss,
        )

    @property
    def item_weight(self) -> Tensor:
        return self.item_embedding.weight[: self.num_items]  # (I, D)

    def encode(self, batch: SequenceBatch) -> tuple[Tensor, list[Tensor]]:
        """Hidden state of every slot, and each block's attention weights. -> (B, L, D), [(B, H, L, L)]."""
        mask = batch.mask  # (B, L)
        x = self.item_embedding(embedding_index(batch.items, self.num_items)) * self.scale  # (B, L, D)
        x = x + self.position_embedding(batch.positions.clamp_min(0))
        x = self.dropout(x) * mask[..., None].to(x.dtype)
        maps = []
        for block in self.blocks:
            x, weights = block(x, mask)
            maps.append(weights)
        return self.final_norm(x), maps

    def explain(self, batch: SequenceBatch, items: Tensor | None = None) -> dict[str, Tensor]:  # type: ignore[override]  # sequences, not user ids
        """Causal self-attention maps of the sequences in ``batch``: ``attention`` (num_layers, B, H, L, L)."""
        with torch.no_grad():
            _, maps = self.encode(batch)
        return {"attention": torch.stack(maps)}
