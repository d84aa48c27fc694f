"""The news task: npratio batches, history truncation and masking, the time-ordered split and its
leakage rules, the vocabulary from training news only, and a run through the API (recommend, explain)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from news_helpers import family

from fusionrec import api
from fusionrec.data.readers.mind import build_news_dataset, count_history_leaks
from fusionrec.errors import ConfigError, DataError
from fusionrec.registry import MODELS
from fusionrec.tasks.news.task import NewsTask, NewsTaskConfig, tokenize

TINY_RUN = [f"data.options.{k}={v}" for k, v in family.OPTIONS.items()] + [
    "train.epochs=2",
    "train.batch_size=64",
    "task.npratio=3",
    "task.max_history=6",
]


def task_for(name="nrms", **section):
    config = MODELS.entry(name).config(name=name, **family.TINY[name])
    return family.tiny_task(name, config, **section)


def test_training_samples_are_one_click_and_k_distinct_non_clicks_of_a_training_impression():
    dataset, task = task_for()
    table = dataset.tables["impressions"]
    train = table[table["split"] == 0]
    shown = {(int(r.user), int(c), int(lab)) for r in train.itertuples() for c, lab in zip(r.candidates, r.labels)}
    count = 0
    for batch in task.train_batches(1):
        assert batch.candidates.shape[1] == 1 + task.config.npratio
        for users, cands, mask, labels in zip(batch.users, batch.candidates, batch.candidate_mask, batch.labels):
            u = int(users)
            assert labels.tolist() == [1.0] + [0.0] * task.config.npratio
            assert (u, int(cands[0]), 1) in shown
            negatives = cands[1:][mask[1:]].tolist()
            assert all((u, n, 0) in shown for n in negatives)
            count += 1
    with_non_click = [lab for lab in train["labels"] if 0 < np.sum(lab) < len(lab)]  # others give no sample
    assert count == len(task.sample_row) == int(sum(np.sum(lab) for lab in with_non_click))


def test_samples_come_from_their_own_impression_and_history_is_latest_masked():
    dataset, task = task_for(max_history=3)
    table = dataset.tables["impressions"]
    batch = next(iter(task.train_batches(1)))
    order = np.random.default_rng([0, 1]).permutation(len(task.sample_row))[: len(batch.users)]
    for i, row in enumerate(task.sample_row[order]):
        impression = table.iloc[row]
        assert int(batch.candidates[i, 0]) in set(impression["candidates"][impression["labels"] > 0])
        non_clicked = set(impression["candidates"][impression["labels"] == 0])
        assert set(batch.candidates[i, 1:][batch.candidate_mask[i, 1:]].tolist()) <= non_clicked
        latest = list(impression["history"])[-3:]
        assert batch.history[i][batch.history_mask[i]].tolist() == latest
        assert (batch.history[i][~batch.history_mask[i]] == dataset.num_items).all()


def test_split_is_time_ordered_and_histories_never_look_ahead():
    dataset, _ = task_for()
    table = dataset.tables["impressions"]
    times = {s: table.loc[table["split"] == s, "time"] for s in (0, 1, 2)}
    assert times[0].max() <= times[1].min() and times[1].max() <= times[2].min()
    assert dataset.meta["history_leaks"] == 0 == count_history_leaks(table)


def _log(history_of_second):
    behaviors = {
        "impression": ["1", "2", "3"],
        "user": ["u", "u", "v"],
        "time": [10, 20, 30],
        "history": [["a"], history_of_second, []],
        "candidates": [["b", "c"], ["d", "e"], ["a", "c"]],
        "labels": [[1, 0], [1, 0], [1, 0]],
        "split": ["train", "valid", "test"],
    }
    news = {"item": list("abcde"), "title": ["alpha", "bravo", "charlie", "delta", "echo"]}
    import pandas as pd

    return build_news_dataset("log", pd.DataFrame(behaviors), pd.DataFrame(news))


def test_a_history_holding_a_later_click_is_counted_and_refused():
    assert _log(["a", "b"]).meta["history_leaks"] == 0  # a: pre-period, b: clicked at time 10 < 20
    leaky = _log(["a", "d"])  # d is clicked in this very impression (time 20)
    assert leaky.meta["history_leaks"] == 1
    with pytest.raises(DataError, match="history entries are clicks made at the impression's time or later"):
        NewsTask.check_data(leaky)


def test_vocabulary_comes_from_news_shown_in_training():
    dataset = _log(["a", "b"])
    from fusionrec.training.config import TrainConfig

    task = NewsTask.build(NewsTaskConfig(title_length=4), TrainConfig(batch_size=4), dataset)
    assert set(task.text.vocab) == {"<pad>", "<unk>", "alpha", "bravo", "charlie"}  # news of impression 1 only
    assert task.text.ids[3].tolist() == [1, 0, 0, 0]  # "delta" (valid only) is unknown
    assert tokenize("Hello, World's news!") == ["hello", "world's", "news"]


def test_metric_vocabulary_and_skipped_impressions():
    with pytest.raises(ConfigError, match="the news task reports auc, mrr, ndcg@5, ndcg@10"):
        NewsTask.check_metric(NewsTaskConfig(), "recall@20")
    dataset, task = task_for()
    model = MODELS.get("nrms").from_dataset(MODELS.entry("nrms").config(name="nrms", **family.TINY["nrms"]), dataset)
    result = task.evaluate(model, "valid")
    assert result.unit == "impression" and result.num_users_evaluated == len(task.split_rows("valid")) > 0
    assert set(result.metrics) == {"auc", "mrr", "ndcg@5", "ndcg@10"}
    assert 0.0 <= result.metrics["auc"] <= 1.0


def test_train_recommend_and_explain_through_the_api(tmp_path):
    run = api.train(
        "mm_rec",
        "news-synthetic",
        overrides=[*TINY_RUN, *(f"model.{k}={v}" for k, v in family.TINY["mm_rec"].items())],
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert run.record["task"] == "news" and run.record["evaluation"]["test_unit"] == "impression"
    assert set(run.record["metrics"]["test"]) >= {"auc", "mrr", "ndcg@5", "ndcg@10"}
    recs = run.task.recommend(run.model, 0, 5)
    history = run.task.latest_history(0)
    assert len(recs) == 5 and not {r.item for r in recs} & set(history)
    explanation = run.task.explain(run.model, 0, recs[0].item, tmp_path / "maps")
    assert sum(explanation.weights["clicked history"].values()) == pytest.approx(1.0, abs=1e-5)
    assert sum(explanation.weights["title words"].values()) == pytest.approx(1.0, abs=1e-5)
    assert len(explanation.vectors["image regions"]) == 9 and explanation.images
    assert (tmp_path / "maps").exists() and torch.isfinite(torch.tensor(explanation.score))
