"""AutoInt: Song, Shi, Xiao, Duan, Xu, Zhang, Tang, "AutoInt: Automatic Feature Interaction Learning
via Self-Attentive Neural Networks", CIKM 2019.

Interacting layer (Eq. 5-8): multi-head self-attention over the field vectors,
``e_m^(h) = sum_k softmax_k(<W_Q e_m, W_K e_k>) W_V e_k``, heads concatenated, then
``ReLU(e^(h) + W_Res e_m)``; stacked, flattened, and mapped to the logit (Eq. 9).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.models.ctr.common import CTRBatch, CTRConfig, CTRModel, FieldEmbedding, FieldLayout, layout_of, mlp
from fusionrec.nn.fusion.layers import MultiHeadAttention
from fusionrec.registry import MODELS


class AutoIntConfig(CTRConfig):
    name: str = "autoint"
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(2, ge=1)
    attention_dim: int = Field(16, gt=0, description="d' x H, the width of an interacting layer's output")
    hidden_dims: tuple[int, ...] = Field((), description="AutoInt+: an MLP beside the attention; () for AutoInt")
    dropout: float = Field(0.0, ge=0, lt=1)


class InteractingLayer(nn.Module):
    """One AutoInt interacting layer. Shapes: (B, F, D_in) -> out (B, F, D_out), weights (B, H, F, F)."""

    def __init__(self, in_dim: int, out_dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.attention = MultiHeadAttention(
            out_dim, num_heads, kv_dim=in_dim, dropout=dropout, out_proj=False, bias=False
        )
        self.query_in = nn.Linear(in_dim, out_dim, bias=False) if in_dim != out_dim else nn.Identity()
        self.residual = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        attended, weights = self.attention(self.query_in(x), x)  # (B, F, D_out)
        return torch.relu(attended + self.residual(x)), weights


@MODELS.register("autoint", config=AutoIntConfig, task="ctr", paper="Song et al., CIKM 2019", modalities="none")
class AutoInt(CTRModel):
    """AutoInt (and AutoInt+ with ``hidden_dims``).

    Args:
        layout: the fitted field layout. embedding_dim: D (16). num_layers: 2. num_heads: 2.
        attention_dim: the layer width d' x H (16). hidden_dims: () (AutoInt) or an MLP (AutoInt+).
        dropout: on attention weights and the MLP (0). embedding_reg: 1e-6.

    Shapes:
        batch -> (B, F, D) -> interacting layers (B, F, d'H) -> flatten (B, F d'H) -> (B,).

    Note:
        With ``attention_dim != embedding_dim`` the first layer's queries go through one extra linear
        map to the layer width (its keys and values are projected from the input as in Eq. 5-6); the
        paper's default has both at 16, where no extra map exists. Content fields are not inputs.
    """

    def __init__(
        self,
        layout: FieldLayout,
        embedding_dim: int = 16,
        num_layers: int = 2,
        num_heads: int = 2,
        attention_dim: int = 16,
        hidden_dims: tuple[int, ...] = (),
        dropout: float = 0.0,
        embedding_reg: float = 1e-6,
    ) -> None:
        super().__init__()
        self.fields_in = FieldEmbedding(layout, embedding_dim, linear=False)
        dims = [embedding_dim] + [attention_dim] * num_layers
        self.layers = nn.ModuleList(InteractingLayer(a, b, num_heads, dropout) for a, b in zip(dims, dims[1:]))
        width = self.fields_in.num_fields * attention_dim
        self.out = nn.Linear(width, 1)
        self.deep, deep_width = mlp(self.fields_in.num_fields * embedding_dim, hidden_dims, dropout)
        self.deep_out = nn.Linear(deep_width, 1) if hidden_dims else None
        self.embedding_reg = embedding_reg

    @classmethod
    def from_dataset(cls, config: AutoIntConfig, dataset: Any) -> AutoInt:
        return cls(
            layout_of(dataset, "autoint"),
            config.embedding_dim,
            config.num_layers,
            config.num_heads,
            config.attention_dim,
            config.hidden_dims,
            config.dropout,
            config.embedding_reg,
        )

    def interactions(self, batch: CTRBatch) -> tuple[Tensor, list[Tensor]]:
        """The last layer's field vectors and every layer's attention. Shapes: (B, F, d'H), [(B, H, F, F)]."""
        x = self.fields_in(batch)  # (B, F, D)
        weights = []
        for layer in self.layers:
            x, w = layer(x)  # (B, F, d'H)
            weights.append(w)
        return x, weights

    def logits(self, batch: CTRBatch) -> Tensor:
        x, _ = self.interactions(batch)
        logit = self.out(x.flatten(1)).squeeze(-1)  # (B,)
        if self.deep_out is not None:
            logit = logit + self.deep_out(self.deep(self.fields_in(batch).flatten(1))).squeeze(-1)
        return logit
