"""Feature-interaction leaves of the CTR models (FM, DeepFM, DCN-v2).

Shapes:
    B batch, F fields, D dim (of an embedding, or of DCN's flattened input).
"""

from __future__ import annotations

from torch import Tensor, nn


def fm_second_order(fields: Tensor) -> Tensor:
    """Factorization-machine pairwise term ``sum_{i<j} <v_i, v_j>`` in O(F D):
    ``0.5 * sum_d ((sum_i v_id)^2 - sum_i v_id^2)`` (Rendle, ICDM 2010, Lemma 3.1).

    Shapes: fields (B, F, D) -> (B,)."""
    square_of_sum = fields.sum(1).pow(2)  # (B, D)
    sum_of_squares = fields.pow(2).sum(1)  # (B, D)
    return 0.5 * (square_of_sum - sum_of_squares).sum(-1)


class CrossLayerV2(nn.Module):
    """DCN-v2's cross layer (Wang et al., WWW 2021, Eq. 1): ``x_{l+1} = x_0 * (W x_l + b) + x_l``,
    ``*`` elementwise, W a full (D, D) matrix (``rank`` set: the low-rank ``U (V^T x_l)`` of Sec. 5).

    Shapes: x0, x (B, D) -> (B, D)."""

    def __init__(self, dim: int, rank: int | None = None) -> None:
        super().__init__()
        if rank is None:
            self.project: nn.Module = nn.Linear(dim, dim)
        else:
            self.project = nn.Sequential(nn.Linear(dim, rank, bias=False), nn.Linear(rank, dim))

    def forward(self, x0: Tensor, x: Tensor) -> Tensor:
        return x0 * self.project(x) + x
