"""Sequence-encoder leaves shared by the sequential models (BERT4Rec, NOVA-BERT, SASRec).

Shapes:
    B batch, L sequence length, D dim, H heads, S side features, T target slots, N negatives, I items.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from fusionrec.nn.fusion.base import FusionOutput
from fusionrec.nn.fusion.layers import FeedForward, MultiHeadAttention


class SelfAttention(nn.Module):
    """Multi-head self-attention with the call signature of a NOVA layer, ignoring side information.

    Shapes:
        x: (B, L, D); mask: (B, L) -> out (B, L, D) (zeros at padding), weights {"attention": (B, H, L, L)}.
    """

    def __init__(self, dim: int, num_heads: int = 1, dropout: float = 0.0, causal: bool = False) -> None:
        super().__init__()
        self.causal = causal
        self.attention = MultiHeadAttention(dim, num_heads, dropout=dropout)

    def forward(
        self, x: Tensor, side: Mapping[str, Tensor] | Tensor | None = None, mask: Tensor | None = None
    ) -> FusionOutput:
        out, weights = self.attention(x, x, x, key_mask=mask, query_mask=mask, causal=self.causal)
        return FusionOutput(out, {"attention": weights})


class PostNormLayer(nn.Module):
    """A BERT encoder layer around a pluggable self-attention (BERT4Rec, NOVA-BERT).

    ``h = LN(x + Dropout(Attn(x, side))); out = LN(h + Dropout(FFN(h)))``, with ``Attn`` either
    :class:`SelfAttention` or :class:`~fusionrec.nn.fusion.NonInvasiveSelfAttention` (whose queries
    and keys also see ``side`` while its values come from ``x`` only).

    Args:
        attention: ``attention(x, side, mask) -> FusionOutput(out (B, L, D), weights)``.
        dim: D. inner_dim: the feed-forward width. dropout: on both sublayer outputs and inside the
        feed-forward. activation: of the feed-forward (default ``gelu``).

    Shapes:
        x: (B, L, D); side: anything ``attention`` takes; mask: (B, L)
        -> out (B, L, D) (zeros at padding), the attention's weights.
    """

    def __init__(
        self, attention: nn.Module, dim: int, inner_dim: int, dropout: float = 0.1, activation: str = "gelu"
    ) -> None:
        super().__init__()
        self.attention = attention
        self.attention_norm = nn.LayerNorm(dim)
        self.feed_forward = FeedForward(dim, inner_dim, dropout, activation)
        self.output_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, side: object = None, mask: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        attended = self.attention(x, side, mask)  # (B, L, D)
        h = self.attention_norm(x + self.dropout(attended.out))  # (B, L, D)
        out = self.output_norm(h + self.dropout(self.feed_forward(h)))  # (B, L, D)
        if mask is not None:
            out = out * mask[..., None].to(out.dtype)
        weights = attended.weights
        return out, weights if isinstance(weights, dict) else {"attention": weights}


def target_slots(
    hidden: Tensor, targets: Tensor, negatives: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The hidden states, targets and negatives of the slots that have a target (``targets >= 0``).

    Negatives shared by the batch (N,) are returned as they are.

    Shapes:
        hidden: (B, L, D); targets: (B, L); negatives: (B, L, N) or (N,) -> (T, D), (T,), (T, N) or (N,) or None.
    """
    where = targets >= 0  # (B, L)
    if negatives is None or negatives.dim() == 1:  # shared (or none): returned as they are
        return hidden[where], targets[where], negatives
    return hidden[where], targets[where], negatives[where]


def last_slot(hidden: Tensor) -> Tensor:
    """The state of the last slot (the most recent item, or the mask token to predict). (B, L, D) -> (B, D)."""
    return hidden[:, -1]


def item_scores(
    hidden: Tensor, item_weight: Tensor, candidates: Tensor | None = None, item_bias: Tensor | None = None
) -> Tensor:
    """``h · e_i (+ b_i)`` for all items or ``candidates``. Shapes: (B, D), (I, D), (C,), (I,) -> (B, C)."""
    weight = item_weight if candidates is None else item_weight[candidates]  # (C, D)
    scores = hidden @ weight.T  # (B, C)
    if item_bias is not None:
        scores = scores + (item_bias if candidates is None else item_bias[candidates])
    return scores


def stack_side(embeddings: list[Tensor], like: Tensor) -> Tensor:
    """Stack per-feature side embeddings into ``(B, L, S, D)``; S = 0 gives an empty tensor."""
    if not embeddings:
        return like.new_zeros(*like.shape[:2], 0, like.shape[-1])
    return torch.stack(embeddings, dim=2)
