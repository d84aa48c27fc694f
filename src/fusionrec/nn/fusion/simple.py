"""Simple modality fusors: concat + linear, sum, mean, gated sum, element-wise product.

The baselines every attention fusion must beat, and NOVA's three side-information fusors
(``F_add``, ``F_concat``, ``F_gating``). All follow the modality fusor contract of
:mod:`fusionrec.nn.fusion.base`: ``cls(dim, num_modalities, **opts)`` and
``forward(xs, mask=None, query=None) -> FusionOutput(out (B, D), weights)``; they ignore ``query``.

Shapes:
    B batch, M modalities, D dim.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from fusionrec.nn.fusion.base import FusionOutput
from fusionrec.nn.fusion.functional import masked_mean, stack_modalities
from fusionrec.registry import FUSIONS


def _present(x: Tensor, mask: Tensor | None) -> Tensor:
    """Zero the missing modalities. x: (B, M, D); mask: (B, M) -> (B, M, D)."""
    return x if mask is None else x * mask[..., None].to(x.dtype)


def _zero_empty_rows(out: Tensor, mask: Tensor | None) -> Tensor:
    """Zero the rows whose modalities are all missing. out: (B, D); mask: (B, M)."""
    return out if mask is None else out * mask.any(dim=1, keepdim=True).to(out.dtype)


@FUSIONS.register(
    "concat",
    equation="out = W [x_1; ...; x_M] + b",
    used_by=("NOVA", "CMBF"),
    family="simple",
    modality_fusor=True,
)
class ConcatFusion(nn.Module):
    """Concatenation followed by a linear layer (NOVA's ``F_concat = FC([f_1; ...; f_M])``).

    Paper: Liu et al., "Non-invasive Self-attention for Side Information Fusion in Sequential
    Recommendation", AAAI 2021. ``out = W [x_1; ...; x_M] + b``.

    Args:
        dim: D, the dim of each modality and of the output.
        num_modalities: M.
        bias: learn ``b``. Default True.

    Shapes:
        xs: (B, M, D) or {name: (B, D)}; mask: (B, M) -> out (B, D), weights None.

    Note:
        A missing modality is zero-filled before the concatenation (the papers assume every
        modality present), and a row with every modality missing outputs zeros instead of ``b``.
        CMBF concatenates its pooled towers and feeds a DNN; this block is the first layer of that.
    """

    def __init__(self, dim: int, num_modalities: int, *, bias: bool = True) -> None:
        super().__init__()
        self.dim = dim
        self.num_modalities = num_modalities
        self.proj = nn.Linear(num_modalities * dim, dim, bias=bias)

    def forward(
        self, xs: Mapping[str, Tensor] | Tensor, mask: Tensor | None = None, query: Tensor | None = None
    ) -> FusionOutput:
        x, mask = stack_modalities(xs, mask, self.num_modalities, "concat")  # (B, M, D)
        out = self.proj(_present(x, mask).flatten(1))  # (B, D)
        return FusionOutput(_zero_empty_rows(out, mask), None)


@FUSIONS.register(
    "sum",
    equation="out = sum_m x_m",
    used_by=("NOVA",),
    family="simple",
    modality_fusor=True,
)
class SumFusion(nn.Module):
    """Sum of the present modalities (NOVA's ``F_add = Σ f_i``).

    Paper: Liu et al., "Non-invasive Self-attention for Side Information Fusion in Sequential
    Recommendation", AAAI 2021. ``out = Σ_m x_m``.

    Args:
        dim: D.
        num_modalities: M.

    Shapes:
        xs: (B, M, D) or {name: (B, D)}; mask: (B, M) -> out (B, D), weights None.
    """

    def __init__(self, dim: int, num_modalities: int) -> None:
        super().__init__()
        self.dim = dim
        self.num_modalities = num_modalities

    def forward(
        self, xs: Mapping[str, Tensor] | Tensor, mask: Tensor | None = None, query: Tensor | None = None
    ) -> FusionOutput:
        x, mask = stack_modalities(xs, mask, self.num_modalities, "sum")  # (B, M, D)
        return FusionOutput(_present(x, mask).sum(dim=1), None)  # (B, D)


@FUSIONS.register(
    "mean",
    equation="out = (1/P) sum_{m present} x_m, P = number present",
    used_by=("MGAT", "MML"),
    family="simple",
    modality_fusor=True,
)
class MeanFusion(nn.Module):
    """Average of the present modalities (MGAT's cross-modal fusion; MML averages its modalities).

    Paper: Tao et al., "MGAT: Multimodal Graph Attention Network for Recommendation", IP&M 2020.
    ``out = (1 / |P|) Σ_{m ∈ P} x_m`` with P the present modalities.

    Args:
        dim: D.
        num_modalities: M.

    Shapes:
        xs: (B, M, D) or {name: (B, D)}; mask: (B, M) -> out (B, D), weights (B, M).

    Note:
        The averaging weights (uniform over present modalities) are returned so that ``mean`` can
        stand in for an attention fusor in explanations and ablations.
    """

    def __init__(self, dim: int, num_modalities: int) -> None:
        super().__init__()
        self.dim = dim
        self.num_modalities = num_modalities

    def forward(
        self, xs: Mapping[str, Tensor] | Tensor, mask: Tensor | None = None, query: Tensor | None = None
    ) -> FusionOutput:
        x, mask = stack_modalities(xs, mask, self.num_modalities, "mean")  # (B, M, D)
        out, weights = masked_mean(x, mask)  # (B, D), (B, M)
        return FusionOutput(out, weights)


@FUSIONS.register(
    "gated",
    equation="out = sum_m sigmoid(w^T x_m) x_m",
    used_by=("NOVA",),
    family="simple",
    modality_fusor=True,
)
class GatedFusion(nn.Module):
    """Gated sum with one sigmoid gate per modality (NOVA's ``F_gating``).

    Paper: Liu et al., "Non-invasive Self-attention for Side Information Fusion in Sequential
    Recommendation", AAAI 2021. ``G = σ(F W^F)`` with ``F ∈ R^{M×D}``, ``W^F ∈ R^{D×1}``;
    ``out = Σ_m G_m x_m``.

    Args:
        dim: D.
        num_modalities: M.
        bias: add a bias inside the sigmoid. Default False (the paper has none).

    Shapes:
        xs: (B, M, D) or {name: (B, D)}; mask: (B, M) -> out (B, D), weights (B, M) (the gates, each in
        (0, 1), not normalised; 0 for missing modalities).
    """

    def __init__(self, dim: int, num_modalities: int, *, bias: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.num_modalities = num_modalities
        self.gate = nn.Linear(dim, 1, bias=bias)

    def forward(
        self, xs: Mapping[str, Tensor] | Tensor, mask: Tensor | None = None, query: Tensor | None = None
    ) -> FusionOutput:
        x, mask = stack_modalities(xs, mask, self.num_modalities, "gated")  # (B, M, D)
        gates = torch.sigmoid(self.gate(x).squeeze(-1))  # (B, M)
        if mask is not None:
            gates = gates * mask.to(gates.dtype)
        out = torch.einsum("bm,bmd->bd", gates, x)  # (B, D)
        return FusionOutput(out, gates)


@FUSIONS.register(
    "product",
    equation="out = prod_m x_m (element-wise)",
    used_by=("MARIO",),
    family="simple",
    modality_fusor=True,
)
class ProductFusion(nn.Module):
    """Element-wise product of the present modalities.

    Paper: Kim et al., "MARIO: Modality-Aware Attention and Modality-Preserving Decoders for
    Multimedia Recommendation", CIKM 2022 (the survey notes describe its modality interaction as an
    element-wise product). ``out = x_1 ⊙ x_2 ⊙ ... ⊙ x_M``.

    Args:
        dim: D.
        num_modalities: M.

    Shapes:
        xs: (B, M, D) or {name: (B, D)}; mask: (B, M) -> out (B, D), weights None.

    Note:
        A missing modality counts as the multiplicative identity (ones); a row with every modality
        missing outputs zeros. MARIO multiplies the user with each modality (``u ⊙ v^m``) inside
        its attention (see ``modality_attention`` with ``interaction="product"``); this block is the
        plain product ablation, whose exact role in MARIO is unverified.
    """

    def __init__(self, dim: int, num_modalities: int) -> None:
        super().__init__()
        self.dim = dim
        self.num_modalities = num_modalities

    def forward(
        self, xs: Mapping[str, Tensor] | Tensor, mask: Tensor | None = None, query: Tensor | None = None
    ) -> FusionOutput:
        x, mask = stack_modalities(xs, mask, self.num_modalities, "product")  # (B, M, D)
        if mask is not None:
            x = torch.where(mask[..., None], x, torch.ones_like(x))  # (B, M, D)
        return FusionOutput(_zero_empty_rows(x.prod(dim=1), mask), None)  # (B, D)
