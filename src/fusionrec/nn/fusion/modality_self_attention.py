"""Modality self-attention: a small transformer over modality tokens, then pooling.

Shapes:
    B batch, M modalities, D dim, H heads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from fusionrec.nn.fusion.base import FusionOutput
from fusionrec.nn.fusion.functional import masked_mean, masked_softmax, stack_modalities
from fusionrec.nn.fusion.layers import AdditiveScore, FeedForward, MultiHeadAttention
from fusionrec.registry import FUSIONS


class TokenEncoderLayer(nn.Module):
    """Post-LayerNorm transformer encoder layer with padding masks and returned weights.

    ``h = LN(x + MHA(x, x, x)); out = LN(h + FFN(h))``.

    Shapes:
        x: (B, L, D); mask: (B, L) -> out (B, L, D) (zeros at padded positions), weights (B, H, L, L).
    """

    def __init__(self, dim: int, num_heads: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.attention = MultiHeadAttention(dim, num_heads, dropout=dropout)
        self.feed_forward = FeedForward(dim, hidden_dim, dropout, activation="gelu")
        self.norm_attention = nn.LayerNorm(dim)
        self.norm_feed_forward = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        attended, weights = self.attention(x, x, key_mask=mask, query_mask=mask)  # (B, L, D)
        h = self.norm_attention(x + self.dropout(attended))  # (B, L, D)
        out = self.norm_feed_forward(h + self.dropout(self.feed_forward(h)))  # (B, L, D)
        if mask is not None:
            out = out * mask[..., None].to(out.dtype)
        return out, weights


@FUSIONS.register(
    "modality_self_attention",
    equation="T = Transformer([x_1..x_M]); a = softmax_m(h^T tanh(W t_m + U q)); out = sum_m a_m t_m",
    used_by=("MCPTR", "HCGCN"),
    family="modality",
    modality_fusor=True,
)
class ModalitySelfAttention(nn.Module):
    """Self-attention over modality tokens that "each occupy the same position", then pooling.

    Paper: Liu et al., "Multi-Modal Contrastive Pre-training for Recommendation" (MCPTR), ICMR 2022:
    inter-modal aggregation where self-attention decides the fusion weights; the same coarse-grained
    modality attention is attributed to HCGCN (Mu et al., "Learning Hybrid Behavior Patterns for
    Multimedia Recommendation", ACM MM 2022).

    ``T = Encoder^N([x_1; ...; x_M])`` (post-LN transformer layers, no positional encoding);
    ``a = softmax_m(hᵀ tanh(W t_m + U q))`` (``pooling="attention"``) or uniform (``"mean"``);
    ``out = Σ_m a_m t_m``.

    Args:
        dim: D; must be divisible by ``num_heads``.
        num_modalities: M.
        num_heads: H. Default 1.
        num_layers: encoder layers N. Default 1.
        hidden_dim: feed-forward width; default ``2 * dim``.
        dropout: dropout on attention weights and sublayer outputs. Default 0.
        pooling: ``"attention"`` (default; query-conditioned when a query is passed) or ``"mean"``.
        modality_embedding: add a learned per-modality embedding to each token. Default False
            (MCPTR's modalities "occupy the same position"); True breaks permutation invariance.

    Shapes:
        xs: (B, M, D) or {name: (B, D)}; mask: (B, M); query: (B, D) or None
        -> out (B, D), weights {"self": (B, N, H, M, M), "pool": (B, M)}.

    Note:
        Neither paper's exact layer (depth, heads, norm placement, pooling) is verified; the encoder
        is a standard BERT-style post-LN layer and the pooling an additive attention.
    """

    def __init__(
        self,
        dim: int,
        num_modalities: int,
        *,
        num_heads: int = 1,
        num_layers: int = 1,
        hidden_dim: int | None = None,
        dropout: float = 0.0,
        pooling: Literal["attention", "mean"] = "attention",
        modality_embedding: bool = False,
    ) -> None:
        super().__init__()
        if pooling not in ("attention", "mean"):
            raise ValueError(f"unknown pooling {pooling!r}; choose one of: attention, mean")
        self.dim = dim
        self.num_modalities = num_modalities
        hidden_dim = 2 * dim if hidden_dim is None else hidden_dim
        self.layers = nn.ModuleList(TokenEncoderLayer(dim, num_heads, hidden_dim, dropout) for _ in range(num_layers))
        self.pool = AdditiveScore(dim, dim) if pooling == "attention" else None
        self.modality_embedding = nn.Parameter(torch.randn(num_modalities, dim) * 0.02) if modality_embedding else None

    def forward(
        self, xs: Mapping[str, Tensor] | Tensor, mask: Tensor | None = None, query: Tensor | None = None
    ) -> FusionOutput:
        x, mask = stack_modalities(xs, mask, self.num_modalities, "modality_self_attention")  # (B, M, D)
        if self.modality_embedding is not None:
            x = x + self.modality_embedding  # (B, M, D)
        maps = []
        for layer in self.layers:
            x, weights = layer(x, mask)  # (B, M, D), (B, H, M, M)
            maps.append(weights)
        if self.pool is None:
            out, pool = masked_mean(x, mask)  # (B, D), (B, M)
        else:
            pool = masked_softmax(self.pool(x, query), mask, dim=1)  # (B, M)
            out = torch.einsum("bm,bmd->bd", pool, x)  # (B, D)
        return FusionOutput(out, {"self": torch.stack(maps, dim=1), "pool": pool})
