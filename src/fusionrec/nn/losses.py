"""Losses shared by models, as pure functions."""

from __future__ import annotations

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


def info_nce(a: Tensor, b: Tensor, temperature: float = 0.1) -> Tensor:
    """Symmetric InfoNCE (CLIP-style): row ``i`` of ``a`` should match row ``i`` of ``b``. Shapes: (B, D)."""
    a = F.normalize(a, dim=-1)
    b = F.normalize(b, dim=-1)
    logits = a @ b.T / temperature  # (B, B)
    target = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
