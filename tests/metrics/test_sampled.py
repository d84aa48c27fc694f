"""Sampled-candidate evaluation: seeded, reproducible, never samples targets or excluded items."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fusionrec.errors import ConfigError
from fusionrec.metrics.full_ranking import evaluate_sampled, sample_negatives


def matrix_scorer(S: torch.Tensor):
    def scorer(users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        s = S[users]
        return s if items is None else s[:, items]

    return scorer


def data(seed: int = 0, U: int = 30, I: int = 80):
    rng = np.random.default_rng(seed)
    S = torch.from_numpy(rng.integers(0, 6, size=(U, I)).astype(np.float32))  # ties on purpose
    targets = sp.random(U, I, density=0.08, random_state=seed + 1, format="lil")
    targets[4, :] = 0  # no target: skipped
    targets = targets.tocsr()
    exclude = sp.random(U, I, density=0.5, random_state=seed + 2, format="lil")
    exclude[9, :] = 1  # nothing left to sample for user 9
    return S, targets, exclude.tocsr()


def test_negatives_avoid_targets_and_excluded_and_are_distinct() -> None:
    S, targets, exclude = data()
    users = np.arange(30)
    neg = sample_negatives(targets, exclude, users, 20, np.random.default_rng(3))
    forbidden = (targets.toarray() != 0) | (exclude.toarray() != 0)
    allowed = (~forbidden).sum(1)
    for u in users:
        row = neg[u][neg[u] >= 0]
        assert len(row) == min(20, allowed[u]), u  # all allowed items when fewer than N remain
        assert len(set(row.tolist())) == len(row)
        assert not forbidden[u, row].any()
    assert (neg[9] == -1).all()


def test_negatives_are_uniform() -> None:
    # 1 user, items 0..9, items 0 and 1 forbidden: each of the 8 others drawn with prob 3/8
    t = sp.csr_matrix(([1.0], ([0], [0])), shape=(1, 10))
    e = sp.csr_matrix(([1.0], ([0], [1])), shape=(1, 10))
    neg = sample_negatives(t, e, np.zeros(2000, dtype=np.int64), 3, np.random.default_rng(0))  # 2000 draws
    counts = np.bincount(neg.ravel(), minlength=10)
    assert counts[0] == counts[1] == 0 and (neg >= 0).all()
    np.testing.assert_allclose(counts[2:] / 2000, 3 / 8, atol=0.05)


def test_seeded_reproducible_and_independent_of_batching() -> None:
    S, targets, exclude = data()
    kw = dict(num_negatives=15, ks=(1, 5), metrics=("recall", "ndcg", "mrr", "auc"))
    a = evaluate_sampled(matrix_scorer(S), targets, exclude, seed=7, **kw)
    b = evaluate_sampled(matrix_scorer(S), targets, exclude, seed=7, user_batch_size=4, item_chunk_size=9, **kw)
    c = evaluate_sampled(matrix_scorer(S), targets, exclude, seed=8, **kw)
    assert a.num_users_skipped == 1 and a.users.tolist() == b.users.tolist()
    for name in a.per_user:
        np.testing.assert_array_equal(a.per_user[name], b.per_user[name], err_msg=name)
    assert any(not np.array_equal(a.per_user[n], c.per_user[n]) for n in a.per_user)
    # user 9 has no negative: it has only its targets as candidates (AUC undefined)
    i9 = a.users.tolist().index(9)
    assert math.isnan(a.per_user["auc"][i9]) and a.per_user["recall@5"][i9] == 1.0


def test_sampled_hand_case_and_pessimistic_ties() -> None:
    # 1 user, 5 items; target 0 scores 1.0; every other item is a negative when N >= 4.
    # items 1, 2 score 1.0 (ties, lost), 3 scores 2.0, 4 scores 0.0 -> rank 3 of 5
    S = torch.tensor([[1.0, 1.0, 1.0, 2.0, 0.0]])
    t = sp.csr_matrix(([1.0], ([0], [0])), shape=(1, 5))
    res = evaluate_sampled(matrix_scorer(S), t, None, num_negatives=100, ks=(3, 4), metrics=("recall", "ndcg", "auc"))
    assert res.metrics["recall@3"] == 0.0 and res.metrics["recall@4"] == 1.0
    assert res.metrics["ndcg@4"] == pytest.approx(1 / math.log2(5))
    assert res.metrics["auc"] == pytest.approx(1 / 4)  # beats item 4 only


def test_sampled_rejects_bad_num_negatives() -> None:
    S, targets, exclude = data()
    with pytest.raises(ConfigError, match="num_negatives"):
        evaluate_sampled(matrix_scorer(S), targets, exclude, num_negatives=0)


def test_sampled_matches_a_reference_on_the_same_negatives() -> None:
    # The evaluator draws keys user after user from default_rng(seed); sample_negatives with the same
    # generator reproduces its negatives, and a slow reference ranks targets among them.
    S, targets, exclude = data(seed=2)
    res = evaluate_sampled(
        matrix_scorer(S),
        targets,
        exclude,
        num_negatives=12,
        seed=11,
        ks=(3,),
        metrics=("recall", "ndcg", "auc"),
        user_batch_size=7,
    )
    neg = sample_negatives(targets, exclude, res.users, 12, np.random.default_rng(11))
    for row, u in enumerate(res.users):
        tg = sorted(targets[u].indices.tolist())
        ng = [i for i in neg[row] if i >= 0]
        # pessimistic order: score desc, negatives before targets on ties, targets by index
        ranked = sorted(tg + ng, key=lambda i: (-S[u, i].item(), i in tg, i))
        top = [i in tg for i in ranked[:3]]
        assert res.per_user["recall@3"][row] == pytest.approx(sum(top) / len(tg))
        idcg = sum(1 / math.log2(p + 2) for p in range(min(len(tg), 3)))
        dcg = sum(1 / math.log2(p + 2) for p, hit in enumerate(top) if hit)
        assert res.per_user["ndcg@3"][row] == pytest.approx(dcg / idcg)
        pairs = [S[u, t].item() > S[u, n].item() for t in tg for n in ng]
        want = sum(pairs) / len(pairs) if pairs else math.nan
        np.testing.assert_allclose(res.per_user["auc"][row], want)
