"""Multi-order residual attention (MARank): attend at every order of a residual stack, then
attend over the orders.

Shapes:
    B batch, L sequence length, D dim, K orders (K + 1 outputs with the individual level 0).
"""

from __future__ import annotations

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
        -> out z (B, D), weights {"items": (B, K + 1, L), "orders": (B, K + 1)}.

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

    def residual_states(self, x: Tensor, query: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Item and user states of every order, order 0 being the inputs.

        Shapes:
            x: (B, L, D); query: (B, D) -> K + 1 tensors (B, L, D), K + 1 tensors (B, D).
        """
        items, users = [x], [query]
        for item_layer, user_layer in zip(self.item_layers, self.user_layers):
            items.append(residual_step(item_layer, self.dropout(items[-1])))  # (B, L, D)
            users.append(residual_step(user_layer, self.dropout(users[-1])))  # (B, D)
        return items, users

    def order_outputs(self, x: Tensor, query: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The per-order outputs ``o_0..o_K`` and their item attention.

        Shapes:
            x: (B, L, D); query: (B, D); mask: (B, L) -> orders (B, K + 1, D), weights (B, K + 1, L).
        """
        items, users = self.residual_states(x, query)
        outputs, weights = [], []
        for order, (e, u, attention) in enumerate(zip(items, users, self.item_attention)):
            alpha = masked_softmax(attention(self.dropout(e), self.dropout(u)), mask, dim=1)  # (B, L)
            o = torch.einsum("bl,bld->bd", alpha, e)  # (B, D)
            if order == 0 and self.add_last:
                o = o + last_valid(x, mask)  # (B, D)
            outputs.append(o)
            weights.append(alpha)
        return torch.stack(outputs, dim=1), torch.stack(weights, dim=1)

    def forward(self, x: Tensor, query: Tensor, mask: Tensor | None = None) -> FusionOutput:
        orders, item_weights = self.order_outputs(x, query, mask)  # (B, K+1, D), (B, K+1, L)
        order_mask = None
        if mask is not None:
            order_mask = mask.any(dim=1, keepdim=True).expand(-1, orders.shape[1])  # (B, K+1)
        beta = masked_softmax(self.order_attention(self.dropout(orders)), order_mask, dim=1)  # (B, K+1)
        out = torch.einsum("bk,bkd->bd", beta, orders)  # (B, D)
        return FusionOutput(out, {"items": item_weights, "orders": beta})
