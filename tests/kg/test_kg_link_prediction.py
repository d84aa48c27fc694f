"""The filtered link-prediction evaluator: realistic ranks against a brute-force loop and hand-made ties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusionrec.errors import FusionrecError
from fusionrec.metrics.link_prediction import (
    KnownAnswers,
    filtered_ranks,
    per_triple_metrics,
    rank_metrics,
    realistic,
    tie_ranks,
)


def brute_force_rank(scores: np.ndarray, target: int, filtered: set[int]) -> float:
    """Realistic rank by counting, one candidate at a time."""
    better = ties = 0
    for entity, value in enumerate(scores):
        if entity == target or entity in filtered:
            continue
        better += value > scores[target]
        ties += value == scores[target]
    return better + ties / 2 + 1


def test_hand_made_ties():
    scores = torch.tensor([[0.5, 0.5, 0.5, 0.9, 0.1]])
    optimistic, pessimistic = tie_ranks(scores, torch.tensor([0]))
    assert optimistic.item() == 2  # only 0.9 is strictly above
    assert pessimistic.item() == 4  # the two tied entities could both come first
    assert realistic(optimistic.numpy(), pessimistic.numpy())[0] == 3


def test_constant_scores_give_the_middle_rank_not_the_first():
    num_entities = 11
    known = KnownAnswers.build(np.array([0]), np.array([0]), np.array([3]), 2)
    opt, pes = filtered_ranks(
        lambda e, r: torch.zeros(len(e), num_entities),
        np.array([0]),
        np.array([0]),
        np.array([3]),
        known,
        num_entities=num_entities,
    )
    assert realistic(opt, pes)[0] == (num_entities + 1) / 2


def test_filtered_realistic_ranks_match_a_brute_force_loop():
    rng = np.random.default_rng(0)
    num_entities, num_relations, num_queries = 30, 4, 50
    table = np.round(rng.standard_normal((num_entities * num_relations, num_entities)), 1)  # rounding makes ties
    entities = rng.integers(0, num_entities, num_queries)
    relations = rng.integers(0, num_relations, num_queries)
    targets = rng.integers(0, num_entities, num_queries)
    extra = rng.integers(0, num_queries, 80)  # other true answers of some queries
    known = KnownAnswers.build(
        np.concatenate([entities, entities[extra]]),
        np.concatenate([relations, relations[extra]]),
        np.concatenate([targets, rng.integers(0, num_entities, 80)]),
        num_relations,
    )

    def scorer(e, r):
        return torch.as_tensor(table[e.numpy() * num_relations + r.numpy()], dtype=torch.float32)

    for budget in (num_entities, 7 * num_entities, 10**6):  # batch sizes 1, 7, all: same ranks
        opt, pes = filtered_ranks(
            scorer, entities, relations, targets, known, num_entities=num_entities, score_budget=budget
        )
        got = realistic(opt, pes)
        for i in range(num_queries):
            filtered = {
                int(t)
                for e, r, t in zip(known.query_ids // num_relations, known.query_ids % num_relations, known.answers)
                if e == entities[i] and r == relations[i]
            }
            scores = table[entities[i] * num_relations + relations[i]].astype(np.float32)
            assert got[i] == brute_force_rank(scores, int(targets[i]), filtered - {int(targets[i])}), i


def test_the_filter_removes_other_true_answers_only():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6]])
    known = KnownAnswers.build(np.array([0, 0]), np.array([0, 0]), np.array([2, 0]), 1)  # answers 0 and 2
    opt, pes = filtered_ranks(
        lambda e, r: scores.clone(), np.array([0]), np.array([0]), np.array([2]), known, num_entities=4
    )
    assert opt[0] == pes[0] == 2  # entity 0 is filtered (another true answer), entity 1 still beats 2
    unfiltered = KnownAnswers.build(np.array([0]), np.array([0]), np.array([2]), 1)
    opt, _ = filtered_ranks(
        lambda e, r: scores.clone(), np.array([0]), np.array([0]), np.array([2]), unfiltered, num_entities=4
    )
    assert opt[0] == 3


def test_known_answer_lookup_is_per_query():
    known = KnownAnswers.build(np.array([1, 1, 2, 0]), np.array([0, 0, 1, 1]), np.array([5, 6, 7, 8]), 2)
    rows, answers = known.lookup(np.array([2, 1, 3]), np.array([1, 0, 0]))
    assert sorted(zip(rows.tolist(), answers.tolist())) == [(0, 7), (1, 5), (1, 6)]


def test_metrics_of_known_ranks():
    ranks = np.array([1.0, 2.0, 4.0, 10.5])
    metrics = rank_metrics(ranks, (1, 3, 10))
    assert metrics["mrr"] == pytest.approx((1 + 0.5 + 0.25 + 1 / 10.5) / 4)
    assert metrics["mr"] == pytest.approx(17.5 / 4)
    assert (metrics["hits@1"], metrics["hits@3"], metrics["hits@10"]) == (0.25, 0.5, 0.75)
    per = per_triple_metrics(ranks[:2], ranks[2:])
    assert per["mrr"].mean() == pytest.approx(metrics["mrr"])


def test_nan_scores_are_refused():
    known = KnownAnswers.build(np.array([0]), np.array([0]), np.array([1]), 1)
    with pytest.raises(FusionrecError, match="NaN"):
        filtered_ranks(
            lambda e, r: torch.full((1, 3), float("nan")),
            np.array([0]),
            np.array([0]),
            np.array([1]),
            known,
            num_entities=3,
        )
