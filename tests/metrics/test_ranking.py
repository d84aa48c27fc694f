"""Hand-computed cases for every ranking metric, the tie rule and the accumulator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fusionrec.errors import ConfigError
from fusionrec.metrics.ranking import (
    METRICS,
    MetricSpec,
    RankingMetrics,
    auc,
    compute_metric,
    expand_metric_names,
    hit_rate_at_k,
    map_at_k,
    mrr,
    ndcg_at_k,
    parse_metric,
    pessimistic_ranks,
    precision_at_k,
    recall_at_k,
)

L2, L3, L4, L5, L6, L7 = (math.log2(x) for x in (2, 3, 4, 5, 6, 7))

# User 0: 3 targets at ranks 0, 3, 7 among 10 candidates.
# User 1: 1 target at rank 2 among 4 candidates.
# User 2: 2 targets at ranks 1, 4 (given out of order) among 6 candidates.
RANKS = torch.tensor([[0, 3, 7], [2, -1, -1], [4, 1, -1]])
CANDS = torch.tensor([10, 4, 6])


def close(got: np.ndarray, want: list[float]) -> None:
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, np.array(want, dtype=np.float64), rtol=0, atol=1e-12)


def test_recall() -> None:
    # @5: u0 hits {0,3} of 3 -> 2/3; u1 hit {2} of 1 -> 1; u2 hits {1,4} of 2 -> 1
    close(recall_at_k(RANKS, 5), [2 / 3, 1.0, 1.0])
    # @2: u0 {0} -> 1/3; u1 rank 2 is not < 2 -> 0; u2 {1} -> 1/2
    close(recall_at_k(RANKS, 2), [1 / 3, 0.0, 0.5])


def test_precision_divides_by_k_even_beyond_candidates() -> None:
    # @5: hits 2, 1, 2 -> 2/5, 1/5, 2/5
    close(precision_at_k(RANKS, 5), [0.4, 0.2, 0.4])
    # @20 > 4 candidates of u1: still hits / k = 1/20
    close(precision_at_k(RANKS, 20), [3 / 20, 1 / 20, 2 / 20])


def test_hit_rate() -> None:
    # @1: only u0 has a target at rank 0
    close(hit_rate_at_k(RANKS, 1), [1.0, 0.0, 0.0])
    close(hit_rate_at_k(RANKS, 3), [1.0, 1.0, 1.0])


def test_ndcg() -> None:
    # u0 @5: DCG = 1/log2(2) + 1/log2(5); IDCG over min(3,5)=3: 1/log2 2 + 1/log2 3 + 1/log2 4
    u0 = (1 / L2 + 1 / L5) / (1 / L2 + 1 / L3 + 1 / L4)  # = 0.671386...
    # u1 @5: DCG = 1/log2(4); IDCG over 1: 1
    u1 = 1 / L4  # 0.5
    # u2 @5: DCG = 1/log2(3) + 1/log2(6); IDCG over 2: 1 + 1/log2 3
    u2 = (1 / L3 + 1 / L6) / (1 / L2 + 1 / L3)
    close(ndcg_at_k(RANKS, 5), [u0, u1, u2])
    assert abs(u0 - 0.6713860725) < 1e-9
    # u0 @2: DCG = 1; IDCG over min(3, 2) = 2 positions: 1 + 1/log2 3
    close(ndcg_at_k(RANKS[:1], 2), [1 / (1 + 1 / L3)])


def test_ndcg_k_larger_than_everything() -> None:
    # k = 100 with 10 candidates: u0 DCG = 1/log2 2 + 1/log2 5 + 1/log2 9, IDCG over 3 targets
    want = (1 / L2 + 1 / L5 + 1 / math.log2(9)) / (1 / L2 + 1 / L3 + 1 / L4)
    close(ndcg_at_k(RANKS[:1], 100), [want])


def test_mrr_and_mrr_at_k() -> None:
    # first hits: u0 rank 0 -> 1; u1 rank 2 -> 1/3; u2 min(4, 1) = 1 -> 1/2
    close(mrr(RANKS), [1.0, 1 / 3, 0.5])
    # @2: u1's first hit at rank 2 is cut -> 0
    close(mrr(RANKS, 2), [1.0, 0.0, 0.5])


def test_map_denominator_is_min_targets_k() -> None:
    # u0 @5: hits at ranks 0 and 3 -> precisions 1/1 and 2/4; / min(3, 5) = 3 -> 1.5/3 = 0.5
    # u1 @5: hit at rank 2 -> 1/3; / 1
    # u2 @5: sorted ranks 1, 4 -> 1/2 and 2/5; / 2 -> 0.45
    close(map_at_k(RANKS, 5), [0.5, 1 / 3, 0.45])
    # u0 @2: hit at rank 0 -> 1/1; / min(3, 2) = 2 -> 0.5 (ranx / trec_eval would divide by 3)
    close(map_at_k(RANKS[:1], 2), [0.5])


def test_auc_pessimistic() -> None:
    # u0: 7 non-targets. Sorted target ranks 0,3,7 have 0, 3-1=2, 7-2=5 non-targets at or above.
    #     wins = (7-0)+(7-2)+(7-5) = 14 of 3*7 = 21 pairs -> 2/3
    # u1: 3 non-targets, 2 above -> 1/3
    # u2: 4 non-targets; sorted 1, 4 -> 1 and 4-1 = 3 above -> wins 3 + 1 = 4 of 8 -> 1/2
    close(auc(RANKS, CANDS), [2 / 3, 1 / 3, 0.5])
    # no non-target candidate: undefined
    assert math.isnan(float(auc(torch.tensor([[0, 1]]), torch.tensor([2]))[0]))


def test_users_without_targets_give_nan() -> None:
    empty = torch.tensor([[-1, -1]])
    for name in ["recall@5", "precision@5", "hit_rate@5", "ndcg@5", "mrr", "map@5", "auc"]:
        assert math.isnan(float(compute_metric(name, empty, torch.tensor([5]))[0])), name


# --------------------------------------------------------------------------------- tie rule


def test_all_scores_equal_ranks_targets_last() -> None:
    # 10 items, all scores 0, targets 2 and 5: the 8 non-targets win the ties, then targets in order
    scores = torch.zeros(1, 10)
    ranks, cands = pessimistic_ranks(scores, torch.tensor([[2, 5]]))
    assert ranks.tolist() == [[8, 9]] and cands.tolist() == [10]
    assert recall_at_k(ranks, 8)[0] == 0.0
    # ndcg@10 = (1/log2 10 + 1/log2 11) / (1 + 1/log2 3)
    want = (1 / math.log2(10) + 1 / math.log2(11)) / (1 + 1 / L3)
    close(ndcg_at_k(ranks, 10), [want])
    close(auc(ranks, cands), [0.0])  # every pair is a tie, a tie is a loss


def test_partial_ties_and_excluded_items() -> None:
    # scores:  item 0: 5, 1: 3 (target), 2: 3, 3: 3 (target), 4: 9 (excluded), 5: 1
    scores = torch.tensor([[5.0, 3.0, 3.0, 3.0, 9.0, 1.0]])
    cand = torch.tensor([[True, True, True, True, False, True]])
    ranks, cands = pessimistic_ranks(scores, torch.tensor([[1, 3]]), cand)
    # target 1: item 0 higher (1) + non-target item 2 equal (1) = 2; item 4 is not a candidate
    # target 3: 1 + 1 + earlier equal target 1 (1) = 3
    assert ranks.tolist() == [[2, 3]] and cands.tolist() == [5]
    # AUC: 3 non-targets (0, 2, 5); each target beats only item 5 -> 2 / 6
    close(auc(ranks, cands), [1 / 3])


def test_excluded_target_is_an_error() -> None:
    with pytest.raises(ConfigError, match="masked out"):
        pessimistic_ranks(torch.zeros(1, 3), torch.tensor([[1]]), torch.tensor([[True, False, True]]))


# --------------------------------------------------------------------------------- names


def test_parse_names() -> None:
    assert parse_metric("NDCG@10") == MetricSpec("ndcg", 10)
    assert parse_metric("hitrate@5") == MetricSpec("hit_rate", 5)
    assert parse_metric("mrr") == MetricSpec("mrr", None)
    assert parse_metric("mrr@3").name == "mrr@3"
    assert parse_metric("auc").name == "auc"
    with pytest.raises(ConfigError, match="choose one of"):
        parse_metric("f1@10")
    with pytest.raises(ConfigError, match="needs a cut-off"):
        parse_metric("recall")
    with pytest.raises(ConfigError, match="takes no cut-off"):
        parse_metric("auc@10")
    with pytest.raises(ConfigError, match="positive"):
        parse_metric("ndcg@0")


def test_expand_names() -> None:
    got = [s.name for s in expand_metric_names(["recall", "mrr", "ndcg@5", "auc", "recall@10"], [10, 20])]
    assert got == ["recall@10", "recall@20", "mrr", "ndcg@5", "auc"]
    with pytest.raises(ConfigError):
        expand_metric_names(["recall"], [])


def test_registry_lists_every_metric() -> None:
    assert METRICS.names() == ["auc", "hit_rate", "map", "mrr", "ndcg", "precision", "recall"]


# --------------------------------------------------------------------------------- accumulator


def test_accumulator_keeps_per_user_values_and_skips_empty_users() -> None:
    acc = RankingMetrics(["recall", "auc"], ks=[5])
    acc.update(RANKS[:2], CANDS[:2], users=[10, 11])
    acc.update(torch.cat([RANKS[2:], torch.tensor([[-1, -1, -1]])]), torch.tensor([6, 3]), users=[12, 13])
    assert acc.num_skipped == 1 and acc.num_users == 3
    assert acc.users.tolist() == [10, 11, 12]
    per = acc.per_user()
    np.testing.assert_allclose(per["recall@5"], [2 / 3, 1.0, 1.0])
    np.testing.assert_allclose(per["auc"], [2 / 3, 1 / 3, 0.5])
    out = acc.compute()
    assert out["recall@5"] == pytest.approx((2 / 3 + 1 + 1) / 3, abs=1e-12)
    assert out["auc"] == pytest.approx((2 / 3 + 1 / 3 + 0.5) / 3, abs=1e-12)
    acc.reset()
    assert acc.num_users == 0 and acc.num_skipped == 0 and math.isnan(acc.compute()["recall@5"])


def test_accumulator_auc_mean_leaves_out_undefined_users() -> None:
    acc = RankingMetrics(["auc"])
    acc.update(torch.tensor([[0, -1], [0, 1]]), torch.tensor([3, 2]))  # user 1 has no negative
    # user 0: 2 negatives, none above -> AUC 1; user 1 undefined -> mean 1
    assert acc.compute()["auc"] == 1.0
    with pytest.raises(ConfigError, match="num_candidates"):
        acc.update(torch.tensor([[0]]))
