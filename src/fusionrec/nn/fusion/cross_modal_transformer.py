"""Cross-modal transformer block, both directions (CMBF's cross-modal fusion layer).

Shapes:
    B batch, La / Lb token counts of the two modalities, D dim, H heads.
"""

from __future__ import annotations

from torch import Tensor, nn

from fusionrec.nn.fusion.base import PairFusionOutput
from fusionrec.nn.fusion.layers import FeedForward, MultiHeadAttention
from fusionrec.registry import FUSIONS


class CrossModalStream(nn.Module):
    """One direction of the block: the tokens of one modality attend to the other's.

    ``c = CrossAttn(x → y)``; ``h = LN(c + SelfAttn(c))``; ``out = LN(h + FFN(h))``.

    Shapes:
        x: (B, Lx, dim); y: (B, Ly, other_dim); x_mask: (B, Lx); y_mask: (B, Ly)
        -> out (B, Lx, dim) (zeros at padded positions), cross (B, H, Lx, Ly), self (B, H, Lx, Lx).
    """

    def __init__(
        self, dim: int, other_dim: int, num_heads: int, hidden_dim: int, dropout: float, residual: bool
    ) -> None:
        super().__init__()
        self.cross = MultiHeadAttention(dim, num_heads, kv_dim=other_dim, dropout=dropout, out_proj=False)
        self.self_attention = MultiHeadAttention(dim, num_heads, dropout=dropout, out_proj=False)
        self.norm_attention = nn.LayerNorm(dim)
        self.feed_forward = FeedForward(dim, hidden_dim, dropout, activation="relu")
        self.norm_out = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.residual = residual

    def forward(
        self, x: Tensor, y: Tensor, x_mask: Tensor | None, y_mask: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        crossed, cross_weights = self.cross(x, y, key_mask=y_mask, query_mask=x_mask)  # (B, Lx, D)
        if self.residual:
            crossed = crossed + x  # (B, Lx, D)
        attended, self_weights = self.self_attention(crossed, crossed, key_mask=x_mask, query_mask=x_mask)  # (B, Lx, D)
        h = self.norm_attention(crossed + self.dropout(attended))  # (B, Lx, D)
        out = self.norm_out(h + self.dropout(self.feed_forward(h)))  # (B, Lx, D)
        if x_mask is not None:
            out = out * x_mask[..., None].to(out.dtype)
        return out, cross_weights, self_weights


@FUSIONS.register(
    "cross_modal_transformer",
    equation="c = CrossAttn(a -> b); h = LN(c + SelfAttn(c)); a' = LN(h + FFN(h)); same for b",
    used_by=("CMBF",),
    family="cross-modal",
    modality_fusor=False,
)
class CrossModalTransformer(nn.Module):
    """Bidirectional cross-modal transformer layer: cross-attention, self-attention, FFN.

    Paper: Chen et al., "CMBF: Cross-Modal-Based Fusion Recommendation Algorithm", Sensors 21(16),
    2021; layer order as in the reference implementation (alibaba/EasyRec, ``cmbf.py``).

    For each stream in parallel, from the previous layer's outputs of both:
    ``c_a = MHA(Q = a, K = V = b)``; ``h_a = LN(c_a + MHA(c_a, c_a, c_a))``;
    ``a' = LN(h_a + W_2 ReLU(W_1 h_a))``, and symmetrically for ``b``. Stack several blocks for
    CMBF's ``cross_modal_layer_num`` (3 in its demo).

    Args:
        dim: D_a, the dim of stream a (e.g. image tokens); divisible by ``num_heads``.
        dim_b: D_b, the dim of stream b (e.g. text tokens); default ``dim``.
        num_heads: H. Default 2 (CMBF's ``multi_head_num``).
        hidden_dim: feed-forward width of both streams; default 4 x each stream's dim (CMBF).
        dropout: dropout on attention weights and sublayer outputs. Default 0.
        residual: also add the stream's input to its cross-attention output. Default False (CMBF).

    Shapes:
        a: (B, La, D_a); b: (B, Lb, D_b); mask_a: (B, La); mask_b: (B, Lb)
        -> out a' (B, La, D_a), out_b b' (B, Lb, D_b), weights {"a_cross": (B, H, La, Lb),
        "a_self": (B, H, La, La), "b_cross": (B, H, Lb, La), "b_self": (B, H, Lb, Lb)}.

    Note:
        As in the reference code, the attentions have no output projection and the first residual
        joins the self-attention to the cross-attention output, not to the block's input (set
        ``residual=True`` to add the input as well). The reference code builds stream a's
        self-attention mask from an unset variable, so it never masks padded image tokens; here
        both streams mask their padding everywhere. Padded positions output zeros.
    """

    def __init__(
        self,
        dim: int,
        *,
        dim_b: int | None = None,
        num_heads: int = 2,
        hidden_dim: int | None = None,
        dropout: float = 0.0,
        residual: bool = False,
    ) -> None:
        super().__init__()
        dim_b = dim if dim_b is None else dim_b
        hidden_a = 4 * dim if hidden_dim is None else hidden_dim
        hidden_b = 4 * dim_b if hidden_dim is None else hidden_dim
        self.stream_a = CrossModalStream(dim, dim_b, num_heads, hidden_a, dropout, residual)
        self.stream_b = CrossModalStream(dim_b, dim, num_heads, hidden_b, dropout, residual)

    def forward(
        self, a: Tensor, b: Tensor, mask_a: Tensor | None = None, mask_b: Tensor | None = None
    ) -> PairFusionOutput:
        out_a, a_cross, a_self = self.stream_a(a, b, mask_a, mask_b)  # (B, La, D_a)
        out_b, b_cross, b_self = self.stream_b(b, a, mask_b, mask_a)  # (B, Lb, D_b)
        weights = {"a_cross": a_cross, "a_self": a_self, "b_cross": b_cross, "b_self": b_self}
        return PairFusionOutput(out_a, weights, out_b)
