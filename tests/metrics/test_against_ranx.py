"""Agreement with ranx (an independent implementation) on random, tie-free scores.

ranx definitions checked against ours (ranx 0.3.x, binary relevance):
- recall@k = hits / #relevant, precision@k = hits / k (also when fewer than k are retrieved),
  hit_rate@k, mrr@k (reciprocal rank of the first hit within k, 0 otherwise), mrr (k=0: uncut),
  ndcg@k (Jarvelin gains rel / log2(rank + 1), ideal DCG over the relevant items cut at k): same.
- map@k: ranx divides the summed precisions by #relevant; we divide by min(#relevant, k)
  (RecBole/Cornac convention). So we compare ours * min(n, k) / n with ranx map@k, and ours with
  ranx directly where k >= every user's #targets (there the two definitions coincide).

We call ranx's metric kernels (``ranx.metrics``) with each user's run already sorted by score, as
``ranx.Run`` would; this skips the slow typed-dict construction of ``Qrels/Run.from_dict`` (about 10 s).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fusionrec.metrics.full_ranking import evaluate_full_ranking

ranx_metrics = pytest.importorskip("ranx.metrics")
numba_typed = pytest.importorskip("numba.typed")

KS = (1, 3, 10, 50)


def _problem(seed: int = 0, U: int = 60, I: int = 120):
    rng = np.random.default_rng(seed)
    S = rng.random((U, I))  # float64: no ties
    assert all(len(np.unique(r)) == I for r in S)
    n_t = rng.integers(0, 12, size=U)  # some users without targets
    exclude = sp.random(U, I, density=0.25, random_state=seed + 1, format="csr")
    ex = exclude.toarray() != 0
    rows, cols = [], []
    for u in range(U):  # test setup only
        free = np.flatnonzero(~ex[u])
        pick = rng.choice(free, size=min(n_t[u], len(free)), replace=False)
        rows += [u] * len(pick)
        cols += pick.tolist()
    targets = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(U, I))
    return S, targets, exclude, ex


def _ranx_inputs(S, targets, ex, users):
    qrels, run = numba_typed.List(), numba_typed.List()
    for u in users:
        tg = targets[u].indices
        qrels.append(np.stack([tg.astype(np.float64), np.ones(len(tg))], 1))
        cand = np.flatnonzero(~ex[u])
        order = cand[np.argsort(-S[u, cand])]  # a ranx Run is sorted by descending score
        run.append(np.stack([order.astype(np.float64), S[u, order]], 1))
    return qrels, run


def test_agrees_with_ranx() -> None:
    S, targets, exclude, ex = _problem()
    res = evaluate_full_ranking(
        lambda u, i: torch.from_numpy(S)[u] if i is None else torch.from_numpy(S)[u][:, i],
        targets,
        exclude,
        ks=KS,
        metrics=("recall", "ndcg", "precision", "hit_rate", "map", "mrr"),
        item_chunk_size=50,
        user_batch_size=16,
    )
    assert res.num_users_skipped > 0
    qrels, run = _ranx_inputs(S, targets, ex, res.users)
    n = np.diff(targets.indptr)[res.users]
    for k in KS:
        pairs = {
            f"recall@{k}": ranx_metrics.recall(qrels, run, k),
            f"ndcg@{k}": ranx_metrics.ndcg(qrels, run, k),
            f"precision@{k}": ranx_metrics.precision(qrels, run, k),
            f"hit_rate@{k}": ranx_metrics.hit_rate(qrels, run, k),
            # ranx AP@k divides by n; ours by min(n, k)
            f"map@{k}": ranx_metrics.average_precision(qrels, run, k) * n / np.minimum(n, k),
        }
        for name, want in pairs.items():
            np.testing.assert_allclose(res.per_user[name], want, rtol=0, atol=1e-6, err_msg=name)
    # uncut MRR (ranx k=0) and, where every user has at most k targets, MAP without rescaling
    np.testing.assert_allclose(res.per_user["mrr"], ranx_metrics.reciprocal_rank(qrels, run, 0), atol=1e-6)
    assert n.max() <= 50
    np.testing.assert_allclose(res.per_user["map@50"], ranx_metrics.average_precision(qrels, run, 50), atol=1e-6)
    res_mrr = evaluate_full_ranking(
        lambda u, i: torch.from_numpy(S)[u], targets, exclude, ks=(), metrics=("mrr@3", "mrr@10")
    )
    for k in (3, 10):
        np.testing.assert_allclose(res_mrr.per_user[f"mrr@{k}"], ranx_metrics.reciprocal_rank(qrels, run, k), atol=1e-6)
    # the means, as a paper table would show them
    for name, want in [("ndcg@10", ranx_metrics.ndcg(qrels, run, 10).mean())]:
        assert abs(res.metrics[name] - want) < 1e-6
