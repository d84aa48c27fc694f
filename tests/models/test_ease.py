"""EASE: the closed form on a hand-computed case, against an independent formula, training data only,
the memory guard, and an end-to-end run that fit() evaluates once (status closed_form) and can resume."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from fusionrec.data.batches import UserBatch
from fusionrec.errors import ConfigError, FusionrecError
from fusionrec.models.topk import ease as ease_module
from fusionrec.models.topk.ease import EASE, EASEConfig, ease_weights, item_gram

SMALL = ["data.options.num_users=120", "data.options.num_items=80", "data.options.num_interactions=3000"]


def test_hand_computed_three_items():
    # X = [[1,1,0],[0,1,1]], λ = 1: XᵀX + I = [[2,1,0],[1,3,1],[0,1,2]], det 8,
    # P = [[5,-2,1],[-2,4,-2],[1,-2,5]] / 8, B_ij = -P_ij / P_jj, B_jj = 0
    x = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    expected = torch.tensor([[0.0, 0.5, -0.2], [0.4, 0.0, 0.4], [-0.2, 0.5, 0.0]])
    torch.testing.assert_close(ease_weights(x, 1.0), expected)
    model = EASE(x, l2=1.0)
    # x̂_u = X_u B: user 0 (items 0, 1) = B[0] + B[1]; user 1 (items 1, 2) = B[1] + B[2]
    torch.testing.assert_close(
        model.score(UserBatch(torch.tensor([0, 1]))), torch.tensor([[0.4, 0.5, 0.2], [0.2, 0.5, 0.4]])
    )
    torch.testing.assert_close(
        model.score(UserBatch(torch.tensor([1]), torch.tensor([2, 0]))), torch.tensor([[0.4, 0.2]])
    )


def test_matches_the_papers_formula_in_numpy():
    rng = np.random.default_rng(0)
    x = (rng.random((40, 25)) < 0.2).astype(np.float64)
    p = np.linalg.inv(x.T @ x + 7.0 * np.eye(25))
    b = np.eye(25) - p / np.diag(p)  # B = I - P diag(1/diag(P)) (Steck 2019, eq. 8)
    got = ease_weights(sp.csr_matrix(x), 7.0)
    assert got.dtype == torch.float32 and torch.all(got.diagonal() == 0)
    np.testing.assert_allclose(got.numpy(), b, atol=1e-6)
    # the chunked Gram matrix is XᵀX whatever the chunk size
    np.testing.assert_array_equal(item_gram(sp.csr_matrix(x), chunk_size=4), x.T @ x)
    # the scores of every user are X_u B
    model = EASE(sp.csr_matrix(x), l2=7.0)
    users = torch.tensor([3, 0, 39, 3])
    np.testing.assert_allclose(model.score(UserBatch(users)).numpy(), x[users.numpy()] @ b, atol=1e-5)


def test_items_absent_from_training_score_zero():
    # an item without training interactions has P_ij = 0 (i ≠ j), so its column of B is zero
    x = sp.csr_matrix(np.array([[1, 0, 1], [1, 0, 0]], dtype=np.float32))
    scores = EASE(x, l2=2.0).score(UserBatch(torch.tensor([0, 1])))
    assert torch.all(scores[:, 1] == 0)


def _other_valid_and_test(dataset):
    """The same data set with every valid/test interaction moved to another item, plus extra valid rows."""
    frame = dataset.interactions.copy()
    held_out = frame["split"].to_numpy() != 0
    frame.loc[held_out, "item"] = (frame.loc[held_out, "item"] + 17) % dataset.num_items
    extra = frame[held_out].head(50).copy()
    extra["item"] = 0
    return replace(dataset, interactions=pd.concat([frame, extra], ignore_index=True))


def test_never_uses_valid_or_test_interactions(tiny_dataset):
    changed = _other_valid_and_test(tiny_dataset)
    assert (changed.matrix("valid", "test") != tiny_dataset.matrix("valid", "test")).nnz > 0
    assert (changed.matrix("train") != tiny_dataset.matrix("train")).nnz == 0
    config = EASEConfig(l2=50.0)
    a, b = EASE.from_dataset(config, tiny_dataset), EASE.from_dataset(config, changed)
    assert torch.equal(a.weights, b.weights)
    users = torch.arange(tiny_dataset.num_users)
    assert torch.equal(a.score(UserBatch(users)), b.score(UserBatch(users)))


def test_scorer_reuses_b_and_never_refits(tiny_dataset, monkeypatch):
    model = EASE.from_dataset(EASEConfig(), tiny_dataset)

    def refit(*args, **kwargs):
        raise AssertionError("B was recomputed while scoring")

    monkeypatch.setattr(ease_module, "ease_weights", refit)
    scorer = model.scorer()
    for users in torch.arange(tiny_dataset.num_users).split(32):
        assert scorer(users, None).shape == (len(users), tiny_dataset.num_items)


def test_large_catalogues_are_refused_with_the_memory_they_would_need(tiny_dataset):
    with pytest.raises(ConfigError, match=r"80 items > model.max_items=50.*GiB"):
        EASE.from_dataset(EASEConfig(max_items=50), tiny_dataset)


def test_loss_refuses_clearly(tiny_dataset):
    model = EASE.from_dataset(EASEConfig(), tiny_dataset)
    assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(FusionrecError, match="no trainable parameters"):
        model.loss(None)


def test_train_evaluates_once_and_reports_test(tmp_path):
    from fusionrec.api import evaluate, train

    run = train("ease", "synthetic", overrides=[*SMALL, "model.l2=20"], run_dir=tmp_path / "r", progress=False)
    rec = run.record
    assert rec["status"] == "closed_form" and rec["epochs_run"] == 1 and rec["best_epoch"] == 1
    assert len(rec["history"]) == 1 and rec["history"][0]["train_s"] == 0 and "ndcg@20" in rec["history"][0]["valid"]
    assert rec["parameters"] == 0 and rec["model_extra"]["fit_s"] > 0
    assert {"recall@20", "ndcg@20"} <= set(run.test_metrics) and run.test_metrics["ndcg@20"] > 0
    assert (run.run_dir / "best.pt").exists() and (run.run_dir / "last.pt").exists()
    # the reloaded model (rebuilt by from_dataset) gives the recorded validation metrics
    assert evaluate(run.run_dir, "valid")["ndcg@20"] == pytest.approx(rec["metrics"]["valid"]["ndcg@20"], abs=1e-7)


def test_a_run_killed_before_its_test_read_resumes_without_evaluating_valid_again(tmp_path, monkeypatch):
    from fusionrec.api import train
    from fusionrec.tasks.topk import TopKTask

    overrides = [*SMALL, "model.l2=20"]
    full = train("ease", "synthetic", overrides=overrides, run_dir=tmp_path / "full", progress=False)
    original, calls = TopKTask.evaluate, []

    def evaluate(self, model, split="valid", device="cpu"):
        calls.append(split)
        if split == "test" and calls.count("test") == 1:
            raise KeyboardInterrupt  # killed while reading test, after last.pt and the record were written
        return original(self, model, split, device)

    monkeypatch.setattr(TopKTask, "evaluate", evaluate)
    with pytest.raises(KeyboardInterrupt):
        train("ease", "synthetic", overrides=overrides, run_dir=tmp_path / "killed", progress=False)
    assert calls == ["valid", "test"]
    resumed = train(resume=tmp_path / "killed", progress=False)
    assert calls == ["valid", "test", "test"]  # validation is not evaluated again
    assert resumed.record["status"] == "closed_form" and resumed.record["epochs_run"] == 1
    assert [h["valid"] for h in resumed.record["history"]] == [h["valid"] for h in full.record["history"]]
    assert resumed.test_metrics == full.test_metrics
