"""The rating task through the API: training, lower-is-better selection, per-rating errors, recommend,
explain (printed weights and highlighted HTML), and its one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec import api
from fusionrec.errors import ConfigError, DataError, FusionrecError
from fusionrec.tasks.rating import RatingTask, RatingTaskConfig
from fusionrec.training.config import TrainConfig
from fusionrec.training.record import load_per_user

SMALL = [
    "data.options.num_users=60",
    "data.options.num_items=40",
    "data.options.num_reviews=800",
    "train.batch_size=64",
    "train.num_threads=1",
]
TINY_NRPA = ["model.word_dim=8", "model.num_filters=8", "model.max_reviews=5", "model.max_words=16", "train.lr=0.01"]


@pytest.fixture(scope="module")
def nrpa_run(tmp_path_factory):
    return api.train(
        "nrpa",
        "synthetic-reviews",
        overrides=[*SMALL, *TINY_NRPA, "train.epochs=4"],
        run_dir=tmp_path_factory.mktemp("rating") / "nrpa",
        progress=False,
    )


def test_trains_selects_on_lowest_valid_mse_and_saves_per_rating_errors(nrpa_run):
    record = nrpa_run.record
    assert record["task"] == "rating" and record["evaluation"]["selection"] == "best epoch by valid mse"
    valid = [h["valid"]["mse"] for h in record["history"]]
    assert record["best_epoch"] == int(np.argmin(valid)) + 1
    test = record["metrics"]["test"]
    assert set(test) == {"mse", "rmse", "mae"} and test["rmse"] == pytest.approx(np.sqrt(test["mse"]))
    assert record["evaluation"]["test_unit"] == "rating"
    saved = load_per_user(nrpa_run.run_dir)
    test_rows = np.flatnonzero(nrpa_run.dataset.interactions["split"].to_numpy() == 2)
    np.testing.assert_array_equal(saved["users"], test_rows)  # keyed by test-row id
    assert saved["mse"].mean() == pytest.approx(test["mse"]) and saved["mae"].mean() == pytest.approx(test["mae"])
    assert "training reviews" in record["evaluation"]["protocol"]


def test_recommend_ranks_unrated_items_by_predicted_rating(nrpa_run):
    ds = nrpa_run.dataset
    user = str(ds.user_ids[0])
    recs = api.recommend(nrpa_run.run_dir, user, k=5, with_reasons=True)
    rated = set(ds.item_ids[ds.matrix("train", "valid", "test")[0].indices].astype(str))
    assert len(recs) == 5 and not rated & {r["item"] for r in recs}
    scores = [r["score"] for r in recs]
    assert scores == sorted(scores, reverse=True) and all(1.0 <= s <= 5.0 for s in scores)
    assert all(r["reason"] and "in a review of this item" in r["reason"][0] for r in recs)  # NRPA's strongest word
    run = api.load_run(nrpa_run.run_dir)
    unrated = np.setdiff1d(np.arange(ds.num_items), ds.matrix("train", "valid", "test")[0].indices)
    predicted = run.task.predict(run.model, np.zeros(len(unrated), dtype=np.int64), unrated)
    assert scores[0] == pytest.approx(predicted.max())


def test_explain_gives_top_reviews_and_words_and_a_highlighted_page(nrpa_run, tmp_path):
    ds = nrpa_run.dataset
    train = ds.split_frame("train")
    user, item = str(ds.user_ids[train["user"].iloc[0]]), str(ds.item_ids[train["item"].iloc[1]])
    explained = api.explain(nrpa_run.run_dir, user, item, tmp_path)
    tables = explained.weights
    assert {"the user's reviews", "the item's reviews", "words of the user's top review"} <= set(tables)
    for name in ("the user's reviews", "words of the user's top review"):
        assert sum(tables[name].values()) == pytest.approx(1.0, abs=1e-5)
    page = open(explained.details["html"], encoding="utf-8").read()
    top_word = next(iter(tables["words of the user's top review"]))
    assert top_word in page and "background:rgba" in page
    assert explained.images == [explained.details["html"]]  # listed with the heat maps (CLI, serving)


def test_a_model_without_attention_says_so(tmp_path):
    run = api.train(
        "biased_mf", "synthetic-reviews", overrides=[*SMALL, "train.epochs=2"], run_dir=tmp_path / "mf", progress=False
    )
    user, item = str(run.dataset.user_ids[0]), str(run.dataset.item_ids[0])
    with pytest.raises(FusionrecError, match="no attention over reviews"):
        api.explain(run.run_dir, user, item)
    with pytest.raises(ConfigError, match="pass an item"):
        api.explain(run.run_dir, user)


def test_ratings_outside_the_declared_scale_are_refused_in_one_line(make_frame):
    dataset = make_frame([1.0, 5.0, 7.0, 3.0, 2.0, 4.0], ["a b"] * 6, [0, 0, 0, 1, 2, 0])
    with pytest.raises(DataError, match=r"rating 7 of user 2, item 0 is outside the declared scale \[1, 5\]") as err:
        RatingTask.build(RatingTaskConfig(), TrainConfig(), dataset, None)
    assert "\n" not in str(err.value)
    RatingTask.build(RatingTaskConfig(rating_scale=(0, 10)), TrainConfig(), dataset, None)  # declared wider: fine


def test_its_section_and_metrics_are_strict():
    with pytest.raises(ConfigError, match="unknown key 'task.ks'"):
        api.resolve_config("nrpa", "synthetic-reviews", overrides=["task.ks=[5]"])
    with pytest.raises(ConfigError, match="the rating task reports mse, rmse, mae"):
        api.resolve_config("nrpa", "synthetic-reviews", overrides=["train.metric=ndcg@20"])
    with pytest.raises(ConfigError, match="word_dim=384"):
        api.resolve_config("nrpa", "synthetic-reviews", overrides=["model.word_vectors=minilm"])


def test_the_cli_refuses_a_rating_outside_the_scale_in_one_line_writing_nothing(tmp_path):
    import os
    import subprocess
    import sys

    rows = "".join(
        f'{{"reviewerID": "U{u}", "asin": "I{i}", "overall": {1 + (u + i) % 5}.0, "reviewText": "ok"}}\n'
        for u in range(6)
        for i in range(6)
    )
    path = tmp_path / "reviews.json"
    path.write_text('{"reviewerID": "U9", "asin": "I1", "overall": 9.0, "reviewText": "x"}\n' + rows)
    env = {**os.environ, "FUSIONREC_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    run_dir = tmp_path / "run"
    args = ["train", "-m", "global_mean", "-d", str(path), "--run-dir", str(run_dir)]
    proc = subprocess.run([sys.executable, "-m", "fusionrec.cli.main", *args], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "rating 9 of user U9, item I1 is outside the declared scale [1, 5]" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not run_dir.exists()
