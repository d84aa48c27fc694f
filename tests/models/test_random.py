"""Random scores: uniform in [0, 1), a fixed function of (seed, user, item), chunk-invariant, evaluated once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusionrec.data.batches import UserBatch
from fusionrec.errors import FusionrecError
from fusionrec.metrics.full_ranking import evaluate_full_ranking
from fusionrec.models.topk.random_scores import RandomScores, RandomScoresConfig, mix32, uniform_scores

SMALL = ["data.options.num_users=120", "data.options.num_items=80", "data.options.num_interactions=3000"]


def lowbias32(x: int) -> int:
    """The reference hash in plain Python integers (arbitrary precision: no overflow question)."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def test_vectorised_hash_matches_the_reference_hash():
    xs = [0, 1, 2, 12345, 2**31 - 1, 2**31, 2**31 + 7, 2**32 - 1]
    assert mix32(torch.tensor(xs)).tolist() == [lowbias32(x) for x in xs]


def test_hand_computed_score():
    seed, user, item = 7, 3, 11
    expected = (lowbias32((lowbias32((lowbias32(seed) + user) & 0xFFFFFFFF) + item) & 0xFFFFFFFF) >> 8) / 2**24
    assert uniform_scores(seed, torch.tensor([user]), torch.tensor([item])).item() == expected


def test_scores_are_uniform_in_the_unit_interval():
    scores = uniform_scores(1, torch.arange(500), torch.arange(400))  # 200,000 draws
    assert scores.dtype == torch.float32 and scores.shape == (500, 400)
    assert float(scores.min()) >= 0.0 and float(scores.max()) < 1.0
    counts = np.histogram(scores.numpy(), bins=10, range=(0.0, 1.0))[0]
    assert np.all(np.abs(counts - 20_000) < 5 * np.sqrt(20_000))  # each decile within 5 sigma
    # users are not one shifted copy of each other: rows are (nearly) uncorrelated
    corr = np.corrcoef(scores[:50].numpy())
    assert np.abs(corr[~np.eye(50, dtype=bool)]).max() < 0.25


def test_chunked_scores_equal_unchunked(tiny_dataset):
    model = RandomScores.from_dataset(RandomScoresConfig(seed=5), tiny_dataset)
    users = torch.arange(tiny_dataset.num_users)
    full = model.scorer()(users, None)  # (U, I) at once
    by_users = torch.cat([model.scorer()(chunk, None) for chunk in users.split(7)])
    by_items = torch.cat(
        [model.scorer()(users, chunk) for chunk in torch.arange(tiny_dataset.num_items).split(9)], dim=1
    )
    assert torch.equal(by_users, full) and torch.equal(by_items, full)
    permuted = torch.randperm(tiny_dataset.num_items, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.score(UserBatch(users[[4, 2]], permuted)), full[[4, 2]][:, permuted])


def test_chunked_evaluation_equals_unchunked(tiny_dataset):
    model = RandomScores.from_dataset(RandomScoresConfig(seed=2), tiny_dataset)
    targets, exclude = tiny_dataset.matrix("test"), tiny_dataset.matrix("train", "valid")
    one = evaluate_full_ranking(model.scorer(), targets, exclude, metrics=("recall", "ndcg", "mrr"))
    chunked = evaluate_full_ranking(
        model.scorer(), targets, exclude, metrics=("recall", "ndcg", "mrr"), user_batch_size=13, item_chunk_size=11
    )
    for name, values in one.per_user.items():
        np.testing.assert_array_equal(np.asarray(values), np.asarray(chunked.per_user[name]))


def test_same_seed_same_scores_and_two_seeds_differ(tiny_dataset):
    users = torch.arange(tiny_dataset.num_users)
    a = RandomScores.from_dataset(RandomScoresConfig(seed=1), tiny_dataset).score(UserBatch(users))
    again = RandomScores.from_dataset(RandomScoresConfig(seed=1), tiny_dataset).score(UserBatch(users))
    b = RandomScores.from_dataset(RandomScoresConfig(seed=2), tiny_dataset).score(UserBatch(users))
    assert torch.equal(a, again)
    assert (a != b).float().mean() > 0.99
    assert abs(np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1]) < 0.05
    # the rankings differ too, not only the values
    assert (a.argsort(dim=1) != b.argsort(dim=1)).any(dim=1).all()


def test_scorer_returns_a_fresh_tensor():
    # the evaluator writes -inf into the scores in place; the next call must not see it
    model = RandomScores(num_items=6, seed=3)
    before = model.scorer()(torch.tensor([0, 1]), None)
    model.scorer()(torch.tensor([0, 1]), None).fill_(-float("inf"))
    assert torch.equal(model.scorer()(torch.tensor([0, 1]), None), before)


def test_loss_refuses_clearly():
    model = RandomScores(num_items=4)
    assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(FusionrecError, match="no trainable parameters"):
        model.loss(None)


def test_train_evaluates_once_near_chance_and_reloads_the_same_scores(tmp_path):
    from fusionrec.api import load_run, train

    run = train("random", "synthetic", overrides=[*SMALL, "model.seed=4"], run_dir=tmp_path / "r", progress=False)
    assert run.record["status"] == "closed_form" and len(run.record["history"]) == 1
    assert run.record["history"][0]["train_s"] == 0
    assert 0 <= run.test_metrics["recall@20"] < 0.6  # 20 of ~60 candidates at chance: about 1/3
    users = torch.arange(run.dataset.num_users)
    assert torch.equal(load_run(run.run_dir).model.score(UserBatch(users)), run.model.score(UserBatch(users)))
