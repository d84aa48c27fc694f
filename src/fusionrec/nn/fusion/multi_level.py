"""MKGformer's multi-level fusion: prefix-guided attention and correlation-aware FFN fusion.

Both are sublayers of MKGformer's M-Encoder, whose vision and text transformer layers run in
lockstep: the vision layer attends over the text layer's keys and values (coarse-grained
prefix-guided interaction), the text layer's feed-forward mixes in the vision tokens most
correlated with each text token (fine-grained correlation-aware fusion).

Shapes:
    B batch, Lv vision tokens (patches / regions), Lt text tokens, D dim, H heads.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusionrec.nn.fusion.base import FusionOutput
from fusionrec.nn.fusion.functional import (
    attention_mask,
    dot_product_attention,
    masked_softmax,
    merge_heads,
    split_heads,
)
from fusionrec.nn.fusion.layers import activation_fn
from fusionrec.registry import FUSIONS


def _ones(shape: tuple[int, ...], like: Tensor) -> Tensor:
    return torch.ones(shape, dtype=torch.bool, device=like.device)


@FUSIONS.register(
    "prefix_guided_attention",
    equation="out = softmax(Q_v [K_t; K_v]^T / sqrt(d)) [V_t; V_v]",
    used_by=("MKGformer",),
    family="multi-level",
    modality_fusor=False,
)
class PrefixGuidedAttention(nn.Module):
    """Self-attention of one modality with the other modality's keys and values as a prefix.

    Paper: Chen et al., "Hybrid Transformer with Multi-level Fusion for Multimodal Knowledge Graph
    Completion" (MKGformer), SIGIR 2022; prefix-guided interaction as in the official code
    (zjunlp/MKGformer, ``CLIPAttention`` with ``past_key_values``):
    ``Attn = softmax(Q_v [K_t; K_v]ᵀ / sqrt(d)) [V_t; V_v]``, ``Q_v, K_v, V_v`` from the vision
    tokens, ``K_t, V_t`` from the text tokens (the text layer's own key/value projections).

    Args:
        dim: D of the attending tokens (vision); divisible by ``num_heads``.
        prefix_dim: dim of the prefix tokens (text); default ``dim``.
        num_heads: H. Default 1.
        dropout: dropout on the attention weights. Default 0.

    Shapes:
        x: (B, Lv, D); prefix: (B, Lt, prefix_dim), or already projected ``(K_t, V_t)`` each
        (B, H, Lt, D / H) (e.g. taken from the text layer); mask: (B, Lv); prefix_mask: (B, Lt)
        -> out (B, Lv, D) (zeros at padded positions), weights (B, H, Lv, Lt + Lv) (prefix first).

    Note:
        The official code never masks padded text tokens in the prefix; here ``prefix_mask`` does.
        This block is the attention sublayer only (with output projection); CLIP's pre-LayerNorm,
        residual and MLP wrap it. The block owns ``prefix_key`` / ``prefix_value`` projections for
        when the text layer's keys and values are not passed in.
    """

    def __init__(self, dim: int, *, prefix_dim: int | None = None, num_heads: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        prefix_dim = dim if prefix_dim is None else prefix_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim)
        self.prefix_key = nn.Linear(prefix_dim, dim, bias=False)
        self.prefix_value = nn.Linear(prefix_dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self,
        x: Tensor,
        prefix: Tensor | tuple[Tensor, Tensor],
        mask: Tensor | None = None,
        prefix_mask: Tensor | None = None,
    ) -> FusionOutput:
        if isinstance(prefix, Tensor):
            prefix_k = split_heads(self.prefix_key(prefix), self.num_heads)  # (B, H, Lt, D/H)
            prefix_v = split_heads(self.prefix_value(prefix), self.num_heads)  # (B, H, Lt, D/H)
        else:
            prefix_k, prefix_v = prefix
        batch, num_x, num_prefix = x.shape[0], x.shape[1], prefix_k.shape[2]
        q = split_heads(self.query(x), self.num_heads)  # (B, H, Lv, D/H)
        k = torch.cat([prefix_k, split_heads(self.key(x), self.num_heads)], dim=2)  # (B, H, Lt+Lv, D/H)
        v = torch.cat([prefix_v, split_heads(self.value(x), self.num_heads)], dim=2)  # (B, H, Lt+Lv, D/H)
        if mask is None and prefix_mask is None:
            full = None
        else:
            key_mask = torch.cat(
                [
                    _ones((batch, num_prefix), x) if prefix_mask is None else prefix_mask,
                    _ones((batch, num_x), x) if mask is None else mask,
                ],
                dim=1,
            )  # (B, Lt+Lv)
            full = attention_mask(key_mask, mask)  # (B, 1, Lv, Lt+Lv)
        context, weights = dot_product_attention(q, k, v, full, self.dropout, self.training)
        out = self.out(merge_heads(context))  # (B, Lv, D)
        if mask is not None:
            out = out * mask[..., None].to(out.dtype)
        return FusionOutput(out, weights)


@FUSIONS.register(
    "correlation_aware_fusion",
    equation="A = softmax(H_t H_v^T); out = LN(H_t + W_2 act(W_1 H_t + W_f A H_v))",
    used_by=("MKGformer",),
    family="multi-level",
    modality_fusor=False,
)
class CorrelationAwareFusion(nn.Module):
    """Feed-forward sublayer that adds, per text token, its most correlated vision tokens.

    Paper: Chen et al., "Hybrid Transformer with Multi-level Fusion for Multimodal Knowledge Graph
    Completion" (MKGformer), SIGIR 2022; as in the official code (``BertFusion``,
    ``BertIntermediate``, ``BertOutput``): ``S = H_t H_vᵀ``, ``A = softmax_patches(S)``,
    ``F = A H_v``; ``I = act(W_1 H_t + W_f F)``; ``out = LN(H_t + W_2 I)``.

    Args:
        dim: D of the text tokens.
        vision_dim: dim of the vision tokens; default ``dim``. When it differs, a linear map (no
            bias) brings the vision tokens to ``dim`` first.
        hidden_dim: intermediate width; default ``4 * dim`` (BERT).
        dropout: dropout on the FFN output. Default 0.
        activation: ``"gelu"`` (default, BERT) or another name known to the fusion layers.

    Shapes:
        x: (B, Lt, D); vision: (B, Lv, vision_dim); mask: (B, Lt); vision_mask: (B, Lv)
        -> out (B, Lt, D) (zeros at padded positions), weights (B, Lt, Lv).

    Note:
        The official code scores with the self-attention context (before its output projection
        and residual), and its vision-mask line is commented out; here the scores use the
        sublayer's input ``x`` and padded vision tokens are masked. Scores are unscaled, as in
        the code. A text token with no valid vision token gets a zero fused vector.
    """

    def __init__(
        self,
        dim: int,
        *,
        vision_dim: int | None = None,
        hidden_dim: int | None = None,
        dropout: float = 0.0,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        vision_dim = dim if vision_dim is None else vision_dim
        hidden_dim = 4 * dim if hidden_dim is None else hidden_dim
        self.vision_proj = nn.Linear(vision_dim, dim, bias=False) if vision_dim != dim else None
        self.inner = nn.Linear(dim, hidden_dim)
        self.fusion_inner = nn.Linear(dim, hidden_dim, bias=False)
        self.outer = nn.Linear(hidden_dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.act = activation_fn(activation)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        vision: Tensor,
        mask: Tensor | None = None,
        vision_mask: Tensor | None = None,
    ) -> FusionOutput:
        if self.vision_proj is not None:
            vision = self.vision_proj(vision)  # (B, Lv, D)
        scores = torch.matmul(x, vision.transpose(1, 2))  # (B, Lt, Lv)
        allowed = None
        if vision_mask is not None:
            allowed = vision_mask[:, None, :]  # (B, 1, Lv)
        if mask is not None:
            rows = mask[:, :, None]  # (B, Lt, 1)
            allowed = rows if allowed is None else allowed & rows
        weights = masked_softmax(scores, allowed, dim=-1)  # (B, Lt, Lv)
        fused = torch.matmul(weights, vision)  # (B, Lt, D)
        hidden = self.act(self.inner(x) + self.fusion_inner(fused))  # (B, Lt, hidden)
        out = self.norm(x + self.dropout(self.outer(hidden)))  # (B, Lt, D)
        if mask is not None:
            out = out * mask[..., None].to(out.dtype)
        return FusionOutput(out, weights)
