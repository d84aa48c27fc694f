"""Stacked co-attention between two sets (user side ↔ item side, top ↔ bottom), several steps.

Shapes:
    B batch, La / Lb sizes of the two sets, D dim, S reasoning steps.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusionrec.nn.fusion.base import PairFusionOutput
from fusionrec.nn.fusion.functional import masked_mean, masked_softmax
from fusionrec.nn.fusion.layers import AdditiveScore
from fusionrec.registry import FUSIONS


def attend(scorer: AdditiveScore, items: Tensor, query: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """One guided attention hop: ``Σ_l softmax_l(score(x_l, q)) x_l``.

    Shapes:
        items: (B, L, D); query: (B, D); mask: (B, L) -> summary (B, D), weights (B, L).
    """
    weights = masked_softmax(scorer(items, query), mask, dim=1)  # (B, L)
    return (weights[..., None] * items).sum(dim=1), weights  # (B, D), (B, L)


@FUSIONS.register(
    "co_attention",
    equation="v^s = v^{s-1} + Att(B; u^{s-1}); u^s = u^{s-1} + Att(A; v^s), s = 1..S",
    used_by=("UVCAN", "NOR"),
    family="co-attention",
    modality_fusor=False,
)
class StackedCoAttention(nn.Module):
    """Co-attention that alternates between two sets for several reasoning steps.

    Paper: Liu et al., "User-Video Co-Attention Network for Personalized Micro-video
    Recommendation" (UVCAN), WWW 2019: user-side multimodal data produce the fusion weights of the
    video side, reasoned in a stacked-attention fashion. Also NOR's mutual attention (Lin et al.,
    "Explainable Outfit Recommendation with Joint Outfit Matching and Comment Generation", TKDE
    2019): ``a_t = softmax(wᵀ tanh(W F_t + U mean(F_b)))``.

    With ``Att(X; q) = Σ_l softmax_l(hᵀ tanh(W x_l + U q + c)) x_l``, ``u^0 = query_a or mean(A)``,
    ``v^0 = query_b or mean(B)`` and, for ``s = 1..S`` (separate attention parameters per step):
    ``v^s = v^{s-1} + Att_s(B; u^{s-1})``, then ``u^s = u^{s-1} + Att_s(A; v^s)``.
    ``parallel=True`` uses ``v^{s-1}`` in the second update (both sides updated at once), and
    ``residual=False`` drops the ``u^{s-1}`` / ``v^{s-1}`` terms; ``parallel=True, residual=False,
    num_steps=1`` with no queries is NOR's mutual attention.

    Args:
        dim: D, the dim of both sets' elements.
        num_steps: S. Default 2.
        hidden_dim: width of the scoring layers; default ``dim``.
        parallel: update both sides from the previous step's summaries. Default False.
        residual: add each step's summary to the previous one (stacked attention). Default True.

    Shapes:
        a: (B, La, D); b: (B, Lb, D); mask_a: (B, La); mask_b: (B, Lb); query_a, query_b: (B, D)
        -> out u^S (B, D), out_b v^S (B, D), weights {"a": (B, S, La), "b": (B, S, Lb)}.

    Note:
        UVCAN's exact equations are unverified (no code, paper body not read): its first hop, a
        user-ID-guided self-attention over the user's own features, is here the initial query
        ``query_a`` (pass the user ID embedding). A fully masked set contributes zero summaries, so
        its side keeps its initial query (zeros without one).
    """

    def __init__(
        self,
        dim: int,
        *,
        num_steps: int = 2,
        hidden_dim: int | None = None,
        parallel: bool = False,
        residual: bool = True,
    ) -> None:
        super().__init__()
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        self.num_steps = num_steps
        self.parallel = parallel
        self.residual = residual
        self.score_a = nn.ModuleList(AdditiveScore(dim, dim, hidden_dim) for _ in range(num_steps))
        self.score_b = nn.ModuleList(AdditiveScore(dim, dim, hidden_dim) for _ in range(num_steps))

    def forward(
        self,
        a: Tensor,
        b: Tensor,
        mask_a: Tensor | None = None,
        mask_b: Tensor | None = None,
        query_a: Tensor | None = None,
        query_b: Tensor | None = None,
    ) -> PairFusionOutput:
        u = masked_mean(a, mask_a)[0] if query_a is None else query_a  # (B, D)
        v = masked_mean(b, mask_b)[0] if query_b is None else query_b  # (B, D)
        weights_a, weights_b = [], []
        for score_a, score_b in zip(self.score_a, self.score_b):
            summary_b, w_b = attend(score_b, b, u, mask_b)  # (B, D), (B, Lb)
            guide = v if self.parallel else (v + summary_b if self.residual else summary_b)
            summary_a, w_a = attend(score_a, a, guide, mask_a)  # (B, D), (B, La)
            v = v + summary_b if self.residual else summary_b
            u = u + summary_a if self.residual else summary_a
            weights_a.append(w_a)
            weights_b.append(w_b)
        weights = {"a": torch.stack(weights_a, 1), "b": torch.stack(weights_b, 1)}  # (B, S, La), (B, S, Lb)
        return PairFusionOutput(u, weights, v)
