"""Multi-order residual attention (MARank): attend at every order of a residual stack, then
attend over the orders.

Shapes:
    B batch, L sequence length, D dim, K orders (K + 1 outputs with the individual level 0).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from fusionrec.nn.fusion.base import FusionOutput
from fusionrec.nn.fusion.functional import last_valid, masked_softmax
from fusionrec.nn.fusion.layers import Activation, AdditiveScore
from fusionrec.registry import FUSIONS


def residual_step(layer: nn.Linear, x: Tensor) -> Tensor:
    """One residual order ``ReLU(W x + b + x)``. x: (..., D) -> (..., D)."""
    return torch.relu(layer(x) + x)


@FUSIONS.register(
    "multi_order_attention",
    equation="e^k = ReLU(W_k e^{k-1} + b_k + e^{k-1}), u^k alike; o_k = Att_k(e^k; u^k); "
    "z = sum_k softmax_k(Att(o_k)) o_k",
    used_by=("MARank",),
    family="multi-order",
    modality_fusor=False,
)
class MultiOrderAttention(nn.Module):
    """Individual-level attention plus attention over the orders of residual item/user stacks.

    Paper: Yu et al., "Multi-Order Attentive Ranking Model for Sequential Recommendation"
    (MARank), AAAI 2019; as in the official code (voladorlu/MARank, ``itemContAtt``,
    ``ures_nn`` / ``ires_nn``, ``multRelAtt``, ``hidAtt``):

    * order 0 (individual level): ``α = softmax_l(σ(hᵀ tanh(W_i e_l + W_u u + b)))``,
      ``o_0 = Σ_l α_l e_l + e_last``;
    * order k = 1..K: ``e^k = ReLU(W_k e^{k-1} + b_k + e^{k-1})`` (shared over positions),
      ``u^k = ReLU(V_k u^{k-1} + c_k + u^{k-1})``, and ``o_k`` attends over ``e^k`` with ``u^k``
      (own attention parameters per order);
    * hidden (order) level: ``β = softmax_k(σ(gᵀ tanh(W o_k + b)))``, ``z = Σ_k β_k o_k``.

    Args:
        dim: D of items and user.
        num_orders: K, residual orders. Default 2 (the code's ``att_layers``).
        hidden_dim: attention width; default ``dim``.
        activation: attention activation, ``"tanh"`` (default, ``att_act``) or ``"relu"``.
        add_last: add the last valid item to ``o_0`` (MARank). Default True.
        dropout: dropout on the inputs of every linear layer (MARank: 0.5). Default 0.

    Shapes:
        x: (B, L, D) (item embeddings, oldest first); query: (B, D) (user); mask: (B, L)
        -> out z (B, D), weights {"items": (B, K + 1, L), "orders": (B, K + 1)}; with ``window``
        and ``ends``, one output row per window instead (:meth:`order_outputs`).

    Note:
        MARank pads short sequences by repeating the last item; here padding is masked and
        ``e_last`` is the last valid item. The union-level residual MLP that follows ``z`` in
        MARank belongs to the model. The code lists ``o_0`` last among the orders; the order
        attention is permutation invariant, so listing it first changes nothing.
    """

    def __init__(
        self,
        dim: int,
        *,
        num_orders: int = 2,
        hidden_dim: int | None = None,
        activation: Activation = "tanh",
        add_last: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_orders = num_orders
        self.add_last = add_last
        self.item_layers = nn.ModuleList(nn.Linear(dim, dim) for _ in range(num_orders))
        self.user_layers = nn.ModuleList(nn.Linear(dim, dim) for _ in range(num_orders))
        self.item_attention = nn.ModuleList(
            AdditiveScore(dim, dim, hidden_dim, activation, squash=True) for _ in range(num_orders + 1)
        )
        self.order_attention = AdditiveScore(dim, None, hidden_dim, activation, squash=True)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        query: Tensor,
        mask: Tensor | None = None,
        window: int | None = None,
        ends: Tensor | None = None,
    ) -> FusionOutput:
        """Pool the orders of each window (see :meth:`order_outputs` for ``window`` and ``ends``).

        Shapes: -> out z (T, D), weights {"items": (T, K + 1, window), "orders": (T, K + 1)};
        T = B with the default ``ends``.
        """
        orders, item_weights, window_mask = self.order_outputs(x, query, mask, window, ends)
        order_mask = window_mask.any(dim=1, keepdim=True).expand(-1, orders.shape[1])  # (T, K+1)
        beta = masked_softmax(self.order_attention(self.dropout(orders)), order_mask, dim=1)  # (T, K+1)
        out = torch.einsum("tk,tkd->td", beta, orders)  # (T, D)
        return FusionOutput(out, {"items": item_weights, "orders": beta})

    def order_outputs(
        self,
        x: Tensor,
        query: Tensor,
        mask: Tensor | None = None,
        window: int | None = None,
        ends: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The per-order outputs ``o_0..o_K`` of the ``window`` slots up to and including every
        slot where ``ends`` is set (default: one window, the whole sequence).

        The item stack and the items' attention projections are computed once per valid slot and
        shared by the (up to ``window``) windows that contain it, not once per window, so training
        on every transition of a sequence costs one item pass instead of ``window``. In training
        that means one dropout mask per slot, shared by its windows; the user stack runs once per
        window, with its own dropout. Windows that reach before the sequence are padded and the
        padding masked.

        Shapes:
            x: (B, L, D) oldest first; query: (B, D); mask: (B, L) or None; ends: (B, L) bool with
            T set (default: the last slot of every row) -> orders (T, K + 1, D) in row-major order
            of ``ends``, item weights (T, K + 1, W), window mask (T, W).
        """
        valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None else mask
        if ends is None:
            ends = torch.zeros_like(valid)
            ends[:, -1] = True
        rows, index, window_mask = _window_index(valid, ends, x.shape[1] if window is None else window)

        def windows_of(states: Tensor) -> Tensor:  # (N, F) per valid slot -> (T, W, F), zeros on padding
            return torch.cat([states, states.new_zeros(1, states.shape[1])])[index]

        e, u = x[valid], query[rows]  # (N, D), (T, D)
        outputs, weights = [], []
        for order, module in enumerate(self.item_attention):
            attention = cast(AdditiveScore, module)  # nn.ModuleList items are typed as nn.Module
            assert attention.query is not None  # item attentions are built with query_dim=dim
            if order:
                e = residual_step(cast(nn.Linear, self.item_layers[order - 1]), self.dropout(e))  # (N, D)
                u = residual_step(cast(nn.Linear, self.user_layers[order - 1]), self.dropout(u))  # (T, D)
            hidden = windows_of(attention.item(self.dropout(e))) + attention.query(self.dropout(u))[:, None]
            alpha = masked_softmax(attention.scores(hidden), window_mask, dim=1)  # (T, W)
            items = windows_of(e)  # (T, W, D)
            o = torch.einsum("tw,twd->td", alpha, items)  # (T, D)
            if order == 0 and self.add_last:
                o = o + last_valid(items, window_mask)  # (T, D)
            outputs.append(o)
            weights.append(alpha)
        return torch.stack(outputs, dim=1), torch.stack(weights, dim=1), window_mask


def _window_index(valid: Tensor, ends: Tensor, window: int) -> tuple[Tensor, Tensor, Tensor]:
    """The sequence of each window, where its slots sit among the valid slots (row-major), and
    which are real.

    Shapes: valid, ends (B, L) bool -> rows (T,), index (T, window) into the N valid slots
    (N = padding), mask (T, window); the slots of a window run oldest first and end at its ``ends`` slot.
    """
    rank = valid.flatten().cumsum(0).view(valid.shape) - 1  # (B, L) row of each valid slot
    rows, last = ends.nonzero(as_tuple=True)  # (T,)
    slots = last[:, None] - torch.arange(window - 1, -1, -1, device=valid.device)  # (T, W)
    inside = slots >= 0
    slots = slots.clamp(min=0)
    mask = inside & valid[rows[:, None], slots]
    index = torch.where(mask, rank[rows[:, None], slots], int(valid.sum()))
    return rows, index, mask
