"""Explanation accuracy against a ground-truth region: attention mass and the pointing game, with the
baselines an explanation must beat (uniform attention, image-gradient saliency).

For each explained (user, item) pair, ``weights`` is a distribution over the item's R regions and
``target`` the index of the region that truly drives the user's interest (planted-fashion's
``gt_region``):

- **attention mass** = ``weights[target]`` (weights renormalised to sum to 1): 1 / R for uniform
  attention over R regions, 1 for a perfect one.
- **pointing game** (Zhang et al., ECCV 2016, for saliency maps): a hit when the most-weighted region is
  the target. Ties are scored by their expectation under a random pick among the tied maxima
  (``1 / number tied`` when the target is one of them), so a flat map scores 1 / R, never 1.

Saliency (Simonyan et al., ICLR 2014 workshop): the gradient of the model's score with respect to the
region features, reduced per region to its L2 norm (``grad``) or to ``|Σ_f g_f x_f|`` (``grad_x_input``),
then normalised to sum to 1. Where region features are a linear function of the pixels (planted-fashion's
pooled pixels) this is an image gradient; for CNN grids (posters) it is a gradient on the feature map.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch import Tensor


def _normalised(weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"weights must be (N, R), got shape {w.shape}")
    if (w < 0).any():
        raise ValueError("weights must be non-negative")
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.full_like(w, 1.0 / max(w.shape[1], 1)), where=total > 0)


def _targets(target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    t = np.asarray(target, dtype=np.int64)
    if t.shape != (weights.shape[0],) or (t < 0).any() or (t >= weights.shape[1]).any():
        raise ValueError(f"target must hold one region index in [0, {weights.shape[1]}) per row")
    return t


def attention_mass(weights: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per pair, the share of the (renormalised) weight on the target region. Shapes: (N, R), (N,) -> (N,)."""
    w = _normalised(weights)
    t = _targets(target, w)
    return w[np.arange(len(t)), t]


def pointing_game(weights: np.ndarray, target: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """Per pair, 1 when the target is the most-weighted region, ``1 / k`` when it is one of ``k`` tied
    maxima, else 0 (expected hit under a random pick among ties). Shapes: (N, R), (N,) -> (N,)."""
    w = _normalised(weights)
    t = _targets(target, w)
    top = w.max(axis=1, keepdims=True)
    tied = np.isclose(w, top, rtol=rtol, atol=1e-12)  # (N, R)
    return tied[np.arange(len(t)), t] / tied.sum(axis=1)


def uniform_weights(mask: np.ndarray) -> np.ndarray:
    """Uniform attention over each row's valid regions. Shapes: mask (N, R) bool -> (N, R)."""
    m = np.asarray(mask, dtype=np.float64)
    return m / np.maximum(m.sum(axis=1, keepdims=True), 1.0)


def gradient_saliency(
    score: Callable[[Tensor], Tensor],
    regions: Tensor,
    mask: Tensor | None = None,
    mode: Literal["grad", "grad_x_input"] = "grad",
) -> np.ndarray:
    """Region saliency of ``score`` (a function of the pairs' region features (N, R, F) giving (N,)
    scores, each depending on its own row only), normalised per row; masked regions get zero.

    Shapes: regions (N, R, F), mask (N, R) bool -> (N, R)."""
    x = regions.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(score(x).sum(), x)
    per_region = grad.norm(dim=-1) if mode == "grad" else (grad * x.detach()).sum(-1).abs()  # (N, R)
    if mask is not None:
        per_region = per_region * mask.to(per_region.dtype)
    return _normalised(per_region.detach().cpu().numpy())


def summarise(values: dict[str, np.ndarray]) -> dict[str, float]:
    """Means of per-pair arrays (``{"mass": ..., "pointing": ...}``)."""
    return {name: float(np.mean(v)) if len(v) else float("nan") for name, v in values.items()}
