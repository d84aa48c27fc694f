"""Personalised attention pooling with an ID-derived query (words, reviews, regions, clicked news).

Shapes:
    B batch, L items attended over (words, reviews, regions, history), D dim; ``*`` any extra axes
    between B and L (e.g. reviews when attending over words).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from fusionrec.nn.fusion.base import FusionOutput
from fusionrec.nn.fusion.functional import expand_query, masked_softmax
from fusionrec.nn.fusion.layers import Activation, AdditiveScore
from fusionrec.registry import FUSIONS


@FUSIONS.register(
    "personalized_attention",
    equation="q = ReLU(W_q e_id + b); a_l = softmax_l(q^T A x_l); out = sum_l a_l x_l",
    used_by=("NRPA", "SAERS", "VECF", "MM-Rec", "MARank", "UVCAN"),
    family="personalized",
    modality_fusor=False,
)
class PersonalizedAttention(nn.Module):
    """Attention pooling whose query comes from a user (or item, or candidate) embedding.

    Paper: Liu et al., "NRPA: Neural Recommendation with Personalized Attention", SIGIR 2019:
    ``q_w = ReLU(W_1 e_uid + b)``, ``α_j = softmax_j(q_wᵀ A c_j)``, ``r = Σ_j α_j c_j``, used at word
    level (one block per review) and review level. The same pattern scores SAERS's attribute
    regions (IJCAI 2019, fine-grained preference attention), VECF's image regions (SIGIR 2019),
    MM-Rec's clicked news against the candidate (SIGIR 2022) and MARank's individual-level item
    attention (AAAI 2019).

    Scores by ``score``:
        ``"bilinear"`` (NRPA): ``s_l = ReLU(W_q q + b)ᵀ A x_l``;
        ``"additive"`` (VECF, SAERS, MARank): ``s_l = hᵀ act(W_x x_l + W_q q + c)``, with
        ``squash=True`` MARank's ``σ(s_l)``;
        ``"dot"`` (MM-Rec): ``s_l = x_lᵀ q`` (no parameters; needs ``query_dim == dim``).
    Then ``a = softmax_l(s)`` over valid items and ``out = Σ_l a_l x_l``.

    Args:
        dim: D, the dim of the attended items.
        query_dim: dim of the query embedding; default ``dim``.
        hidden_dim: attention width (NRPA's attention dim); default ``dim``.
        score: ``"bilinear"`` (default), ``"additive"`` or ``"dot"``.
        activation: activation of the additive score, ``"tanh"`` (default) or ``"relu"`` (VECF).
        squash: additive score only: apply a sigmoid before the softmax (MARank). Default False.

    Shapes:
        x: (B, *, L, D); query: (B, query_dim); mask: (B, *, L) -> out (B, *, D), weights (B, *, L).

    Note:
        MM-Rec's official code never applies its history mask in the candidate attention; here
        padded history is always masked. SAERS's scoring function ``g(u, f_k)`` is unverified; use
        ``"additive"`` or ``"bilinear"``.
    """

    def __init__(
        self,
        dim: int,
        query_dim: int | None = None,
        *,
        hidden_dim: int | None = None,
        score: Literal["bilinear", "additive", "dot"] = "bilinear",
        activation: Activation = "tanh",
        squash: bool = False,
    ) -> None:
        super().__init__()
        query_dim = dim if query_dim is None else query_dim
        hidden_dim = dim if hidden_dim is None else hidden_dim
        if score not in ("bilinear", "additive", "dot"):
            raise ValueError(f"unknown score {score!r}; choose one of: bilinear, additive, dot")
        if score == "dot" and query_dim != dim:
            raise ValueError(f"score='dot' needs query_dim == dim, got {query_dim} and {dim}")
        self.score = score
        self.query_proj = nn.Linear(query_dim, hidden_dim) if score == "bilinear" else None
        self.item_proj = nn.Linear(dim, hidden_dim, bias=False) if score == "bilinear" else None
        self.additive = AdditiveScore(dim, query_dim, hidden_dim, activation, squash) if score == "additive" else None

    def scores(self, x: Tensor, query: Tensor) -> Tensor:
        """Unnormalised scores. x: (B, *, L, D); query: (B, query_dim) -> (B, *, L)."""
        if self.additive is not None:
            return self.additive(x, query)
        if self.score == "dot":
            return (x * expand_query(query, x.dim())).sum(-1)  # (B, *, L)
        assert self.query_proj is not None and self.item_proj is not None  # score == "bilinear" here
        q = expand_query(torch.relu(self.query_proj(query)), x.dim())  # (B, *1, hidden)
        return (self.item_proj(x) * q).sum(-1)  # (B, *, L)

    def forward(self, x: Tensor, query: Tensor, mask: Tensor | None = None) -> FusionOutput:
        weights = masked_softmax(self.scores(x, query), mask, dim=-1)  # (B, *, L)
        out = (weights[..., None] * x).sum(dim=-2)  # (B, *, D)
        return FusionOutput(out, weights)
