"""The task interface is an extension point: the ``toy_click`` family in ``toy_click/`` (a task, its
config section, its batches and metrics, and one model) works through the same API and CLI calls as the
library's own families without a line changed outside its folder."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from fusionrec import api, models, tasks
from fusionrec.errors import ConfigError
from fusionrec.registry import MODELS, TASKS


@pytest.fixture(autouse=True)
def toy_click():
    """The family registers itself on import; it is removed afterwards, so the registry-wide tests of
    the library (the model contract, the meta-tests) never see it, whatever order the tests run in."""
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        package = importlib.import_module("toy_click")
        if "toy_click" not in TASKS:  # imported by an earlier test of this module: register again
            importlib.reload(package.task)
            importlib.reload(package.model)
        yield package
    finally:
        TASKS.unregister("toy_click")
        MODELS.unregister("toy_logistic_mf")
        sys.path.remove(str(Path(__file__).parent))


SMALL = [
    "data.options.num_users=60",
    "data.options.num_items=40",
    "data.options.num_interactions=1500",
    "data.options.seed=3",
    "train.batch_size=128",
    "train.lr=0.05",
]


def test_the_family_registers_from_its_own_folder(toy_click):
    assert "toy_click" in TASKS and MODELS.entry("toy_logistic_mf").meta["task"] == "toy_click"
    assert "toy_click" not in tasks.FAMILIES and "toy_click" not in models.FAMILIES  # nothing in the library names it
    folder = Path(toy_click.__file__).parent
    assert sorted(p.name for p in folder.glob("*.py")) == ["__init__.py", "model.py", "task.py"]


def test_trains_evaluates_recommends_and_explains_through_the_api(tmp_path):
    run = api.train(
        "toy_logistic_mf",
        "synthetic",
        overrides=[*SMALL, "train.epochs=8", "task.negatives=2"],
        run_dir=tmp_path / "run",
        progress=False,
    )
    record = run.record
    assert record["task"] == "toy_click" and record["config"]["task"] == {"negatives": 2}
    assert record["evaluation"]["selection"] == "best epoch by valid auc"
    assert set(record["metrics"]["test"]) == {"auc", "logloss"} and 0.0 <= record["metrics"]["test"]["auc"] <= 1.0
    losses = [h["loss"] for h in record["history"]]
    assert losses[-1] < losses[0]  # it learns
    assert api.evaluate(run.run_dir, "test") == pytest.approx(record["metrics"]["test"])
    user = str(run.dataset.user_ids[0])
    recs = api.recommend(run.run_dir, user, k=4)
    seen = set(run.dataset.item_ids[run.dataset.matrix("train", "valid", "test")[0].indices].astype(str))
    assert len(recs) == 4 and not seen & {r["item"] for r in recs}
    explained = api.explain(run.run_dir, user, recs[0]["item"])
    assert explained.score == pytest.approx(recs[0]["score"], rel=1e-5)
    assert set(explained.weights["logit parts"]) == {"item bias", "user x item"}


def test_a_smaller_is_better_metric_selects_the_minimum(tmp_path):
    run = api.train(
        "toy_logistic_mf",
        "synthetic",
        overrides=[*SMALL, "train.epochs=6", "train.metric=logloss"],
        run_dir=tmp_path / "run",
        progress=False,
    )
    valid = [h["valid"]["logloss"] for h in run.record["history"]]
    assert run.record["best_epoch"] == int(np.argmin(valid)) + 1


def test_its_config_section_is_strict_and_its_metrics_checked():
    with pytest.raises(ConfigError, match="unknown key 'task.ks'"):
        api.resolve_config("toy_logistic_mf", "synthetic", overrides=["task.ks=[5]"])
    with pytest.raises(ConfigError, match="the toy_click task reports auc, logloss"):
        api.resolve_config("toy_logistic_mf", "synthetic", overrides=["train.metric=ndcg@20"])
