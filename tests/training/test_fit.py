"""fit(): determinism, early stopping on validation, exact resume, interruption, the run record."""

from __future__ import annotations

import json

import pytest
import torch

from fusionrec.api import train
from fusionrec.errors import ConfigError, FusionrecError

TINY = [
    "data.options.num_users=120",
    "data.options.num_items=80",
    "data.options.num_interactions=3000",
    "model.embedding_dim=8",
    "train.batch_size=256",
    "train.lr=0.01",
]


def run(tmp_path, name="r", extra=(), model="bpr", **kwargs):
    return train(model, "synthetic", overrides=[*TINY, *extra], run_dir=tmp_path / name, progress=False, **kwargs)


def test_same_seed_same_metrics_other_seed_differs(tmp_path):
    a = run(tmp_path, "a", ["train.epochs=3"])
    b = run(tmp_path, "b", ["train.epochs=3"])
    c = run(tmp_path, "c", ["train.epochs=3", "train.seed=7"])
    assert a.test_metrics == b.test_metrics
    assert a.test_metrics != c.test_metrics


def test_record_has_what_a_reader_needs(tmp_path):
    rec = json.loads((run(tmp_path, extra=["train.epochs=2"]).run_dir / "record.json").read_text())
    assert set(rec["metrics"]["test"]) >= {"recall@20", "ndcg@20", "recall@10", "ndcg@10"}
    assert rec["config"]["train"]["epochs"] == 2 and rec["config"]["model"]["embedding_dim"] == 8
    assert len(rec["data"]["fingerprint"]) == 16 and rec["data"]["split"]["method"] == "random"
    assert [h["epoch"] for h in rec["history"]] == [1, 2] and "valid" in rec["history"][0]
    assert rec["timings"]["train_s_per_epoch"] > 0 and rec["timings"]["eval_s"] > 0
    assert rec["peak_rss_mb"] > 0 and rec["versions"]["torch"] and rec["machine"]["cpu_count"]
    assert (run(tmp_path, "x", ["train.epochs=1"]).run_dir / "best.pt").exists()
    assert rec["threads"]["count"] >= 1 and rec["threads"]["chosen_by"]
    assert rec["batch_size"] == 256
    text = rec["data"]["modalities"]["text"]  # which encoder produced each modality the run could use
    assert text["origin"] == "builtin" and text["encoder"] == "synthetic"


@pytest.mark.parametrize("checkpoint", ["best.pt", "last.pt"])
def test_a_damaged_checkpoint_is_one_line_naming_the_file_and_the_fix(tmp_path, checkpoint):
    from fusionrec.api import evaluate

    done = run(tmp_path, extra=["train.epochs=2"])
    path = done.run_dir / checkpoint
    path.write_bytes(path.read_bytes()[:100])  # truncated, as by a full disk or a killed copy
    with pytest.raises(FusionrecError) as caught:
        if checkpoint == "best.pt":
            evaluate(done.run_dir)
        else:
            train(resume=done.run_dir, overrides=["train.epochs=4"], progress=False)
    message = str(caught.value)
    assert str(path) in message and "damaged checkpoint" in message and "\n" not in message
    assert ("train --resume" if checkpoint == "best.pt" else "fusionrec evaluate") in message


def test_resuming_a_finished_run_says_so_unless_given_more_room(tmp_path):
    done = run(tmp_path, extra=["train.epochs=2"])
    with pytest.raises(FusionrecError, match=r"already finished \(max_epochs, best epoch \d of 2\).*train.epochs=N"):
        train(resume=done.run_dir, progress=False)
    more = train(resume=done.run_dir, overrides=["train.epochs=3"], progress=False)
    assert more.record["epochs_run"] == 3


def test_progress_is_one_line_per_epoch_when_not_on_a_terminal(tmp_path, capsys):
    train("bpr", "synthetic", overrides=[*TINY, "train.epochs=3"], run_dir=tmp_path / "r", progress=True)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]


def test_early_stopping_restores_the_best_validation_epoch(tmp_path):
    # A large learning rate makes validation peak early and then decay.
    result = run(tmp_path, extra=["train.epochs=40", "train.patience=3", "train.lr=0.3"])
    rec = result.record
    valid = [h["valid"]["ndcg@20"] for h in rec["history"]]
    assert rec["status"] == "early_stopping"
    assert rec["epochs_run"] == rec["best_epoch"] + 3
    assert rec["metrics"]["valid"]["ndcg@20"] == max(valid)
    # The restored model really is the best epoch's: re-evaluating valid reproduces its metric.
    from fusionrec.api import evaluate

    assert evaluate(result.run_dir, "valid")["ndcg@20"] == pytest.approx(max(valid), abs=1e-7)


