"""The CTR metrics as pure functions: AUC (ties count half), logloss, GAUC, calibration.

Shapes: scores, labels (N,); users (N,) ints.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(a positive outscores a negative), ties counted as half (Mann-Whitney U / (n+ n-)); NaN
    when one class is absent."""
    labels = np.asarray(labels) > 0.5
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks, tied scores sharing their average rank."""
    order = np.argsort(scores, kind="stable")
    _, first, counts = np.unique(scores[order], return_index=True, return_counts=True)
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def row_logloss(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row binary cross-entropy, probabilities clipped to [1e-7, 1 - 1e-7]."""
    p = np.clip(probs, EPS, 1 - EPS)
    return -(labels * np.log(p) + (1 - labels) * np.log(1 - p))


def gauc(scores: np.ndarray, labels: np.ndarray, users: np.ndarray) -> tuple[float, int]:
    """User-averaged AUC weighted by each user's rows (Zhou et al., DIN, KDD 2018), over the users with
    both a click and a non-click; returns (GAUC, users counted). Vectorised: one sort by (user, score)."""
    labels = np.asarray(labels) > 0.5
    users = np.asarray(users)
    order = np.lexsort((scores, users))
    u, s, y = users[order], np.asarray(scores, dtype=np.float64)[order], labels[order]
    # average rank of each score within its user (ties share the average)
    starts_user = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    user_of = np.cumsum(np.r_[True, u[1:] != u[:-1]]) - 1
    new_group = np.r_[True, (u[1:] != u[:-1]) | (s[1:] != s[:-1])]
    group = np.cumsum(new_group) - 1
    group_start = np.flatnonzero(new_group)
    group_size = np.diff(np.r_[group_start, len(s)])
    first_rank = group_start - starts_user[user_of[group_start]] + 1
    ranks = (first_rank + (group_size - 1) / 2.0)[group]
    n_rows = np.bincount(user_of)
    n_pos = np.bincount(user_of, weights=y)
    n_neg = n_rows - n_pos
    rank_sum = np.bincount(user_of, weights=ranks * y)
    both = (n_pos > 0) & (n_neg > 0)
    if not both.any():
        return float("nan"), 0
    per_user = (rank_sum[both] - n_pos[both] * (n_pos[both] + 1) / 2) / (n_pos[both] * n_neg[both])
    return float(np.average(per_user, weights=n_rows[both])), int(both.sum())
