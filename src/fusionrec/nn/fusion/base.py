"""The fusion contract shared by every attention fusion block."""

from __future__ import annotations

from dataclasses import dataclass

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
