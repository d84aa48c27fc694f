"""Pure tensor functions shared by the fusion blocks (no parameters, no state).

Mask convention everywhere: a boolean tensor, ``True`` = present / valid. A row whose entries are all
masked gets all-zero weights (never NaN).

Shapes:
    B batch, L sequence length, D dim, H heads, M modalities.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor


def masked_softmax(scores: Tensor, mask: Tensor | None = None, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` that gives masked entries exactly zero weight.

    A slice of ``scores`` along ``dim`` whose entries are all masked returns all zeros instead of NaN
    (the usual ``-inf`` fill gives ``0/0``).

    Args:
        scores: real-valued scores.
        mask: boolean, ``True`` = may be attended; broadcastable to ``scores``. ``None``: plain softmax.
        dim: the attended axis.

    Returns:
        weights of the shape of ``scores``, summing to 1 along ``dim`` where any entry is valid, else 0.
    """
    if mask is None:
        return torch.softmax(scores, dim=dim)
    mask = torch.broadcast_to(mask, scores.shape)
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=dim) * mask.to(scores.dtype)


def masked_mean(x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Average over the second-to-last axis, ignoring masked entries.

    Shapes:
        x: (..., L, D); mask: (..., L) -> mean (..., D), weights (..., L) (uniform over valid entries;
        all zeros for a fully masked row, whose mean is then zero).
    """
    if mask is None:
        mask = torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)
    valid = mask.to(x.dtype)  # (..., L)
    weights = valid / valid.sum(-1, keepdim=True).clamp_min(1.0)  # (..., L)
    # a broadcast multiply-sum, not einsum: einsum becomes a bmm of tiny (1, L) x (L, D) blocks,
    # about 5x slower on CPU for the few-modality, many-row inputs that graph models pass
    return (weights.unsqueeze(-1) * x).sum(-2), weights


def last_valid(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """The last valid element of each sequence (zeros for a fully masked row).

    Shapes:
        x: (B, L, D); mask: (B, L) -> (B, D).
    """
    if mask is None:
        return x[:, -1]
    positions = torch.arange(1, x.shape[1] + 1, device=x.device)  # (L,)
    index = (positions * mask).argmax(dim=1)  # (B,)
    picked = x[torch.arange(x.shape[0], device=x.device), index]  # (B, D)
    return picked * mask.any(dim=1, keepdim=True).to(x.dtype)


def stack_modalities(
    xs: Mapping[str, Tensor] | Tensor,
    mask: Tensor | None,
    num_modalities: int,
    owner: str = "fusion",
) -> tuple[Tensor, Tensor | None]:
    """Turn the modality-fusor input into a ``(B, M, D)`` tensor and check the mask.

    Args:
        xs: a mapping ``name -> (B, D)`` (stacked in its iteration order) or a ``(B, M, D)`` tensor.
        mask: ``(B, M)`` boolean, ``True`` = modality present, or ``None`` (all present).
        num_modalities: the M the block was built for.
        owner: the block's name, for error messages.

    Raises:
        ValueError: wrong number of modalities, mismatched shapes, or a non-boolean mask.
    """
    if isinstance(xs, Mapping):
        if len(xs) != num_modalities:
            raise ValueError(f"{owner} was built for {num_modalities} modalities, got {len(xs)}: {', '.join(xs)}")
        shapes = {name: tuple(t.shape) for name, t in xs.items()}
        if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 2:
            raise ValueError(f"{owner} needs every modality as a (B, D) tensor of one shape, got {shapes}")
        x = torch.stack(list(xs.values()), dim=1)  # (B, M, D)
    else:
        x = xs
        if x.dim() != 3 or x.shape[1] != num_modalities:
            raise ValueError(f"{owner} needs a (B, M={num_modalities}, D) tensor, got shape {tuple(x.shape)}")
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError(f"{owner} needs a boolean mask (True = present), got {mask.dtype}")
        if tuple(mask.shape) != tuple(x.shape[:2]):
            raise ValueError(f"{owner} needs a (B, M) mask of shape {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
    return x, mask


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, L, D) -> (B, H, L, D / H)."""
    batch, length, dim = x.shape
    return x.view(batch, length, num_heads, dim // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, L, D / H) -> (B, L, D)."""
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


def attention_mask(
    key_mask: Tensor | None = None,
    query_mask: Tensor | None = None,
    causal: bool = False,
    num_queries: int | None = None,
    device: torch.device | None = None,
) -> Tensor | None:
    """Combine padding and causal masks into one ``(B or 1, 1, Lq, Lk)`` boolean mask (or ``None``).

    A padded query row is fully masked, so its attention weights are all zero.

    Shapes:
        key_mask: (B, Lk); query_mask: (B, Lq); causal needs Lq == Lk (taken from the masks or
        ``num_queries``).
    """
    mask: Tensor | None = None
    if key_mask is not None:
        mask = key_mask[:, None, None, :]  # (B, 1, 1, Lk)
    if query_mask is not None:
        rows = query_mask[:, None, :, None]  # (B, 1, Lq, 1)
        mask = rows if mask is None else mask & rows
    if causal:
        length = num_queries
        if length is None:
            source = key_mask if key_mask is not None else query_mask
            if source is None:
                raise ValueError("a causal mask needs num_queries when no padding mask is given")
            length = source.shape[1]
        device = device if mask is None else mask.device
        lower = torch.ones(length, length, dtype=torch.bool, device=device).tril()  # (L, L)
        mask = lower[None, None] if mask is None else mask & lower
    return mask


def dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    mask: Tensor | None = None,
    dropout: float = 0.0,
    training: bool = False,
    scale: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention that returns its weights and tolerates fully masked rows.

    ``softmax(q kᵀ / sqrt(d)) v``; dropout (training only) acts on the weights used for the values,
    the returned weights are the pre-dropout ones, so they sum to 1.

    Shapes:
        query: (B, H, Lq, d); key, value: (B, H, Lk, d); mask: broadcastable to (B, H, Lq, Lk)
        -> context (B, H, Lq, d), weights (B, H, Lq, Lk).
    """
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale  # (B, H, Lq, Lk)
    weights = masked_softmax(scores, mask, dim=-1)  # (B, H, Lq, Lk)
    used = torch.nn.functional.dropout(weights, dropout, training) if dropout > 0 else weights
    return torch.matmul(used, value), weights  # (B, H, Lq, d), (B, H, Lq, Lk)


def expand_query(query: Tensor, ndim: int) -> Tensor:
    """Insert singleton axes after the batch axis so a ``(B, F)`` query broadcasts over ``ndim``-d items.

    ``(B, F)`` with ``ndim=4`` (items ``(B, R, L, D)``) -> ``(B, 1, 1, F)``.
    """
    return query.reshape(query.shape[0], *([1] * (ndim - 2)), query.shape[-1])
