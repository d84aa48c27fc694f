"""Losses shared by models, as pure functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor


def bpr_loss(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """Bayesian personalised ranking: ``-mean log sigmoid(s_pos - s_neg)``.

    Shapes: pos_scores (B,), neg_scores (B, N) or (B,); every negative is paired with its row's positive.
    """
    if neg_scores.dim() == 2:
        pos_scores = pos_scores.unsqueeze(1)  # (B, 1)
    return -F.logsigmoid(pos_scores - neg_scores).mean()


def l2_penalty(*tensors: Tensor, batch_size: int) -> Tensor:
    """Half the squared L2 norm of the embeddings used in a batch, averaged over the batch."""
    return sum(t.pow(2).sum() for t in tensors) / (2 * batch_size)  # type: ignore[return-value]


def info_nce(a: Tensor, b: Tensor, temperature: float = 0.1, max_rows: int | None = None) -> Tensor:
    """Symmetric InfoNCE (CLIP-style): row ``i`` of ``a`` should match row ``i`` of ``b``. Shapes: (B, D).

    With ``max_rows``, a batch of more rows is replaced by a random subset of that many row pairs (drawn
    from the global torch RNG): the (B, B) logits grow quadratically, and at 20,000 rows one step costs
    seconds and gigabytes.
    """
    if max_rows is not None and len(a) > max_rows:
        keep = torch.randperm(len(a), device=a.device)[:max_rows]
        a, b = a[keep], b[keep]
    a = F.normalize(a, dim=-1)
    b = F.normalize(b, dim=-1)
    logits = a @ b.T / temperature  # (B, B)
    target = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def item_prediction_loss(
    hidden: Tensor,
    item_weight: Tensor | None,
    targets: Tensor,
    negatives: Tensor | None = None,
    kind: str = "ce",
    item_bias: Tensor | None = None,
    lookup: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Loss of predicting ``targets`` from ``hidden`` with item scores ``h · e_i (+ b_i)``.

    ``ce``: softmax cross-entropy over all I items. With sampled ``negatives``: ``bce``
    (``-log σ(s_pos) - Σ_n log(1 - σ(s_neg))``, SASRec's loss), ``bpr`` (``-log σ(s_pos - s_neg)``,
    averaged over negatives) or ``sampled_ce`` (softmax over the positive and its negatives).
    ``lookup`` reads the sampled losses' rows of ``item_weight`` (e.g. the ``nn.Embedding`` it belongs
    to, whose gradient may then be sparse; ``item_weight`` may then be None for them); default: indexing
    ``item_weight``. Negatives of shape (N,) are
    shared by every target: one (T, N) product, and a target's own item among them is masked out.

    Shapes: hidden (T, D), item_weight (I, D), targets (T,), negatives (T, N) or (N,), item_bias (I,) -> ().
    """
    if kind == "ce":
        # ``item_weight`` may be None only for the sampled losses (see above); "ce" needs it.
        return linear_cross_entropy(hidden, cast(Tensor, item_weight), targets, item_bias)
    if negatives is None:
        raise ValueError(f"loss {kind!r} needs sampled negatives")
    rows: Callable[[Tensor], Tensor]
    if lookup is not None:
        rows = lookup
    elif item_weight is not None:
        rows = item_weight.__getitem__
    else:
        raise ValueError("item_prediction_loss needs item_weight or lookup")
    pos = (hidden * rows(targets)).sum(-1)  # (T,)
    if negatives.dim() == 1:
        neg = hidden @ rows(negatives).T  # (T, N)
    else:
        neg = torch.einsum("td,tnd->tn", hidden, rows(negatives))  # (T, N)
    if item_bias is not None:
        pos, neg = pos + item_bias[targets], neg + item_bias[negatives]
    if negatives.dim() == 1:  # a target is not its own negative: -inf adds nothing to any of the three losses
        neg = neg.masked_fill(negatives[None, :] == targets[:, None], float("-inf"))
    return sampled_item_losses(pos, neg, kind).mean()


