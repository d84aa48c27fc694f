"""Attentional GRU: attention scales the update gate, so unattended steps leave the state alone.

Shapes:
    B batch, L sequence length, D input dim, Dh hidden dim.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusionrec.nn.fusion.base import FusionOutput
from fusionrec.nn.fusion.functional import masked_softmax
from fusionrec.nn.fusion.layers import AdditiveScore
from fusionrec.registry import FUSIONS


def augru_step(input_gates: Tensor, hidden_gates: Tensor, hidden: Tensor, attention: Tensor) -> Tensor:
    """One AUGRU step from precomputed gate pre-activations.

    ``r = σ(x_r + h_r)``; ``u = σ(x_u + h_u)``; ``n = tanh(x_n + r ⊙ h_n)``; ``u' = a u``;
    ``h' = (1 - u') ⊙ h + u' ⊙ n``. With ``a = 0`` the state is returned unchanged.

    Shapes:
        input_gates, hidden_gates: (B, 3 Dh) ordered (reset, update, new); hidden: (B, Dh);
        attention: (B,) -> (B, Dh).
    """
    x_r, x_u, x_n = input_gates.chunk(3, dim=-1)  # (B, Dh) each
    h_r, h_u, h_n = hidden_gates.chunk(3, dim=-1)  # (B, Dh) each
    reset = torch.sigmoid(x_r + h_r)
    update = torch.sigmoid(x_u + h_u) * attention[:, None]  # (B, Dh)
    new = torch.tanh(x_n + reset * h_n)
    return (1.0 - update) * hidden + update * new


@FUSIONS.register(
    "attentional_gru",
    equation="a_t = softmax_t(score(x_t, q)); u'_t = a_t u_t; h_t = (1 - u'_t) h_{t-1} + u'_t n_t",
    used_by=("VLSNR",),
    family="recurrent",
    modality_fusor=False,
)
class AttentionalGRU(nn.Module):
    """GRU with an attentional update gate (AUGRU) over a click sequence.

    Paper: Han et al., "VLSNR: Vision-Linguistics Coordination Time Sequence-aware News
    Recommendation", arXiv 2210.02946, 2022 (an attentional GRU for the user's temporal interest);
    the cell is DIEN's AUGRU (Zhou et al., AAAI 2019): ``a_t = softmax_t(score(x_t, q))``,
    ``u'_t = a_t · u_t``, ``h_t = (1 - u'_t) ⊙ h_{t-1} + u'_t ⊙ h̃_t``.

    Args:
        dim: D of the inputs.
        hidden_dim: Dh of the state; default ``dim``.
        query_dim: dim of the query (e.g. the candidate news); default ``dim``.
        attention_dim: width of the additive attention; default ``dim``.

    Shapes:
        x: (B, L, D); query: (B, query_dim) or None (query-free scores); mask: (B, L);
        attention: (B, L) precomputed weights (replace the block's own); hidden: (B, Dh) initial
        state (default zeros) -> out h_L (B, Dh), weights (B, L).

    Note:
        VLSNR's exact cell is unverified (paper body not read; no code); AUGRU is the dossier's
        suggested form. The attention scores the inputs ``x_t`` (DIEN scores the states of a
        first GRU: run one and pass its states as ``x``, or pass ``attention``). Padded steps get
        zero attention and so leave the state unchanged; a fully padded row returns ``hidden``.
    """

    def __init__(
        self,
        dim: int,
        hidden_dim: int | None = None,
        *,
        query_dim: int | None = None,
        attention_dim: int | None = None,
    ) -> None:
        super().__init__()
        hidden_dim = dim if hidden_dim is None else hidden_dim
        query_dim = dim if query_dim is None else query_dim
        self.hidden_dim = hidden_dim
        self.input_gates = nn.Linear(dim, 3 * hidden_dim)
        self.hidden_gates = nn.Linear(hidden_dim, 3 * hidden_dim)
        self.scorer = AdditiveScore(dim, query_dim, attention_dim)

    def forward(
        self,
        x: Tensor,
        query: Tensor | None = None,
        mask: Tensor | None = None,
        *,
        attention: Tensor | None = None,
        hidden: Tensor | None = None,
    ) -> FusionOutput:
        if attention is None:
            attention = masked_softmax(self.scorer(x, query), mask, dim=1)  # (B, L)
        elif mask is not None:
            attention = attention * mask.to(attention.dtype)  # (B, L)
        if hidden is None:
            hidden = x.new_zeros(x.shape[0], self.hidden_dim)  # (B, Dh)
        input_gates = self.input_gates(x)  # (B, L, 3 Dh)
        for t in range(x.shape[1]):
            hidden = augru_step(input_gates[:, t], self.hidden_gates(hidden), hidden, attention[:, t])
        return FusionOutput(hidden, attention)
