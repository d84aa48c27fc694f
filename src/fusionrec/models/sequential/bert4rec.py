"""BERT4Rec: Sun et al., "BERT4Rec: Sequential Recommendation with Bidirectional Encoder
Representations from Transformer", CIKM 2019.

A bidirectional Transformer trained with the Cloze task: a random share ρ of the items of a
sequence is replaced by a mask token and predicted from both sides. At inference a mask token is
appended to the sequence and its prediction is the next item:

    h^0 = LN(e_{v} + p)            (item + learnable position embeddings)
    h^l = LN(a + FFN(a)),  a = LN(h^{l-1} + MultiHead(h^{l-1}))      (GELU feed-forward)
    P(v) = softmax(LN(GELU(h^L W^P + b^P)) E^T + b^O)              (output shares E)

Args (``BERT4RecConfig``): hidden_dim 64, num_layers 2, num_heads 2, inner_dim 4 x hidden_dim,
dropout 0.1 (attention weights too), max_length 50, mask_ratio ρ 0.2, loss ``ce``.

Note:
    - Masked slots always get the mask token (no BERT-style 10% random / 10% unchanged), and each
      epoch draws a fresh mask for one sample per user; the official code instead precomputes
      ``dupe_factor`` masked copies and adds copies with only the last item masked. The last
      ``max_length`` items are used (the official code also slides windows over long sequences).
    - The output head has the LayerNorm of the official code (the paper's equation omits it).
    - Positions count from the most recent slot, so outputs do not depend on padding.
    - Initialisation: normal(0, 0.02) embeddings (the official truncated normal), LayerNorm 1/0.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.batches import SequenceBatch
from fusionrec.data.dataset import Dataset
from fusionrec.models.sequential.common import ClozeConfig, ItemPredictionModel, SequenceLoss, embedding_index
from fusionrec.nn.sequence import PostNormLayer, SelfAttention
from fusionrec.registry import MODELS


class BERT4RecConfig(ClozeConfig):
    name: str = "bert4rec"
    num_heads: int = Field(2, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)


@MODELS.register(
    "bert4rec", config=BERT4RecConfig, task="sequential", paper="Sun et al., CIKM 2019", modalities="none (item ids)"
)
class BERT4Rec(ItemPredictionModel):
    """Shapes:
    loss: SequenceBatch items (B, L) with mask tokens, targets (B, L) -> scalar
    score: SequenceBatch items (B, L) ending in a mask token, candidates (C,) or None -> (B, C)
    """

    def __init__(
        self,
        num_items: int,
        hidden_dim: int = 64,
        num_layers: int = 2,
        num_heads: int = 2,
        inner_dim: int | None = None,
        dropout: float = 0.1,
        attention_dropout: float | None = None,
        max_length: int = 50,
        loss: SequenceLoss = "ce",
    ) -> None:
        super().__init__()
        self.num_items = num_items
        self.loss_kind = loss
        self.item_embedding = nn.Embedding(num_items + 2, hidden_dim, padding_idx=num_items + 1)  # + mask, pad
        self.position_embedding = nn.Embedding(max_length, hidden_dim)
        self.embedding_norm = nn.LayerNorm(hidden_dim)
        self.dropout = nn.Dropout(dropout)
        attention_dropout = dropout if attention_dropout is None else attention_dropout
        self.layers = nn.ModuleList(
            PostNormLayer(
                SelfAttention(hidden_dim, num_heads, attention_dropout),
                hidden_dim,
                inner_dim or 4 * hidden_dim,
                dropout,
                "gelu",
            )
            for _ in range(num_layers)
        )
        self.head = nn.Linear(hidden_dim, hidden_dim)  # W^P, b^P
        self.head_norm = nn.LayerNorm(hidden_dim)
        self.item_bias = nn.Parameter(torch.zeros(num_items))  # b^O
        for emb in (self.item_embedding, self.position_embedding):
            nn.init.normal_(emb.weight, std=0.02)
        with torch.no_grad():
            self.item_embedding.weight[num_items + 1].zero_()

    @classmethod
    def from_dataset(cls, config: BERT4RecConfig, dataset: Dataset) -> BERT4Rec:
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
        """Hidden state of every slot and each layer's attention. -> (B, L, D), [(B, H, L, L)]."""
        mask = batch.mask  # (B, L)
        x = self.item_embedding(embedding_index(batch.items, self.num_items))  # (B, L, D)
        x = self.embedding_norm(x + self.position_embedding(batch.positions.clamp_min(0)))
        x = self.dropout(x) * mask[..., None].to(x.dtype)
        maps = []
        for layer in self.layers:
            x, weights = layer(x, None, mask)
            maps.append(weights["attention"])
        return x, maps

    def transform(self, hidden: Tensor) -> Tensor:
        """The output head before the item embeddings: ``LN(GELU(h W^P + b^P))``. (..., D) -> (..., D)."""
        return self.head_norm(nn.functional.gelu(self.head(hidden)))

    def explain(self, batch: SequenceBatch, items: Tensor | None = None) -> dict[str, Tensor]:  # type: ignore[override]  # sequences, not user ids
        """Self-attention maps of the sequences in ``batch``: ``attention`` (num_layers, B, H, L, L)."""
        with torch.no_grad():
            _, maps = self.encode(batch)
        return {"attention": torch.stack(maps)}
