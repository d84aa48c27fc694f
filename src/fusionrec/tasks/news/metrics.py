"""Per-impression AUC, MRR and nDCG@k with the MIND scorer's definitions, vectorised over impressions.

For one impression with 0/1 labels ``y`` and scores ``s`` (MIND's ``evaluate.py``, also
microsoft/recommenders):

- AUC: ``roc_auc_score(y, s)``: the share of (clicked, non-clicked) pairs ranked right, ties half.
- MRR: ``Σ_i y_(i) / i / Σ y``, ``y_(i)`` the label at predicted rank i (every click's reciprocal rank,
  averaged over the clicks).
- nDCG@k: ``DCG@k(s) / DCG@k(y)`` with ``DCG@k = Σ_{i<=k} (2^{y_(i)} - 1) / log2(i + 1)``.

Ties: AUC counts them half (as roc_auc_score). MIND's MRR and nDCG order by ``np.argsort`` of the
scores, which leaves the order of tied scores to the sort; here ties are broken pessimistically
(non-clicked first), so a constant scorer gets no credit from the order. On distinct scores the two
agree exactly (tested against a hand-computed fixture).

Shapes: scores, labels, mask (B, C) with padding where mask is False -> (B,) per metric.
"""

from __future__ import annotations

import numpy as np

KS = (5, 10)
METRICS = ("auc", "mrr", *(f"ndcg@{k}" for k in KS))


def impression_metrics(
    scores: np.ndarray, labels: np.ndarray, mask: np.ndarray, ks: tuple[int, ...] = KS
) -> dict[str, np.ndarray]:
    """Per-impression metrics of padded rows (every row needs a click and a non-click)."""
    scores = np.where(mask, scores.astype(np.float64), -np.inf)
    labels = np.where(mask, labels, 0).astype(np.float64)
    positive, negative = labels > 0, mask & (labels <= 0)
    out = {"auc": _auc(np.where(mask, scores, 0.0), positive, negative)}
    order = np.lexsort((labels, -scores), axis=-1)  # score descending, ties: non-clicked first
    ranked = np.take_along_axis(labels, order, axis=-1)  # (B, C)
    ranks = np.arange(1, scores.shape[1] + 1, dtype=np.float64)
    out["mrr"] = (ranked / ranks).sum(1) / labels.sum(1)
    discounts = 1.0 / np.log2(ranks + 1.0)
    ideal = -np.sort(-labels, axis=1)
    for k in ks:
        dcg = ((2.0 ** ranked[:, :k] - 1.0) * discounts[:k]).sum(1)
        best = ((2.0 ** ideal[:, :k] - 1.0) * discounts[:k]).sum(1)
        out[f"ndcg@{k}"] = dcg / best
    return out


def _auc(scores: np.ndarray, positive: np.ndarray, negative: np.ndarray, budget: int = 1 << 24) -> np.ndarray:
    """Pairwise AUC per row (ties half), in row chunks of at most ``budget`` pairs."""
    rows, width = scores.shape
    out = np.empty(rows)
    step = max(1, budget // max(width * width, 1))
    for start in range(0, rows, step):
        s, p, n = scores[start : start + step], positive[start : start + step], negative[start : start + step]
        diff = s[:, :, None] - s[:, None, :]  # (b, C, C): clicked i vs non-clicked j
        pairs = p[:, :, None] & n[:, None, :]
        wins = np.where(pairs, (diff > 0) + 0.5 * (diff == 0), 0.0).sum((1, 2))
        out[start : start + step] = wins / pairs.sum((1, 2))
    return out