def sampled_item_losses(pos: Tensor, neg: Tensor, kind: str) -> Tensor:
    """Per-target loss from the positive's score and its sampled negatives' scores (no reduction, fixed
    shapes, so it also runs under ``vmap``): ``bce``, ``bpr`` (mean over negatives), ``sampled_ce``.

    Shapes: pos (...,), neg (..., N) -> (...,).
    """
    if kind == "bce":
        return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1))
    if kind == "bpr":
        return -F.logsigmoid(pos.unsqueeze(-1) - neg).mean(-1)
    if kind == "sampled_ce":
        return torch.logsumexp(torch.cat([pos.unsqueeze(-1), neg], -1), -1) - pos
    raise ValueError(f"unknown loss {kind!r}; choose one of: ce, bce, bpr, sampled_ce")


CE_CHUNK_SCORES = 1 << 18
"""Scores per chunk of :func:`linear_cross_entropy` (1 MiB in float32: the chunk stays in cache)."""


def linear_cross_entropy(
    hidden: Tensor, weight: Tensor, targets: Tensor, bias: Tensor | None = None, chunk_size: int | None = None
) -> Tensor:
    """``F.cross_entropy(hidden @ weight.T + bias, targets)`` without materialising the (T, I) scores.

    The scores are computed in chunks of ``chunk_size`` rows (default: about 2**18 scores per
    chunk) for the log-sum-exp, and again in the backward pass for the softmax gradient, so memory
    is O(chunk x I) instead of O(T x I) and each chunk stays in cache. One extra matmul buys a
    1.5-2x faster loss on CPU for catalogues of a few thousand items, and makes catalogues of
    millions of items fit at all. Same value and gradients as the plain form (float rounding).

    Shapes: hidden (T, D), weight (I, D), targets (T,) int64, bias (I,) -> () mean over T.
    """
    if chunk_size is None:
        chunk_size = max(16, CE_CHUNK_SCORES // max(weight.shape[0], 1))
    return _LinearCrossEntropy.apply(hidden, weight, bias, targets, int(chunk_size))


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk):  # type: ignore[override]
        T = hidden.shape[0]
        lse = hidden.new_empty(T)  # (T,)
        for s in range(0, T, chunk):
            scores = hidden[s : s + chunk] @ weight.T  # (chunk, I)
            if bias is not None:
                scores += bias
            lse[s : s + chunk] = torch.logsumexp(scores, dim=-1)
        target_scores = (hidden * weight[targets]).sum(-1)  # (T,)
        if bias is not None:
            target_scores = target_scores + bias[targets]
        ctx.save_for_backward(hidden, weight, bias, targets, lse)
        ctx.chunk = chunk
        return (lse - target_scores).mean()

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        hidden, weight, bias, targets, lse = ctx.saved_tensors
        T, chunk = hidden.shape[0], ctx.chunk
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros_like(weight)
        grad_bias = None if bias is None else torch.zeros_like(bias)
        scale = grad / max(T, 1)
        for s in range(0, T, chunk):
            h = hidden[s : s + chunk]  # (c, D)
            scores = h @ weight.T  # (c, I)
            if bias is not None:
                scores += bias
            p = scores.sub_(lse[s : s + chunk, None]).exp_()  # softmax
            p[torch.arange(len(h), device=p.device), targets[s : s + chunk]] -= 1.0
            p.mul_(scale)  # d loss / d scores
            grad_hidden[s : s + chunk] = p @ weight
            grad_weight.addmm_(p.T, h)
            if grad_bias is not None:
                grad_bias += p.sum(0)
        return grad_hidden, grad_weight, grad_bias, None, None


def graph_bpr_terms(
    user_final: Tensor,
    item_final: Tensor,
    ego: Tensor,
    num_users: int,
    users: Tensor,
    pos_items: Tensor,
    neg_items: Tensor,
    reg_weight: float,
) -> tuple[Tensor, Tensor]:
    """BPR on propagated embeddings plus L2 on the batch's layer-0 (ego) embeddings.

    The objective of LightGCN-style graph recommenders. Shapes: user_final (U, D), item_final (I, D),
    ego (U+I, D0) with items after users; users/pos_items (B,), neg_items (B, N).
    Returns (ranking loss, regulariser).
    """
    u = user_final[users]  # (B, D)
    pos = (u * item_final[pos_items]).sum(-1)  # (B,)
    neg = (u.unsqueeze(1) * item_final[neg_items]).sum(-1)  # (B, N)
    reg = reg_weight * l2_penalty(
        ego[users], ego[num_users + pos_items], ego[num_users + neg_items], batch_size=len(users)
    )
    return bpr_loss(pos, neg), reg
