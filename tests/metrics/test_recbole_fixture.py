"""Reproduce RecBole 1.2.1's reported test metrics from its own LightGCN score matrix on ml-100k.

Protocol (RecBole's, stated in reported_metrics.json): full ranking over all 1,682 items, test masks
train + validation items, recall = hits / #test items, NDCG binary with ideal DCG over
min(#test items, k). RecBole breaks ties arbitrarily and rounds to 6 decimals; we are pessimistic,
hence the 2e-4 tolerance (few ties in these float32 scores). ``best_valid`` came from a different
epoch's scores and cannot be reproduced from this matrix, so it is not tested.

The fixtures live in ``<repo>/../shared/fixtures`` (``FUSIONREC_SHARED`` overrides ``<repo>/../shared``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fusionrec.metrics.full_ranking import evaluate_full_ranking

SHARED = Path(os.environ.get("FUSIONREC_SHARED", Path(__file__).resolve().parents[2] / ".." / "shared"))
SCORES = SHARED / "fixtures" / "ml100k-recbole-lightgcn-scores"
SPLIT = SHARED / "fixtures" / "ml100k-peer-split"


@pytest.fixture(scope="module")
def recbole():
    if not (SCORES / "scores.npz").is_file() or not (SPLIT / "test.tsv").is_file():
        pytest.skip(f"RecBole fixtures not found under {SHARED} (set FUSIONREC_SHARED)")
    z = np.load(SCORES / "scores.npz")
    scores = torch.from_numpy(z["scores"])  # (943, 1682) float32
    row = {int(u): i for i, u in enumerate(z["users"])}
    col = {int(i): j for j, i in enumerate(z["items"])}

    def load(name: str) -> sp.csr_matrix:
        pairs = np.loadtxt(SPLIT / f"{name}.tsv", dtype=np.int64, delimiter="\t", skiprows=1)
        r = np.array([row[u] for u in pairs[:, 0]])
        c = np.array([col[i] for i in pairs[:, 1]])
        return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=scores.shape)

    reported = json.loads((SCORES / "reported_metrics.json").read_text())
    return scores, load("train"), load("valid"), load("test"), reported


def test_reproduces_recbole_test_metrics(recbole) -> None:
    scores, train, valid, test, reported = recbole
    assert train.nnz == 80_808 and valid.nnz == 9_596 and test.nnz == 9_596

    def scorer(users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        s = scores[users]
        return s if items is None else s[:, items]

    res = evaluate_full_ranking(scorer, test, train + valid, ks=(10, 20), metrics=("recall", "ndcg"))
    assert res.num_users_evaluated == 943 and res.num_users_skipped == 0 and res.num_targets_excluded == 0
    for name in ("recall@10", "recall@20", "ndcg@10", "ndcg@20"):
        assert abs(res.metrics[name] - reported["test"][name]) < 2e-4, (name, res.metrics[name], reported["test"][name])
    # chunked evaluation gives the very same numbers
    chunked = evaluate_full_ranking(
        scorer, test, train + valid, ks=(10, 20), metrics=("recall", "ndcg"), item_chunk_size=300, user_batch_size=200
    )
    for name in res.per_user:
        np.testing.assert_array_equal(chunked.per_user[name], res.per_user[name])
