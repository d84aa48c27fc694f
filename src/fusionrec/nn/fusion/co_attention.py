"""Stacked co-attention between two sets (user side ↔ item side, top ↔ bottom), several steps.

Shapes:
    B batch, La / Lb sizes of the two sets, D dim, S reasoning steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

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


Place = Callable[[Tensor], Tensor]
"""Puts a per-row tensor ``(N, *rest)`` of one set at the pairs: ``(X or 1, Y or 1, *rest)``."""


def mix(base: Tensor | None, coef: Tensor, items: Tensor) -> Tensor:
    """``base + Σ_l coef_l items_l`` with broadcasting over the pair axes.

    Shapes: base (X|1, Y|1, F) or None; coef (X, Y, L); items (X|1, Y|1, L, F) -> (X, Y, F).
    """
    mixed = (coef[..., None] * items).sum(-2)  # (X, Y, F)
    return mixed if base is None else mixed + base


def keyed_scores(scorer: AdditiveScore, keys: Tensor, query_hidden: Tensor) -> Tensor:
    """Additive scores ``hᵀ act(keys + query_hidden)`` from precomputed projections.

    Shapes:
        keys: (X|1, Y|1, L, hidden) from ``scorer.item``; query_hidden: (X, Y, hidden) from
        ``scorer.query`` -> (X, Y, L).
    """
    scores = scorer.score(scorer.act(keys + query_hidden[..., None, :])).squeeze(-1)  # (X, Y, L)
    return torch.sigmoid(scores) if scorer.squash else scores


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
        :meth:`indexed` scores pairs of rows of two sets of sets cheaply (training on (user, item)
        pairs), :meth:`pairwise` all Ba x Bb pairs of two batches (full ranking).

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
        for module_a, module_b in zip(self.score_a, self.score_b):
            score_a, score_b = cast(AdditiveScore, module_a), cast(AdditiveScore, module_b)  # ModuleList items
            summary_b, w_b = attend(score_b, b, u, mask_b)  # (B, D), (B, Lb)
            guide = v if self.parallel else (v + summary_b if self.residual else summary_b)
            summary_a, w_a = attend(score_a, a, guide, mask_a)  # (B, D), (B, La)
            v = v + summary_b if self.residual else summary_b
            u = u + summary_a if self.residual else summary_a
            weights_a.append(w_a)
            weights_b.append(w_b)
        weights = {"a": torch.stack(weights_a, 1), "b": torch.stack(weights_b, 1)}  # (B, S, La), (B, S, Lb)
        return PairFusionOutput(u, weights, v)

    def indexed(
        self,
        a: Tensor,
        b: Tensor,
        index_a: Tensor,
        index_b: Tensor,
        mask_a: Tensor | None = None,
        mask_b: Tensor | None = None,
        query_a: Tensor | None = None,
        query_b: Tensor | None = None,
    ) -> PairFusionOutput:
        """Co-attention of the P pairs ``(a[index_a[p]], b[index_b[p]])``, e.g. training (user, item) pairs.

        Equal to ``forward(a[index_a], b[index_b], ...)``, but each row's projections are computed
        once however many pairs it is in (see :meth:`_pairs`).

        Shapes:
            a: (Na, La, D); b: (Nb, Lb, D); index_a, index_b: (P,); mask_a: (Na, La); mask_b: (Nb, Lb);
            query_a: (Na, D); query_b: (Nb, D) -> out (P, D), out_b (P, D),
            weights {"a": (P, S, La), "b": (P, S, Lb)}.
        """
        out = self._pairs(
            a, b, mask_a, mask_b, query_a, query_b, lambda t: t[index_a][:, None], lambda t: t[index_b][:, None]
        )
        weights = cast(dict[str, Tensor], out.weights)  # _pairs always returns a dict of weights and out_b
        assert out.out_b is not None
        return PairFusionOutput(out.out[:, 0], {k: w[:, 0] for k, w in weights.items()}, out.out_b[:, 0])

    def pairwise(
        self,
        a: Tensor,
        b: Tensor,
        mask_a: Tensor | None = None,
        mask_b: Tensor | None = None,
        query_a: Tensor | None = None,
        query_b: Tensor | None = None,
    ) -> PairFusionOutput:
        """Co-attention of every (row of ``a``, row of ``b``) pair, e.g. users x candidate items.

        Equal to :meth:`forward` on the ``Ba * Bb`` expanded pairs, without copying either set per
        pair (see :meth:`_pairs`); callers chunk ``b`` to bound the ``(Ba, Bb, max(La, Lb),
        hidden)`` intermediates.

        Shapes:
            a: (Ba, La, D); b: (Bb, Lb, D); mask_a: (Ba, La); mask_b: (Bb, Lb); query_a: (Ba, D);
            query_b: (Bb, D) -> out (Ba, Bb, D), out_b (Ba, Bb, D),
            weights {"a": (Ba, Bb, S, La), "b": (Ba, Bb, S, Lb)}.
        """
        return self._pairs(a, b, mask_a, mask_b, query_a, query_b, lambda t: t[:, None], lambda t: t[None])

    def _pairs(
        self,
        a: Tensor,
        b: Tensor,
        mask_a: Tensor | None,
        mask_b: Tensor | None,
        query_a: Tensor | None,
        query_b: Tensor | None,
        place_a: Place,
        place_b: Place,
    ) -> PairFusionOutput:
        """The S steps for pairs laid out on an (X, Y) grid by ``place_a`` / ``place_b``.

        Every projection into the attention space is linear, so each set element, query and
        initial state is projected once per row, and the states ``u^s``, ``v^s`` are carried as
        mixing coefficients over the two sets: per pair and step the work is ``O((La + Lb) hidden)``
        instead of ``O((La + Lb + 2) D hidden)``.

        Shapes: a (Na, La, D); b (Nb, Lb, D) -> out, out_b (X, Y, D), weights (X, Y, S, La | Lb).
        """
        u0 = masked_mean(a, mask_a)[0] if query_a is None else query_a  # (Na, D)
        v0 = masked_mean(b, mask_b)[0] if query_b is None else query_b  # (Nb, D)
        pair_mask_a = None if mask_a is None else place_a(mask_a)  # (X|1, Y|1, La)
        pair_mask_b = None if mask_b is None else place_b(mask_b)  # (X|1, Y|1, Lb)
        shape = torch.broadcast_shapes(place_a(a[:, :1, 0]).shape[:2], place_b(b[:, :1, 0]).shape[:2])  # (X, Y)
        coef_a = a.new_zeros(*shape, a.shape[1])  # u = base_a u0 + Σ_l coef_a[l] a_l, (X, Y, La)
        coef_b = b.new_zeros(*shape, b.shape[1])  # v = base_b v0 + Σ_l coef_b[l] b_l, (X, Y, Lb)
        base_a = base_b = True
        weights_a, weights_b = [], []
        for module_a, module_b in zip(self.score_a, self.score_b):
            score_a, score_b = cast(AdditiveScore, module_a), cast(AdditiveScore, module_b)  # ModuleList items
            assert score_a.query is not None and score_b.query is not None  # built with query_dim=dim
            # query of the b-side attention: score_b.query(u^{s-1}), a bias-free linear map
            query_u = mix(place_a(score_b.query(u0)) if base_a else None, coef_a, place_a(score_b.query(a)))
            w_b = masked_softmax(keyed_scores(score_b, place_b(score_b.item(b)), query_u), pair_mask_b, dim=-1)
            if self.parallel:
                guide_base, guide_coef = base_b, coef_b
            else:
                guide_base, guide_coef = (base_b, coef_b + w_b) if self.residual else (False, w_b)
            query_v = mix(place_b(score_a.query(v0)) if guide_base else None, guide_coef, place_b(score_a.query(b)))
            w_a = masked_softmax(keyed_scores(score_a, place_a(score_a.item(a)), query_v), pair_mask_a, dim=-1)
            if self.residual:
                coef_a, coef_b = coef_a + w_a, coef_b + w_b
            else:
                coef_a, coef_b, base_a, base_b = w_a, w_b, False, False
            weights_a.append(w_a)  # (X, Y, La)
            weights_b.append(w_b)  # (X, Y, Lb)
        u = mix(place_a(u0) if base_a else None, coef_a, place_a(a))  # (X, Y, D)
        v = mix(place_b(v0) if base_b else None, coef_b, place_b(b))  # (X, Y, D)
        weights = {"a": torch.stack(weights_a, 2), "b": torch.stack(weights_b, 2)}  # (X, Y, S, La), (X, Y, S, Lb)
        return PairFusionOutput(u, weights, v)
