"""The fusion contract shared by every attention fusion block."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from torch import Tensor


@dataclass
class FusionOutput:
    """What a fusion block returns.

    Attributes:
        out: the fused representation.
        weights: the attention weights that produced it (a tensor, or a dict of named tensors for
            blocks with several attention maps), so that models can explain themselves. ``None`` only
            for parameter-free fusors with no attention (sum, mean, ...).
    """

    out: Tensor
    weights: Tensor | dict[str, Tensor] | None = None


@dataclass
class PairFusionOutput(FusionOutput):
    """What a two-stream block returns (co-attention, cross-modal transformer, ...).

    Attributes:
        out: stream a's fused representation (the first input of ``forward``).
        weights: the attention maps of both streams, as a dict of named tensors.
        out_b: stream b's fused representation (the second input of ``forward``).
    """

    out_b: Tensor | None = None


# --------------------------------------------------------------------------------------------------
# The "modality fusor" contract
# --------------------------------------------------------------------------------------------------
#
# Models choose how to fuse their M modality vectors by name (``model.fusion=gated``), so every
# fusion registered with ``modality_fusor=True`` is interchangeable:
#
#   construct:  cls(dim: int, num_modalities: int, **opts)      # opts: keyword-only, block-specific
#   call:       fusion(xs, mask=None, query=None) -> FusionOutput
#       xs:     Mapping[str, Tensor (B, D)] (stacked in iteration order) or Tensor (B, M, D)
#       mask:   BoolTensor (B, M), True = modality present; None = all present
#       query:  Tensor (B, D) or None, e.g. the user (or user ⊙ item) embedding; fusors that have no
#               use for a query ignore it, so a model can always pass it
#       out:    Tensor (B, D); all zeros for a row whose modalities are all missing
#       weights: Tensor (B, M) (or a dict holding a "pool" entry (B, M)) with zeros on missing
#               modalities, or None for fusors without attention (sum, product, concat)
#
# ``build_modality_fusion(name, dim, num_modalities, **opts)`` builds one by name and fails with the
# valid names (or the valid options) as a ``ConfigError``.


class ModalityFusion(Protocol):
    """Structural type of an interchangeable modality fusor (see the contract above)."""

    dim: int
    num_modalities: int

    def __call__(
        self,
        xs: Mapping[str, Tensor] | Tensor,
        mask: Tensor | None = None,
        query: Tensor | None = None,
    ) -> FusionOutput: ...
