"""Non-invasive self-attention: side information shapes the attention map, never the values (NOVA).

Shapes:
    B batch, L sequence length, S side features, D dim, H heads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from fusionrec.nn.fusion.base import FusionOutput
from fusionrec.nn.fusion.layers import MultiHeadAttention
from fusionrec.nn.fusion.simple import ConcatFusion, GatedFusion, SumFusion
from fusionrec.registry import FUSIONS

_FUSORS = {"add": SumFusion, "concat": ConcatFusion, "gating": GatedFusion}


@FUSIONS.register(
    "non_invasive_attention",
    equation="R = F(E_id, side); out = softmax((R W_Q)(R W_K)^T / sqrt(d)) (E_id W_V)",
    used_by=("NOVA",),
    family="non-invasive",
    modality_fusor=False,
)
class NonInvasiveSelfAttention(nn.Module):
    """Self-attention whose queries and keys see the side information but whose values do not.

    Paper: Liu et al., "Non-invasive Self-attention for Side Information Fusion in Sequential
    Recommendation" (NOVA-BERT), AAAI 2021:
    ``NOVA(R, R^(ID)) = softmax(Q Kᵀ / sqrt(d_k)) V`` with ``Q = R W_Q``, ``K = R W_K``,
    ``V = R^(ID) W_V`` and ``R = F(R^(ID), f_1, ..., f_S)`` fused by ``F_add``, ``F_concat`` or
    ``F_gating``. The side information is given again at every layer and never propagated, so the
    output stays in the item-ID space.

    Args:
        dim: D; divisible by ``num_heads``.
        num_side: S, the number of side features (item- or behaviour-related; pass the position
            embedding as one of them, as NOVA-BERT does).
        num_heads: H. Default 1.
        dropout: dropout on the attention weights. Default 0.
        fusor: ``"add"``, ``"concat"`` or ``"gating"`` (default), NOVA's fusion functions, built
            from the ``sum`` / ``concat`` / ``gated`` fusors over the ``S + 1`` features.
        causal: mask future positions (SASRec-style); default False (bidirectional, BERT4Rec).

    Shapes:
        ids: (B, L, D); side: (B, L, S, D) or {name: (B, L, D)}; mask: (B, L)
        -> out (B, L, D) (zeros at padded positions), weights {"attention": (B, H, L, L)}, plus
        "fusion": (B, L, S + 1) (the gates over [id, side...], zero at padded positions) when
        ``fusor="gating"``.

    Note:
        This is the attention sublayer with its output projection; NOVA-BERT's residual,
        LayerNorm and feed-forward wrap it exactly as in BERT4Rec, applied to the ID branch.
        Missing side features should be passed as zeros (no side mask).
    """

    def __init__(
        self,
        dim: int,
        num_side: int,
        *,
        num_heads: int = 1,
        dropout: float = 0.0,
        fusor: Literal["add", "concat", "gating"] = "gating",
        causal: bool = False,
    ) -> None:
        super().__init__()
        if fusor not in _FUSORS:
            raise ValueError(f"unknown fusor {fusor!r}; choose one of: {', '.join(_FUSORS)}")
        self.num_side = num_side
        self.causal = causal
        self.fusor = _FUSORS[fusor](dim, num_side + 1)
        self.attention = MultiHeadAttention(dim, num_heads, dropout=dropout)

    def fuse(self, ids: Tensor, side: Mapping[str, Tensor] | Tensor) -> tuple[Tensor, Tensor | None]:
        """The integrated representation ``R = F(ids, side)``.

        Shapes:
            ids: (B, L, D); side: (B, L, S, D) or {name: (B, L, D)} -> R (B, L, D), gates (B, L, S+1).
        """
        if isinstance(side, Mapping):
            side = torch.stack(list(side.values()), dim=2)  # (B, L, S, D)
        if side.dim() != 4 or side.shape[2] != self.num_side or side.shape[:2] != ids.shape[:2]:
            raise ValueError(
                f"non_invasive_attention needs side info of shape (B, L, S={self.num_side}, D) "
                f"matching ids {tuple(ids.shape)}, got {tuple(side.shape)}"
            )
        batch, length, dim = ids.shape
        features = torch.cat([ids[:, :, None], side], dim=2)  # (B, L, S+1, D)
        fused = self.fusor(features.reshape(batch * length, self.num_side + 1, dim))
        gates = None if fused.weights is None else fused.weights.reshape(batch, length, -1)
        return fused.out.reshape(batch, length, dim), gates  # (B, L, D), (B, L, S+1)

    def forward(self, ids: Tensor, side: Mapping[str, Tensor] | Tensor, mask: Tensor | None = None) -> FusionOutput:
        fused, gates = self.fuse(ids, side)  # (B, L, D)
        out, weights = self.attention(
            fused, fused, ids, key_mask=mask, query_mask=mask, causal=self.causal
        )  # (B, L, D), (B, H, L, L)
        maps = {"attention": weights}
        if gates is not None:
            maps["fusion"] = gates if mask is None else gates * mask[..., None].to(gates.dtype)
        return FusionOutput(out, maps)
