"""MostPop: training counts only, the same scores for every user, saved in best.pt, evaluated once by fit()."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from fusionrec.data.batches import UserBatch
from fusionrec.errors import FusionrecError
from fusionrec.models.topk.mostpop import MostPop, MostPopConfig

SMALL = ["data.options.num_users=120", "data.options.num_items=80", "data.options.num_interactions=3000"]


def test_scores_are_training_counts_for_every_user(tiny_dataset):
    model = MostPop.from_dataset(MostPopConfig(), tiny_dataset)
    train = tiny_dataset.split_frame("train").drop_duplicates(["user", "item"])
    counts = np.bincount(train["item"].to_numpy(), minlength=tiny_dataset.num_items)  # independent count
    scores = model.score(UserBatch(torch.tensor([0, 5, 119])))
    assert scores.shape == (3, tiny_dataset.num_items)
    for row in scores:
        np.testing.assert_array_equal(row.numpy(), counts)
    items = torch.tensor([7, 2, 7])
    torch.testing.assert_close(
        model.score(UserBatch(torch.tensor([1]), items)), torch.from_numpy(counts[[7, 2, 7]]).float().unsqueeze(0)
    )


def test_hand_counted_case():
    model = MostPop(torch.tensor([3.0, 0.0, 1.0]))
    assert model.score(UserBatch(torch.tensor([0, 1]))).tolist() == [[3.0, 0.0, 1.0], [3.0, 0.0, 1.0]]


def test_valid_and_test_interactions_leave_the_scores_unchanged(tiny_dataset):
    frame = tiny_dataset.interactions.copy()
    held_out = frame["split"].to_numpy() != 0
    frame.loc[held_out, "item"] = (frame.loc[held_out, "item"] + 17) % tiny_dataset.num_items
    extra = frame[held_out].head(50).assign(item=0)  # item 0 becomes far more popular outside training
    changed = replace(tiny_dataset, interactions=pd.concat([frame, extra], ignore_index=True))
    assert (changed.matrix("valid", "test") != tiny_dataset.matrix("valid", "test")).nnz > 0
    a = MostPop.from_dataset(MostPopConfig(), tiny_dataset)
    b = MostPop.from_dataset(MostPopConfig(), changed)
    users = torch.arange(tiny_dataset.num_users)
    assert torch.equal(a.score(UserBatch(users)), b.score(UserBatch(users)))


def test_scorer_returns_a_fresh_tensor(tiny_dataset):
    # the evaluator writes -inf into the scores in place; the popularity must survive it
    model = MostPop.from_dataset(MostPopConfig(), tiny_dataset)
    before = model.popularity.clone()
    model.scorer()(torch.tensor([0, 1]), None).fill_(-float("inf"))
    assert torch.equal(model.popularity, before)


def test_loss_refuses_clearly():
    model = MostPop(torch.ones(4))
    assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(FusionrecError, match="no trainable parameters"):
        model.loss(None)


def test_train_evaluates_once_and_best_pt_holds_the_counts(tmp_path):
    from fusionrec.api import load_run, train

    run = train("mostpop", "synthetic", overrides=SMALL, run_dir=tmp_path / "r", progress=False)
    assert run.record["status"] == "closed_form" and len(run.record["history"]) == 1
    assert run.record["history"][0]["train_s"] == 0 and run.test_metrics["ndcg@20"] > 0
    saved = torch.load(run.run_dir / "best.pt", weights_only=True)
    counts = np.asarray(run.dataset.matrix("train").sum(axis=0)).ravel()
    np.testing.assert_array_equal(saved["popularity"].numpy(), counts)
    assert torch.equal(load_run(run.run_dir).model.popularity, saved["popularity"])
