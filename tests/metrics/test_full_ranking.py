"""Full-ranking evaluator: hand cases, masking, skipping, chunking, ties, errors, top_k_items."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fusionrec.errors import FusionrecError
from fusionrec.metrics.full_ranking import evaluate_full_ranking, sample_users
from fusionrec.retrieval import top_k_items

ALL = ("recall", "ndcg", "precision", "hit_rate", "map", "mrr@3", "mrr", "auc")


def matrix_scorer(S: torch.Tensor):
    """Scorer backed by a dense (U, I) score matrix."""

    def scorer(users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        s = S[users]  # advanced indexing: a fresh (B, I) tensor
        return s if items is None else s[:, items]

    return scorer


def csr(rows: list[list[int]], num_items: int) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(rows), num_items))


def minus(a: sp.spmatrix, b: sp.spmatrix) -> sp.csr_matrix:
    """Binary a AND NOT b."""
    a, b = (a != 0).astype(np.int8), (b != 0).astype(np.int8)
    out = (a - a.multiply(b)).tocsr()
    out.eliminate_zeros()
    return out


def reference(S: np.ndarray, targets: sp.csr_matrix, exclude: sp.csr_matrix | None, names: list[str]):
    """Slow, independent reference: build each user's ranked list explicitly (pessimistic order:
    score descending, non-targets before targets on ties, targets by ascending item index) and
    read every metric off the list. Python loops: tiny inputs only."""
    out: dict[str, list[float]] = {n: [] for n in names}
    for u in range(S.shape[0]):
        tg = sorted(targets[u].indices.tolist())
        if not tg:
            continue
        ex = set() if exclude is None else set(exclude[u].indices.tolist())
        cands = [i for i in range(S.shape[1]) if i not in ex or i in tg]
        ranked = sorted(cands, key=lambda i: (-S[u, i], i in tg, tg.index(i) if i in tg else 0))
        rel = [1 if i in tg else 0 for i in ranked]
        n = len(tg)
        for name in names:
            base, _, k = name.partition("@")
            k = int(k) if k else len(rel)
            top = rel[:k]
            if base == "recall":
                v = sum(top) / n
            elif base == "precision":
                v = sum(top) / k
            elif base == "hit_rate":
                v = float(any(top))
            elif base == "ndcg":
                dcg = sum(r / math.log2(p + 2) for p, r in enumerate(top))
                v = dcg / sum(1 / math.log2(p + 2) for p in range(min(n, k)))
            elif base == "mrr":
                v = next((1 / (p + 1) for p, r in enumerate(top) if r), 0.0)
            elif base == "map":
                hits, ap = 0, 0.0
                for p, r in enumerate(top):
                    if r:
                        hits += 1
                        ap += hits / (p + 1)
                v = ap / min(n, k)
            elif base == "auc":
                neg = [S[u, i] for i in cands if i not in tg]
                pairs = [(S[u, t] > s) for t in tg for s in neg]
                v = sum(pairs) / len(pairs) if pairs else math.nan
            else:
                raise AssertionError(name)
            out[name].append(v)
    return {n: np.array(v) for n, v in out.items()}


def test_hand_case_with_exclusion_and_skip() -> None:
    # 3 users x 6 items. User 1 has no target (skipped). Item 4 of user 0 is excluded and would
    # otherwise rank first; user 2's targets tie with a non-target.
    S = torch.tensor(
        [
            [0.9, 0.1, 0.8, 0.3, 5.0, 0.2],
            [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            [0.5, 0.5, 0.5, 0.1, 0.9, 0.0],
        ]
    )
    targets = csr([[0, 3], [], [1, 2]], 6)
    exclude = csr([[4], [], []], 6)
    res = evaluate_full_ranking(matrix_scorer(S), targets, exclude, ks=(1, 2), metrics=("recall", "ndcg", "auc"))
    assert res.num_users_evaluated == 2 and res.num_users_skipped == 1
    assert res.users.tolist() == [0, 2]
    # user 0: candidates 0,1,2,3,5 (4 excluded); order 0 (0.9, T), 2 (0.8), 3 (0.3, T), 5, 1
    #   ranks 0 and 2: recall@1 = 1/2, recall@2 = 1/2
    #   ndcg@2 = 1 / (1 + 1/log2 3); auc: negatives 2, 5, 1; target 0 beats 3, target 3 beats 2 -> 5/6
    # user 2: item 4 (0.9) first; items 0, 1, 2 tie at 0.5: non-target 0 first, then targets 1, 2
    #   ranks 2 and 3: recall@1 = recall@2 = 0, ndcg@2 = 0; auc: negatives 4, 0, 3, 5;
    #   each target beats 3 and 5 only (the tie with 0 is a loss) -> 4/8
    np.testing.assert_allclose(res.per_user["recall@1"], [0.5, 0.0])
    np.testing.assert_allclose(res.per_user["recall@2"], [0.5, 0.0])
    np.testing.assert_allclose(res.per_user["ndcg@2"], [1 / (1 + 1 / math.log2(3)), 0.0])
    np.testing.assert_allclose(res.per_user["auc"], [5 / 6, 0.5])
    assert res.metrics["auc"] == pytest.approx((5 / 6 + 0.5) / 2)
    assert res.seconds >= 0


def test_excluded_items_are_never_candidates() -> None:
    # Excluded items get huge scores; the result must equal the one where they score -1000.
    rng = np.random.default_rng(0)
    S = torch.from_numpy(rng.random((20, 30)))
    exclude = sp.random(20, 30, density=0.3, random_state=1, format="csr")
    targets = sp.random(20, 30, density=0.15, random_state=2, format="csr")
    targets = minus(targets, exclude)
    ex_mask = torch.from_numpy(exclude.toarray() != 0)
    hi, lo = S.masked_fill(ex_mask, 1e6), S.masked_fill(ex_mask, -1e3)
    a = evaluate_full_ranking(matrix_scorer(hi), targets, exclude, ks=(3, 10), metrics=ALL)
    b = evaluate_full_ranking(matrix_scorer(lo), targets, exclude, ks=(3, 10), metrics=ALL)
    for name in a.per_user:
        np.testing.assert_array_equal(a.per_user[name], b.per_user[name], err_msg=name)
    # and both agree with the reference that removes excluded items from the list
    ref = reference(S.numpy(), targets.tocsr(), exclude, list(a.per_user))
    for name in a.per_user:
        np.testing.assert_allclose(a.per_user[name], ref[name], atol=1e-12, err_msg=name)


def test_all_equal_scores_rank_targets_last() -> None:
    # 1 user, 10 items, all scores 0, targets 2 and 5: ranks 8 and 9
    S = torch.zeros(1, 10)
    res = evaluate_full_ranking(matrix_scorer(S), csr([[2, 5]], 10), ks=(5, 9, 10), metrics=ALL)
    m = res.metrics
    assert m["recall@5"] == 0.0 and m["recall@9"] == 0.5 and m["recall@10"] == 1.0
    assert m["mrr"] == pytest.approx(1 / 9)  # first target at rank 8
    assert m["ndcg@10"] == pytest.approx((1 / math.log2(10) + 1 / math.log2(11)) / (1 + 1 / math.log2(3)))
    assert m["auc"] == 0.0


def test_k_larger_than_number_of_candidates() -> None:
    # 1 user, 4 items, item 3 excluded: 3 candidates; target 1 ranks 1 (item 0 scores higher)
    S = torch.tensor([[0.9, 0.5, 0.1, 2.0]])
    res = evaluate_full_ranking(matrix_scorer(S), csr([[1]], 4), csr([[3]], 4), ks=(2, 50), metrics=ALL)
    m = res.metrics
    assert m["recall@50"] == 1.0 and m["hit_rate@50"] == 1.0
    assert m["precision@50"] == pytest.approx(1 / 50)  # hits / k, even with 3 candidates
    assert m["ndcg@50"] == pytest.approx(1 / math.log2(3))  # rank 1; ideal over min(1, 50) = 1
    assert m["map@50"] == pytest.approx(1 / 2)
    assert m["auc"] == pytest.approx(1 / 2)  # negatives 0 (loses) and 2 (wins)


def _tie_heavy(seed: int, U: int = 37, I: int = 53):
    rng = np.random.default_rng(seed)
    S = torch.from_numpy(rng.integers(0, 4, size=(U, I)).astype(np.float32))  # many ties
    S[3] = 0.0  # one user with every score equal
    targets = sp.random(U, I, density=0.12, random_state=seed + 1, format="lil")
    targets[5, :] = 0  # a user without targets
    targets[7, :] = 1  # a user whose every item is a target (no negatives: AUC undefined)
    targets = targets.tocsr()
    exclude = sp.random(U, I, density=0.2, random_state=seed + 2, format="csr")
    exclude = minus(exclude, targets)
    return S, targets, exclude


# The evaluator has three paths: cut-off metrics only (ranks exact below the largest k), + uncut
# mrr (best target exact), + auc (every rank exact). Each is checked against the reference, whole
# and chunked.
PATHS = [
    ("recall", "ndcg", "precision", "hit_rate", "map", "mrr@3"),
    ("recall", "ndcg", "map", "mrr", "mrr@3"),
    ALL,
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("metrics", PATHS, ids=["cut", "mrr", "auc"])
@pytest.mark.parametrize("chunk", [None, 10])
def test_matches_reference_with_heavy_ties(seed: int, metrics, chunk) -> None:
    S, targets, exclude = _tie_heavy(seed)
    res = evaluate_full_ranking(
        matrix_scorer(S), targets, exclude, ks=(1, 5, 20), metrics=metrics, user_batch_size=8, item_chunk_size=chunk
    )
    ref = reference(S.numpy(), targets, exclude, list(res.per_user))
    assert res.num_users_skipped == 1 and res.num_users_evaluated == len(ref["recall@1"])
    for name in res.per_user:
        np.testing.assert_allclose(res.per_user[name], ref[name], atol=1e-12, err_msg=name)
    if "auc" in res.per_user:
        assert math.isnan(res.per_user["auc"][list(res.users).index(7)])


@pytest.mark.parametrize("metrics", [ALL, ("recall", "ndcg", "map"), ("mrr", "ndcg")])
def test_item_chunking_gives_identical_results(metrics) -> None:
    S, targets, exclude = _tie_heavy(3)
    base = evaluate_full_ranking(matrix_scorer(S), targets, exclude, ks=(2, 10), metrics=metrics)
    for chunk, batch in [(1, 5), (7, 3), (52, 100), (1000, 1)]:
        res = evaluate_full_ranking(
            matrix_scorer(S),
            targets,
            exclude,
            ks=(2, 10),
            metrics=metrics,
            item_chunk_size=chunk,
            user_batch_size=batch,
        )
        assert res.users.tolist() == base.users.tolist()
        for name in base.per_user:
            np.testing.assert_array_equal(res.per_user[name], base.per_user[name], err_msg=f"{name} chunk={chunk}")


@pytest.mark.parametrize("chunk", [None, 7])
def test_mrr_exact_beyond_largest_k(chunk) -> None:
    # User 0's best target ranks 30th, far below K = 2: mrr (uncut) must still be exact, mrr@2 zero.
    # User 1's best target is in the top 2 (item 1 behind item 0, both items 3 and 4 targets),
    # user 2's first. Run with 2 users (most need the extra pass) and 3 (few need it).
    S = torch.arange(40, 0, -1, dtype=torch.float32).repeat(3, 1)  # item i scores 40 - i
    targets = csr([[30, 35], [1, 3, 4], [0]], 40)
    res = evaluate_full_ranking(
        matrix_scorer(S), targets, ks=(2,), metrics=("recall", "mrr", "mrr@2"), item_chunk_size=chunk
    )
    # user 0: 1/31; user 1: first target item 1 at rank 1 -> 1/2; user 2: rank 0 -> 1
    np.testing.assert_allclose(res.per_user["mrr"], [1 / 31, 1 / 2, 1.0])
    np.testing.assert_allclose(res.per_user["mrr@2"], [0.0, 1 / 2, 1.0])
    np.testing.assert_allclose(res.per_user["recall@2"], [0.0, 1 / 3, 1.0])
    two = evaluate_full_ranking(matrix_scorer(S[:2]), targets[:2], ks=(2,), metrics=("mrr",), item_chunk_size=chunk)
    np.testing.assert_allclose(two.per_user["mrr"], [1 / 31, 1 / 2])


def test_excluded_targets_are_dropped_with_a_warning() -> None:
    S = torch.tensor([[0.3, 0.2, 0.1]])
    with pytest.warns(UserWarning, match="also excluded"):
        res = evaluate_full_ranking(matrix_scorer(S), csr([[0, 2]], 3), csr([[0]], 3), ks=(1,), metrics=("recall",))
    # target 0 dropped; remaining target 2 ranks 1 behind item 1 -> recall@1 = 0
    assert res.num_targets_excluded == 1 and res.metrics["recall@1"] == 0.0


def test_scorer_output_is_checked_and_caller_storage_untouched() -> None:
    S = torch.rand(4, 6)
    copy = S.clone()
    # a scorer returning a view of its own storage must not see -inf written into it
    view_scorer = lambda users, items: S[int(users[0]) : int(users[-1]) + 1]  # noqa: E731
    evaluate_full_ranking(view_scorer, csr([[1], [2], [3], [4]], 6), csr([[0], [0], [0], [0]], 6), ks=(2,))
    assert torch.equal(S, copy)
    with pytest.raises(FusionrecError, match=r"\(B, C\)"):
        evaluate_full_ranking(lambda u, i: torch.zeros(len(u), 5), csr([[1]], 6), ks=(2,))
    nan = S.clone()
    nan[2, 3] = math.nan
    with pytest.raises(FusionrecError, match="NaN"):
        evaluate_full_ranking(matrix_scorer(nan), csr([[1], [2], [3], [4]], 6), ks=(2,))
    with pytest.raises(FusionrecError, match="shape"):
        evaluate_full_ranking(matrix_scorer(S), csr([[1]] * 4, 6), csr([[1]] * 4, 7), ks=(2,))


# --------------------------------------------------------------------------------- top_k_items


def test_top_k_items_breaks_ties_by_lower_index_and_masks() -> None:
    S = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0, 9.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    exclude = csr([[5], [0, 1, 2, 3]], 6)
    idx, sc = top_k_items(matrix_scorer(S), [0, 1], k=3, exclude=exclude)
    # user 0: 9.0 (item 5) excluded; ties at 3.0 -> items 1, 2, 4 in index order
    assert idx[0].tolist() == [1, 2, 4] and sc[0].tolist() == [3.0, 3.0, 3.0]
    # user 1: only items 4, 5 are candidates -> third slot empty
    assert idx[1].tolist() == [4, 5, -1] and sc[1, 2].item() == -math.inf
    for chunk in (1, 2, 4):
        i2, s2 = top_k_items(matrix_scorer(S), [0, 1], k=3, exclude=exclude, item_chunk_size=chunk, user_batch_size=1)
        assert torch.equal(i2, idx) and torch.equal(s2, sc)


def test_top_k_items_matches_a_stable_sort() -> None:
    rng = np.random.default_rng(5)
    S = torch.from_numpy(rng.integers(0, 5, size=(9, 40)).astype(np.float32))
    idx, sc = top_k_items(matrix_scorer(S), np.arange(9), k=7, item_chunk_size=6, num_items=40)
    want = torch.from_numpy(np.argsort(-S.numpy(), axis=1, kind="stable")[:, :7])
    assert torch.equal(idx, want)
    assert torch.equal(sc, S.gather(1, want))


def test_top_k_items_exclude_rows_by_user_or_aligned() -> None:
    S = torch.tensor([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]])
    full = csr([[0], [3], [1, 2]], 4)  # row u = user u
    idx, _ = top_k_items(matrix_scorer(S), [2, 1], k=2, exclude=full)  # by user: 3 rows != 2 users
    assert idx.tolist() == [[0, 3], [2, 1]]
    one_row = full[[2]]  # the API's call: a single user and that user's row only
    idx, _ = top_k_items(matrix_scorer(S), torch.tensor([2]), k=2, exclude=one_row)
    assert idx.tolist() == [[0, 3]]
    # 3 users and 3 rows in another order: ambiguous unless said
    with pytest.raises(FusionrecError, match="exclude_rows"):
        top_k_items(matrix_scorer(S), [2, 0, 1], k=2, exclude=full)
    idx, _ = top_k_items(matrix_scorer(S), [2, 0, 1], k=2, exclude=full, exclude_rows="user")
    assert idx.tolist() == [[0, 3], [1, 2], [2, 1]]
    idx, _ = top_k_items(matrix_scorer(S), [2, 0, 1], k=2, exclude=full, exclude_rows="aligned")
    assert idx.tolist() == [[1, 2], [0, 1], [3, 0]]  # user 2 minus item 0; user 0 minus 3; user 1 minus 1, 2


def test_sampled_users_are_a_fixed_subset_scored_exactly_as_in_the_full_pass() -> None:
    rng = np.random.default_rng(3)
    targets = sp.random(200, 40, density=0.05, random_state=4, format="csr")
    targets.data[:] = 1.0
    with_targets = np.flatnonzero(np.diff(targets.indptr) > 0)
    sample = sample_users(targets, 50, seed=7)
    kept = np.flatnonzero(np.diff(sample.indptr) > 0)
    assert len(kept) == 50 and set(kept) <= set(with_targets)
    assert (sample[kept] != targets[kept]).nnz == 0  # kept users keep all their targets
    assert np.array_equal(np.flatnonzero(np.diff(sample_users(targets, 50, seed=7).indptr)), kept)
    assert not np.array_equal(np.flatnonzero(np.diff(sample_users(targets, 50, seed=8).indptr)), kept)
    assert sample_users(targets, None, seed=7).nnz == sample_users(targets, 10_000, 7).nnz == targets.nnz
    scorer = matrix_scorer(torch.from_numpy(rng.normal(size=(200, 40))))
    full = evaluate_full_ranking(scorer, targets, ks=(5,), metrics=("ndcg",))
    part = evaluate_full_ranking(scorer, sample, ks=(5,), metrics=("ndcg",))
    assert part.num_users_evaluated == 50 and np.array_equal(part.users, kept)
    np.testing.assert_array_equal(part.per_user["ndcg@5"], full.per_user["ndcg@5"][np.isin(full.users, kept)])
