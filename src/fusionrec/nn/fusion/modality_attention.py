"""Modality attention pooling: a query attends over M modality vectors.

Shapes:
    B batch, M modalities, D dim.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from fusionrec.nn.fusion.base import FusionOutput
from fusionrec.nn.fusion.functional import masked_softmax, stack_modalities
from fusionrec.nn.fusion.layers import AdditiveScore
from fusionrec.registry import FUSIONS


@FUSIONS.register(
    "modality_attention",
    equation="a_m = softmax_m(h^T tanh(W x_m + U q + b)); out = sum_m a_m x_m",
    used_by=("MARIO", "UVCAN"),
    family="modality",
    modality_fusor=True,
)
class ModalityAttention(nn.Module):
    """Query-conditioned attention pooling over modality vectors.

    Paper: Kim et al., "MARIO: Modality-Aware Attention and Modality-Preserving Decoders for
    Multimedia Recommendation", CIKM 2022 (modality-aware attention: the influence ``a^m_ij`` of each
    modality on each user-item interaction); MARIO's default ``fusion``. Also the default first hop
    of UVCAN (Liu et al., WWW 2019): the user ID embedding as the query over the user's multimodal
    interests. Any model with a ``fusion`` option (MCPTR, HCGCN) can select it, but neither uses it by
    default: their inter-modal aggregation is :class:`~fusionrec.nn.fusion.ModalitySelfAttention`.
    MML's adaptive score-level fusion is its own layer (``ScoreFusion`` in
    ``models/sequential/mml.py``: an MLP over each learner's LayerNorm-ed state, softmax over
    learners), not this block.

    ``a_m = softmax_m(hᵀ tanh(W x_m + U q + b))`` (``interaction="additive"``) or
    ``a_m = softmax_m(hᵀ tanh(W (q ⊙ x_m) + b))`` (``interaction="product"``, MARIO's ``u ⊙ v^m``);
    ``out = Σ_m a_m x_m``. Without a query the score is ``hᵀ tanh(W x_m + b)``.

    Args:
        dim: D, the dim of each modality, of the query and of the output.
        num_modalities: M.
        hidden_dim: width of the scoring layer; default ``dim``.
        interaction: ``"additive"`` (default) or ``"product"``, how the query meets each modality.

    Shapes:
        xs: (B, M, D) or {name: (B, D)}; mask: (B, M); query: (B, D) or None
        -> out (B, D), weights (B, M).
        :meth:`pairwise` attends for all B x C pairs of B queries and C modality sets (full
        ranking): out (B, C, D), weights (B, C, M).

    Note:
        MARIO's exact attention and whether it pools ``v^m`` or ``u ⊙ v^m`` are unverified (paper
        body not read); this block pools the modality vectors themselves. Each modality is scored by
        a shared layer (pass e.g. the mean of the modalities as ``query`` to condition on all of
        them), which makes the block permutation invariant over modalities.
    """

    def __init__(
        self,
        dim: int,
        num_modalities: int,
        *,
        hidden_dim: int | None = None,
        interaction: Literal["additive", "product"] = "additive",
    ) -> None:
        super().__init__()
        if interaction not in ("additive", "product"):
            raise ValueError(f"unknown interaction {interaction!r}; choose one of: additive, product")
        self.dim = dim
        self.num_modalities = num_modalities
        self.interaction = interaction
        query_dim = dim if interaction == "additive" else None
        self.scorer = AdditiveScore(dim, query_dim, hidden_dim, activation="tanh")

    def forward(
        self, xs: Mapping[str, Tensor] | Tensor, mask: Tensor | None = None, query: Tensor | None = None
    ) -> FusionOutput:
        x, mask = stack_modalities(xs, mask, self.num_modalities, "modality_attention")  # (B, M, D)
        if self.interaction == "product":
            keys = x if query is None else x * query[:, None, :]  # (B, M, D)
            scores = self.scorer(keys)  # (B, M)
        else:
            scores = self.scorer(x, query)  # (B, M)
        weights = masked_softmax(scores, mask, dim=1)  # (B, M)
        out = (weights.unsqueeze(-1) * x).sum(1)  # (B, D); einsum would run tiny bmm's, ~5x slower on CPU
        return FusionOutput(out, weights)

    def pairwise(self, xs: Tensor, mask: Tensor | None = None, query: Tensor | None = None) -> FusionOutput:
        """Attention for every (query b, modality set c) pair, equal to ``forward`` on the B x C expanded pairs.

        Each set's projection is computed once, and the product interaction runs as one
        ``(C·M, D) x (D, B·H)`` matrix product, so no ``(B, C, M, D)`` tensor is formed.

        Shapes:
            xs: (C, M, D); mask: (C, M); query: (B, D) or None (then B = 1)
            -> out (B, C, D), weights (B, C, M).
        """
        x, mask = stack_modalities(xs, mask, self.num_modalities, "modality_attention")  # (C, M, D)
        scorer = self.scorer
        if query is None:
            hidden = scorer.item(x)[None]  # (1, C, M, hidden)
        elif self.interaction == "product":
            weight = scorer.item.weight  # (hidden, D)
            scaled = query[:, None, :] * weight  # (B, hidden, D): W diag(q)
            hidden = torch.einsum("cmd,bhd->bcmh", x, scaled)  # (B, C, M, hidden)
            if scorer.item.bias is not None:
                hidden = hidden + scorer.item.bias
        else:
            assert scorer.query is not None  # the "additive" interaction builds its scorer with a query
            hidden = scorer.item(x)[None] + scorer.query(query)[:, None, None, :]  # (B, C, M, hidden)
        scores = scorer.score(scorer.act(hidden)).squeeze(-1)  # (B, C, M)
        weights = masked_softmax(scores, None if mask is None else mask[None], dim=-1)  # (B, C, M)
        out = torch.einsum("bcm,cmd->bcd", weights, x)  # (B, C, D)
        return FusionOutput(out, weights)
