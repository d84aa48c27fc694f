"""The kg task: batches, protocol, selection, leakage rules, recommend and explain through the API."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from family_modules import family as load_family

from fusionrec import api
from fusionrec.errors import ConfigError, DataError
from fusionrec.registry import MODELS
from fusionrec.tasks.kg.task import KGTask, KGTaskConfig
from fusionrec.training.record import load_per_user

family = load_family("kg")

TINY_RUN = [f"data.options.{k}={v}" for k, v in family.OPTIONS.items()] + [
    "train.epochs=3",
    "train.batch_size=64",
    "train.lr=0.01",
    "task.num_negatives=4",
]


def task_for(name="transe", **section):
    config = MODELS.entry(name).config(name=name, **family.TINY[name])
    return family.tiny_task(name, config, **section)


def triples(task, rows):
    return set(zip(task.heads[rows].tolist(), task.rels[rows].tolist(), task.tails[rows].tolist()))


def batch_triples(task, epoch=1):
    """The (h, r, t) each training query of an epoch asks about."""
    R, seen = task.num_relations, []
    for batch in task.train_batches(epoch):
        for e, r, a in zip(batch.entities.tolist(), batch.relations.tolist(), batch.targets.tolist()):
            seen.append((a, r - R, e) if r >= R else (e, r, a))
    return seen


def test_training_queries_come_from_training_triples_only_both_ways():
    _, task = task_for()
    seen = batch_triples(task)
    counts = Counter(seen)
    assert set(counts) == triples(task, task.train_rows)  # no valid or test triple reaches training
    assert set(counts.values()) == {2}  # each asked for its head and for its tail
    assert len(seen) == len(task.train_rows) * 2 and task.num_batches == -(-len(seen) // 32)


def test_random_direction_asks_each_training_triple_once():
    _, task = task_for(directions="random")
    assert Counter(batch_triples(task)) == Counter(triples(task, task.train_rows))


def test_batches_depend_on_seed_and_epoch_only_and_negatives_on_the_model():
    _, task = task_for()
    first, again = next(iter(task.train_batches(3))), next(iter(task.train_batches(3)))
    assert torch.equal(first.entities, again.entities) and torch.equal(first.negatives, again.negatives)
    assert not torch.equal(first.entities, next(iter(task.train_batches(4))).entities)
    assert first.negatives.shape == (32, 4) and int(first.negatives.max()) < task.num_entities
    _, one_to_n = task_for("mkgformer")
    assert next(iter(one_to_n.train_batches(1))).negatives is None and "1-N" in one_to_n.protocol


def test_the_filter_reads_every_split_and_recommend_only_training():
    dataset, task = task_for()
    test_rows = task.split_rows("test")
    h, r, t = (int(a[test_rows[0]]) for a in (task.heads, task.rels, task.tails))
    _, filtered = task.known.lookup(np.array([h]), np.array([r]))
    _, from_training = task.train_known.lookup(np.array([h]), np.array([r]))
    assert t in filtered.tolist() and t not in from_training.tolist()

    class Oracle(torch.nn.Module):  # scores the held-out answer first
        def score_queries(self, entities, relations):
            scores = torch.zeros(len(entities), task.num_entities)
            scores[:, t] = 1.0
            return scores

    query = h * 2 * task.num_relations + r
    assert task.recommend(Oracle(), query, 3)[0].item == t  # a held-out answer is not excluded


def test_protocol_metrics_and_direction():
    _, task = task_for()
    assert "filter: train+valid+test" in task.protocol and "realistic rank" in task.protocol
    config = KGTaskConfig()
    assert KGTask.reported_metrics(config, "mrr") == ["mrr", "mr", "hits@1", "hits@3", "hits@10"]
    assert task.higher_is_better("mrr") and not task.higher_is_better("mr")
    with pytest.raises(ConfigError, match="the kg task reports mrr, mr, hits@1"):
        KGTask.check_metric(config, "ndcg@20")


def test_an_interaction_data_set_is_refused(tiny_dataset):
    with pytest.raises(DataError, match="the kg task needs split triples"):
        KGTask.check_data(tiny_dataset)


def test_evaluation_is_per_triple_and_independent_of_the_block_size():
    _, task = task_for("distmult")
    model = MODELS.get("distmult").from_dataset(MODELS.entry("distmult").config(name="distmult", dim=8), task.dataset)
    small = KGTask(task.dataset, KGTaskConfig(score_budget=60), 32, 0, "mrr")
    a, b = task.evaluate(model, "valid"), small.evaluate(model, "valid")
    assert a.metrics == pytest.approx(b.metrics)
    assert a.unit == "triple" and list(a.users) == list(task.split_rows("valid"))
    assert a.per_user["mrr"].mean() == pytest.approx(a.metrics["mrr"])


@pytest.mark.parametrize("world_size", [2, 3])
def test_data_parallel_parts_joined_equal_the_whole_evaluation(world_size):
    from fusionrec.metrics.full_ranking import merge_results

    _, task = task_for("distmult")
    model = MODELS.get("distmult").from_dataset(MODELS.entry("distmult").config(name="distmult", dim=8), task.dataset)
    whole = task.evaluate(model, "test")
    parts = [task.evaluate(model, "test", shard=(rank, world_size)) for rank in range(world_size)]
    assert sum(len(p.users) for p in parts) == len(whole.users) and not set(parts[0].users) & set(parts[1].users)
    joined = merge_results(parts)
    assert joined.metrics == pytest.approx(whole.metrics, rel=1e-9)
    assert set(joined.metrics) == set(whole.metrics)  # head_mrr and tail_mrr too
    np.testing.assert_array_equal(joined.users, whole.users)
    assert (joined.num_users_evaluated, joined.num_users_skipped) == (len(whole.users), 0)


def test_train_selects_on_valid_reads_test_once_and_saves_per_triple_values(tmp_path, monkeypatch):
    calls = Counter()
    original = KGTask.evaluate

    def counting(self, model, split="valid", device="cpu"):
        calls[split] += 1
        return original(self, model, split, device)

    monkeypatch.setattr(KGTask, "evaluate", counting)
    run = api.train(
        "rotate", "synthetic-kg", overrides=[*TINY_RUN, "model.dim=8"], run_dir=tmp_path / "run", progress=False
    )
    assert calls == {"valid": 3, "test": 1}
    assert run.record["evaluation"]["test_unit"] == "triple"
    saved = load_per_user(tmp_path / "run")
    assert len(saved["users"]) == run.dataset.kg_split_sizes()["test"]
    assert saved["mrr"].mean() == pytest.approx(run.test_metrics["mrr"])


def test_recommend_and_explain_take_queries(tmp_path):
    run_dir = tmp_path / "mkg"
    api.train(
        "mkgformer",
        "synthetic-kg",
        overrides=[*TINY_RUN, "model.dim=8", "train.epochs=1"],
        run_dir=run_dir,
        progress=False,
    )
    tails = api.recommend(run_dir, "e1 r0", k=3)
    assert len(tails) == 3 and tails[0]["title"].startswith("e")
    heads = api.recommend(run_dir, "e1 r0^-1", k=3)
    assert [r["item"] for r in heads] != [r["item"] for r in tails]
    explanation = api.explain(run_dir, "e1 r0", "e2")
    assert explanation.subject.startswith("(e1, r0, ?) -> e2")
    grid = explanation.grids["text-to-visual correlation, fusion layer 1"]
    assert grid.rows[:2] == ["[MASK]", "r0"] and grid.columns == ["patch 1", "patch 2", "patch 3"]
    assert "top answers" in explanation.weights
    for bad, message in (("e1", "a kg query is"), ("zz r0", "unknown entity 'zz'"), ("e1 r9", "unknown relation 'r9'")):
        with pytest.raises(ConfigError, match=message):
            api.recommend(run_dir, bad)