def test_resume_continues_exactly(tmp_path):
    full = run(tmp_path, "full", ["train.epochs=4"], model="lightgcn")
    part = run(tmp_path, "part", ["train.epochs=2"], model="lightgcn")
    # Continue the 2-epoch run to 4 epochs: it must end exactly where the uninterrupted run did.
    resumed = train(resume=part.run_dir, overrides=["train.epochs=4"], progress=False)
    assert [h["loss"] for h in resumed.record["history"]] == [h["loss"] for h in full.record["history"]]
    assert resumed.test_metrics == full.test_metrics


def test_interrupt_keeps_best_checkpoint_and_record(tmp_path, monkeypatch):
    from fusionrec.tasks.topk import TopKTask

    original = TopKTask.train_batches

    def interrupted(self, epoch):
        if epoch == 3:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(TopKTask, "train_batches", interrupted)
    result = run(tmp_path, extra=["train.epochs=10"])
    rec = json.loads((result.run_dir / "record.json").read_text())
    assert rec["status"] == "interrupted" and rec["epochs_run"] == 2
    assert rec["metrics"]["test"] is None  # test is not read for an interrupted run
    assert (result.run_dir / "best.pt").exists() and (result.run_dir / "last.pt").exists()


def test_gradient_clipping_bounds_the_update(tmp_path):
    from fusionrec.api import build_model, resolve_config

    def moved(extra):
        result = run(tmp_path, f"clip{len(extra)}", ["train.epochs=1", "train.optimizer=sgd", *extra])
        _, model_config = resolve_config(config=result.record["config"])
        start = build_model(model_config, result.dataset, result.record["config"]["train"]["seed"])
        return (result.model.user_emb.weight - start.user_emb.weight).norm().item()

    # SGD with lr 0.01: each step moves the parameters by at most lr * clip.
    steps = 10  # 2,4xx training pairs / batch 256
    assert moved(["train.grad_clip=1e-3"]) <= 0.01 * 1e-3 * steps * 1.01
    assert moved([]) > 0.01 * 1e-3 * steps * 1.01


def test_misspelt_keys_and_unknown_models_fail_with_choices(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'train.epoch'.*epochs"):
        run(tmp_path, extra=["train.epoch=3"])
    with pytest.raises(ConfigError, match="unknown key 'model.num_layer'.*num_layers"):
        run(tmp_path, extra=["model.num_layer=3"], model="lightgcn")
    with pytest.raises(ConfigError, match="unknown model 'lightgnc'; choose one of: .*lightgcn"):
        train("lightgnc", "synthetic", progress=False)
    with pytest.raises(ConfigError, match="train.lr"):
        run(tmp_path, extra=["train.lr=-1"])
    with pytest.raises(FusionrecError, match="already holds a run"):
        run(tmp_path, "dup", ["train.epochs=1"])
        run(tmp_path, "dup", ["train.epochs=1"])


def test_checkpoint_loads_without_pickle(tmp_path):
    result = run(tmp_path, extra=["train.epochs=1"])
    state = torch.load(result.run_dir / "best.pt", weights_only=True)
    assert "user_emb.weight" in state


def test_plain_mrr_selects_the_epoch_and_other_metrics_need_a_cutoff(tmp_path):
    from fusionrec.api import resolve_config
    from fusionrec.errors import ConfigError

    for good in ("mrr", "mrr@10"):  # the ranking tasks check the selection metric
        assert resolve_config("bpr", "synthetic", overrides=[f"train.metric={good}"])[0].train.metric == good
    for bad in ("ndcg", "recall", "mrr@", "auc"):
        with pytest.raises(ConfigError, match="plain mrr"):
            resolve_config("bpr", "synthetic", overrides=[f"train.metric={bad}"])
    record = run(tmp_path, extra=["train.epochs=2", "train.metric=mrr"]).record
    assert record["evaluation"]["selection"] == "best epoch by valid mrr"
    assert record["metrics"]["valid"]["mrr"] == max(h["valid"]["mrr"] for h in record["history"])


@pytest.mark.parametrize("metric", ["mrr@10", "ndcg@5"])
def test_a_selection_metric_outside_metrics_x_ks_is_computed_too(tmp_path, metric):
    record = run(tmp_path, extra=["train.epochs=1", f"train.metric={metric}"]).record
    assert metric in record["metrics"]["valid"] and metric in record["metrics"]["test"]


def test_the_progress_line_says_what_was_evaluated():
    from fusionrec.training.fit import FitState, _selection_line

    fresh = FitState()
    assert _selection_line("mrr", {}, fresh, 2) == "mrr not evaluated yet (every 2 epochs)"
    assert _selection_line("mrr", {"valid": {"mrr": float("nan")}}, fresh, 1) == "mrr nan (no best yet)"
    fresh.best_value, fresh.best_epoch = 0.25, 2
    assert _selection_line("mrr", {"valid": {"mrr": 0.2}}, fresh, 1) == "mrr 0.2000 (best 0.2500 @ 2)"
    assert _selection_line("mrr", {}, fresh, 2) == "mrr best 0.2500 @ 2"
