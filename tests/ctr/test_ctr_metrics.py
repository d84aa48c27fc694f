"""The CTR metrics against brute force and an independent implementation (scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.tasks.ctr.metrics import auc, gauc, row_logloss


def brute_auc(scores, labels):
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


def test_auc_by_hand_with_ties():
    scores = np.array([0.1, 0.4, 0.4, 0.8])
    labels = np.array([0, 0, 1, 1])
    # pairs (pos, neg): (0.4, 0.1) win, (0.4, 0.4) tie, (0.8, *) two wins -> 3.5 / 4
    assert auc(scores, labels) == pytest.approx(0.875)
    assert np.isnan(auc(scores, np.ones(4)))


def test_auc_and_logloss_match_brute_force_and_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=400), 1)  # many ties
    labels = (rng.random(400) < 0.3).astype(float)
    assert auc(scores, labels) == pytest.approx(brute_auc(scores, labels))
    assert auc(scores, labels) == pytest.approx(metrics.roc_auc_score(labels, scores))
    probs = 1 / (1 + np.exp(-scores))
    assert row_logloss(probs, labels).mean() == pytest.approx(metrics.log_loss(labels, probs))


def test_gauc_is_the_row_weighted_mean_of_per_user_aucs():
    rng = np.random.default_rng(1)
    users = rng.integers(0, 12, 300)
    scores = np.round(rng.normal(size=300), 1)
    labels = (rng.random(300) < 0.4).astype(float)
    labels[users == 3] = 1.0  # a user with one class only is left out
    per_user, weights = [], []
    for u in np.unique(users):
        rows = users == u
        if 0 < labels[rows].sum() < rows.sum():
            per_user.append(brute_auc(scores[rows], labels[rows]))
            weights.append(rows.sum())
    value, counted = gauc(scores, labels, users)
    assert counted == len(per_user) == 11
    assert value == pytest.approx(np.average(per_user, weights=weights))
