"""The top-K task's cold-start protocol: with ``candidates="unseen"`` only items absent from
training are ranked, negatives never include them, and the result equals a hand-built restriction."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fusionrec.data import load_dataset
from fusionrec.errors import ConfigError
from fusionrec.metrics.full_ranking import evaluate_full_ranking
from fusionrec.tasks.topk import TopKTask


@pytest.fixture(scope="module")
def cold_dataset(cold_item_dataset):
    return cold_item_dataset


class FixedScores(torch.nn.Module):
    """A 'model' with a fixed random score matrix; records the items it was asked to score."""

    def __init__(self, num_users, num_items):
        super().__init__()
        self.table = torch.randn(num_users, num_items, generator=torch.Generator().manual_seed(0))
        self.asked: list[torch.Tensor] = []

    def scorer(self):
        def score(users, items):
            self.asked.append(items)
            return self.table[users] if items is None else self.table[users][:, items]

        return score


def test_unseen_candidates_rank_only_cold_items_and_match_a_manual_restriction(cold_dataset):
    ds = cold_dataset
    task = TopKTask(ds, candidates="unseen", ks=(5, 10), metrics=("ndcg", "recall"))
    train = ds.matrix("train")
    cold = np.flatnonzero(np.asarray(train.sum(axis=0)).ravel() == 0)
    assert np.array_equal(task.candidate_items, cold) and len(cold) > 10
    model = FixedScores(ds.num_users, ds.num_items)
    result = task.evaluate(model, "test")
    assert all(items is not None and set(items.tolist()) <= set(cold.tolist()) for items in model.asked)
    # The same numbers from the full ranking with every warm item excluded by hand.
    warm = np.setdiff1d(np.arange(ds.num_items), cold)
    exclude = sp.csr_matrix(ds.matrix("train", "valid"))
    exclude = exclude + sp.csr_matrix(
        (
            np.ones(ds.num_users * len(warm)),
            (np.repeat(np.arange(ds.num_users), len(warm)), np.tile(warm, ds.num_users)),
        ),
        shape=exclude.shape,
    )
    expected = evaluate_full_ranking(
        lambda u, i: model.table[u] if i is None else model.table[u][:, i],
        ds.matrix("test"),
        exclude,
        ks=(5, 10),
        metrics=("ndcg", "recall"),
    )
    for name, value in expected.metrics.items():
        assert result.metrics[name] == pytest.approx(value, abs=1e-9)
    assert "absent from training" in task.protocol


def test_cold_items_are_never_training_negatives(cold_dataset):
    task = TopKTask(cold_dataset, batch_size=256, num_negatives=4)
    cold = set(np.flatnonzero(np.asarray(cold_dataset.matrix("train").sum(axis=0)).ravel() == 0).tolist())
    drawn = torch.cat([b.neg_items.reshape(-1) for b in task.train_batches(1)]).tolist()
    assert not cold & set(drawn)


def test_unseen_candidates_on_a_warm_split_is_a_clear_error():
    ds = load_dataset("synthetic", options={"num_users": 60, "num_items": 30, "num_interactions": 1200, "seed": 2})
    with pytest.raises(ConfigError, match="cold_item"):
        TopKTask(ds, candidates="unseen")


def test_valid_users_validates_on_a_fixed_sample_and_tests_on_everyone(tmp_path):
    from fusionrec.api import evaluate, train

    tiny = [
        "data.options.num_users=120",
        "data.options.num_items=60",
        "data.options.num_interactions=2400",
        "model.embedding_dim=8",
        "train.epochs=2",
    ]
    full = train("bpr", "synthetic", overrides=tiny, run_dir=tmp_path / "full", progress=False)
    sampled = train(
        "bpr", "synthetic", overrides=[*tiny, "task.valid_users=30"], run_dir=tmp_path / "s", progress=False, test=False
    )
    assert [h["valid_users"] for h in sampled.record["history"]] == [30, 30]
    assert full.record["history"][0]["valid_users"] > 100
    # same weights (validation does not touch training), so the test read later equals the full run's
    assert [h["loss"] for h in sampled.record["history"]] == [h["loss"] for h in full.record["history"]]
    assert sampled.record["metrics"]["test"] is None and "not read" in sampled.record["evaluation"]["test"]
    assert not (sampled.run_dir / "test_per_user.npz").exists()
    task = TopKTask(sampled.dataset, valid_users=30, seed=5)
    assert np.array_equal(task.evaluate(sampled.model, "valid").users, task.evaluate(sampled.model, "valid").users)
    test = task.evaluate(sampled.model, "test")
    assert test.num_users_evaluated == full.record["evaluation"]["test_users"]
    later = evaluate(sampled.run_dir, "test")  # the test read, later, from best.pt
    assert {k: later[k] for k in test.metrics} == pytest.approx(test.metrics)


def test_recommend_under_unseen_candidates_recommends_only_new_items(cold_dataset):
    ds = cold_dataset
    model = FixedScores(ds.num_users, ds.num_items)
    cold = TopKTask(ds, candidates="unseen")
    seen = set(ds.matrix("train", "valid", "test")[7].indices.tolist())
    recs = cold.recommend(model, 7, 5)
    allowed = set(cold.candidate_items.tolist()) - seen
    order = sorted(allowed, key=lambda i: (-float(model.table[7, i]), i))[:5]
    assert [r.item for r in recs] == order  # the best new items the user has not interacted with
    warm = TopKTask(ds).recommend(model, 7, 5)
    assert not set(r.item for r in warm) <= set(cold.candidate_items.tolist())  # all items compete otherwise


def test_the_default_batch_keeps_enough_updates_per_epoch_on_small_data(cold_dataset):
    from fusionrec.tasks.topk import TopKTaskConfig
    from fusionrec.training.config import TrainConfig

    assert TopKTask.default_batch_for(80_000) == 2048  # ml-100k: unchanged
    assert TopKTask.default_batch_for(1_200) == 64 and TopKTask.default_batch_for(100) == 64
    assert TopKTask.default_batch_for(20_000) == 625  # 32 updates
    pairs = int(cold_dataset.matrix("train").nnz)
    task = TopKTask.build(TopKTaskConfig(), TrainConfig(), cold_dataset)
    assert task.batch_size == TopKTask.default_batch_for(pairs) and task.num_batches >= 32
    assert TopKTask.build(TopKTaskConfig(), TrainConfig(batch_size=2048), cold_dataset).batch_size == 2048
