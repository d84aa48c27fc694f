"""The MIND scorer's per-impression AUC, MRR and nDCG@k: a hand-computed fixture, ties, padding, and
agreement with scikit-learn's AUC and an independent transcription of MIND's definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fusionrec.tasks.news.metrics import impression_metrics


def one(scores, labels):
    s, y = np.array([scores], float), np.array([labels], float)
    return {k: float(v[0]) for k, v in impression_metrics(s, y, np.ones_like(s, bool)).items()}


def test_hand_computed_impression():
    # ranked: 0.9 (click), 0.8, 0.5, 0.3 (click), 0.1
    m = one([0.9, 0.8, 0.1, 0.3, 0.5], [1, 0, 0, 1, 0])
    assert m["auc"] == pytest.approx(4 / 6)  # 0.9 beats 3 non-clicks, 0.3 beats 1
    assert m["mrr"] == pytest.approx((1 / 1 + 1 / 4) / 2)
    dcg = 1 / math.log2(2) + 1 / math.log2(5)
    ideal = 1 / math.log2(2) + 1 / math.log2(3)
    assert m["ndcg@5"] == pytest.approx(dcg / ideal)  # 0.877215
    assert m["ndcg@10"] == pytest.approx(dcg / ideal)
    assert m["ndcg@5"] == pytest.approx(0.877215, abs=1e-6)


def test_cut_off_and_perfect_ranking():
    m = one([6, 5, 4, 3, 2, 1, 0], [0, 0, 0, 0, 0, 1, 0])  # the click at rank 6
    assert m["ndcg@5"] == 0.0 and m["ndcg@10"] == pytest.approx(1 / math.log2(7))
    assert m["mrr"] == pytest.approx(1 / 6) and m["auc"] == pytest.approx(1 / 6)
    assert one([3, 2, 1], [1, 1, 0]) == {"auc": 1.0, "mrr": pytest.approx(0.75), "ndcg@5": 1.0, "ndcg@10": 1.0}


def test_ties_count_half_for_auc_and_pessimistically_for_the_order():
    m = one([1.0, 1.0, 1.0], [1, 0, 0])
    assert m["auc"] == 0.5
    assert m["mrr"] == pytest.approx(1 / 3)  # the click after the tied non-clicks


def test_padding_is_ignored():
    scores = np.array([[0.9, 0.8, 0.1, 0.3, 0.5], [0.2, 0.7, 99.0, -99.0, 5.0]])
    labels = np.array([[1, 0, 0, 1, 0], [1, 0, 0, 0, 0]], float)
    mask = np.array([[True] * 5, [True, True, False, False, False]])
    m = impression_metrics(scores, labels, mask)
    assert m["auc"][1] == 0.0 and m["mrr"][1] == 0.5 and m["ndcg@5"][1] == pytest.approx(1 / math.log2(3))
    assert m["auc"][0] == pytest.approx(4 / 6)


def _mind_reference(y, s, k):
    """MIND's evaluate.py definitions, transcribed independently (distinct scores only)."""
    order = np.argsort(s)[::-1]
    ranked = np.take(y, order)
    mrr = (ranked / (np.arange(len(ranked)) + 1)).sum() / y.sum()

    def dcg(labels_in_order):
        top = labels_in_order[:k]
        return ((2**top - 1) / np.log2(np.arange(len(top)) + 2)).sum()

    return mrr, dcg(ranked) / dcg(np.sort(y)[::-1])


def test_agrees_with_sklearn_and_the_mind_definitions_on_random_impressions():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(3, 40))
        y = (rng.random(n) < 0.3).astype(float)
        y[0], y[1] = 1.0, 0.0
        s = rng.standard_normal(n)
        m = one(s, y)
        mrr, ndcg10 = _mind_reference(y, s, 10)
        assert m["auc"] == pytest.approx(roc_auc_score(y, s))
        assert m["mrr"] == pytest.approx(mrr) and m["ndcg@10"] == pytest.approx(ndcg10)
