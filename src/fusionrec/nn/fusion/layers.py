"""Small modules shared by several fusion families (not registered themselves).

Shapes:
    B batch, L sequence length, D dim, H heads.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from fusionrec.nn.fusion.functional import (
    attention_mask,
    dot_product_attention,
    expand_query,
    merge_heads,
    split_heads,
)

Activation = Literal["tanh", "relu", "sigmoid"]
_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}


def activation_fn(name: str):
    """The activation function called ``name`` (``tanh``, ``relu``, ``sigmoid``, ``gelu``)."""
    if name == "gelu":
        return nn.functional.gelu
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of: gelu, {', '.join(_ACTIVATIONS)}") from None


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention that returns its per-head weights.

    Unlike ``torch.nn.MultiheadAttention`` a fully masked row gives zero weights (not NaN), padded
    query rows give zero output, and the weights are always returned per head.

    Args:
        dim: query (and output) dim D; must be divisible by ``num_heads``.
        num_heads: H. Default 1.
        kv_dim: dim of the key/value inputs; default ``dim``.
        dropout: dropout on the attention weights used for the values. Default 0.
        out_proj: apply an output projection after merging heads. Default True.
        bias: biases on the query, value and output projections. Default True.

    Shapes:
        query: (B, Lq, D); key, value: (B, Lk, kv_dim); key_mask: (B, Lk); query_mask: (B, Lq)
        -> out (B, Lq, D), weights (B, H, Lq, Lk).

    Note:
        The key projection has no bias: a key bias adds the same amount to every score of a query
        row and cancels in the softmax.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 1,
        *,
        kv_dim: int | None = None,
        dropout: float = 0.0,
        out_proj: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        kv_dim = dim if kv_dim is None else kv_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.query = nn.Linear(dim, dim, bias=bias)
        self.key = nn.Linear(kv_dim, dim, bias=False)
        self.value = nn.Linear(kv_dim, dim, bias=bias)
        self.out = nn.Linear(dim, dim, bias=bias) if out_proj else nn.Identity()

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor | None = None,
        *,
        key_mask: Tensor | None = None,
        query_mask: Tensor | None = None,
        causal: bool = False,
    ) -> tuple[Tensor, Tensor]:
        value = key if value is None else value
        q = split_heads(self.query(query), self.num_heads)  # (B, H, Lq, D/H)
        k = split_heads(self.key(key), self.num_heads)  # (B, H, Lk, D/H)
        v = split_heads(self.value(value), self.num_heads)  # (B, H, Lk, D/H)
        mask = attention_mask(key_mask, query_mask, causal, query.shape[1], query.device)
        context, weights = dot_product_attention(q, k, v, mask, self.dropout, self.training)
        out = self.out(merge_heads(context))  # (B, Lq, D)
        if query_mask is not None:
            out = out * query_mask[..., None].to(out.dtype)
        return out, weights


class AdditiveScore(nn.Module):
    """Additive (Bahdanau-style) attention scores, optionally conditioned on a query.

    ``s_l = hᵀ act(W_x x_l + W_q q + b)``; with ``squash=True`` the score is ``σ(s_l)`` (MARank).

    Args:
        dim: item dim D.
        query_dim: query dim; ``None`` builds a query-free scorer.
        hidden_dim: width of the scoring layer; default ``dim``.
        activation: ``tanh`` (default), ``relu`` or ``sigmoid``.
        squash: pass the score through a sigmoid before the softmax. Default False.

    Shapes:
        x: (B, *, L, D); query: (B, query_dim) or None -> scores (B, *, L).
    """

    def __init__(
        self,
        dim: int,
        query_dim: int | None = None,
        hidden_dim: int | None = None,
        activation: Activation = "tanh",
        squash: bool = False,
    ) -> None:
        super().__init__()
        hidden_dim = dim if hidden_dim is None else hidden_dim
        self.item = nn.Linear(dim, hidden_dim)
        self.query = None if query_dim is None else nn.Linear(query_dim, hidden_dim, bias=False)
        self.score = nn.Linear(hidden_dim, 1, bias=False)  # a bias here would cancel in the softmax
        self.act = activation_fn(activation)
        self.squash = squash

    def forward(self, x: Tensor, query: Tensor | None = None) -> Tensor:
        hidden = self.item(x)  # (B, *, L, hidden)
        if query is not None:
            if self.query is None:
                raise ValueError("this attention was built without a query (query_dim=None)")
            hidden = hidden + expand_query(self.query(query), x.dim())  # (B, *, L, hidden)
        return self.scores(hidden)

    def scores(self, hidden: Tensor) -> Tensor:
        """Scores from already summed projections ``W_x x_l + W_q q + b`` (callers that project
        items and queries at different granularities). (..., hidden) -> (...)."""
        scores = self.score(self.act(hidden)).squeeze(-1)
        return torch.sigmoid(scores) if self.squash else scores


class FeedForward(nn.Module):
    """Position-wise two-layer MLP ``W_2 act(W_1 x + b_1) + b_2``.

    Shapes:
        x: (..., D) -> (..., D).
    """

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0, activation: str = "relu") -> None:
        super().__init__()
        self.inner = nn.Linear(dim, hidden_dim)
        self.outer = nn.Linear(hidden_dim, dim)
        self.act = activation_fn(activation)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.outer(self.dropout(self.act(self.inner(x))))
