"""The outfit task: protocols, ties, metric vocabulary, leakage rules, and a run through the API."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from family_modules import family as load_family
from sklearn.metrics import roc_auc_score

from fusionrec.errors import ConfigError, DataError
from fusionrec.models.outfit.base import OutfitModel
from fusionrec.registry import MODELS
from fusionrec.tasks.outfit.task import OutfitTask, OutfitTaskConfig, realistic_rank, roc_auc
from fusionrec.training.config import TrainConfig


def task_for(name, **task):
    family = load_family("outfit")
    config = MODELS.entry(name).config(name=name, **family.TINY.get(name, {}))
    dataset, built = family.tiny_task(name, config, **task)
    return dataset, built, config


class Constant(OutfitModel):
    """Every outfit and candidate scores the same: every protocol must give the chance value, not a win."""

    def __init__(self):
        super().__init__()

    @classmethod
    def from_dataset(cls, config, dataset):
        return cls()

    def loss(self, batch):
        raise NotImplementedError

    def outfit_scores(self, items, mask):
        return torch.zeros(items.shape[0])


class Oracle(Constant):
    """Scores outfits by whether they are real (the stored compat label) and candidates by being the answer."""

    def __init__(self, dataset):
        super().__init__()
        self.real = {tuple(o) for o in dataset.tables["outfits"]["items"]}

    def outfit_scores(self, items, mask):
        return torch.tensor([float(tuple(i[m].tolist()) in self.real) for i, m in zip(items, mask)])


def test_ties_give_chance_not_a_win():
    _, task, _ = task_for("fom")
    result = task.evaluate(Constant(), "test")
    assert result.metrics["fitb"] == pytest.approx(0.25) and result.metrics["auc"] == pytest.approx(0.5)
    assert np.allclose(result.per_user["auc"], 0.5)


def test_an_oracle_scores_one():
    dataset, task, _ = task_for("fom")
    result = task.evaluate(Oracle(dataset), "valid")
    assert result.metrics["auc"] == 1.0 and result.metrics["fitb"] == 1.0


def test_auc_and_ranks_by_hand():
    pos, neg = np.array([0.9, 0.4, 0.4]), np.array([0.4, 0.1])
    assert roc_auc(pos, neg) == pytest.approx(roc_auc_score([1, 1, 1, 0, 0], np.concatenate([pos, neg])))
    assert roc_auc(pos, neg) == pytest.approx((2 + 1.5 + 1.5) / 6)
    ranks = realistic_rank(torch.tensor([[1.0, 2.0, 1.0, 0.0], [3.0, 1.0, 1.0, 1.0]]))
    assert ranks.tolist() == [2.5, 1.0]


def test_protocols_follow_the_model_and_refuse_foreign_metrics():
    assert task_for("fom")[1].protocol_name == "compatibility"
    assert task_for("pog")[1].protocol_name == "generation"
    assert task_for("nor")[1].protocol_name == "matching"
    assert task_for("pairwise_compat", protocol="matching")[1].metric == "match_auc"
    family = load_family("outfit")
    config = MODELS.entry("fom").config(name="fom")
    with pytest.raises(ConfigError, match="compatibility protocol reports fitb, auc"):
        OutfitTask.build(OutfitTaskConfig(), TrainConfig(metric="match_auc"), family.tiny_dataset(), config)
    with pytest.raises(ConfigError, match="the outfit task reports"):
        OutfitTask.check_metric(OutfitTaskConfig(), "ndcg@10")


def test_data_without_outfits_is_refused(tiny_dataset):
    with pytest.raises(DataError, match="the outfit task needs outfits"):
        OutfitTask.check_data(tiny_dataset)


def test_training_batches_hold_training_outfits_only():
    dataset, task, _ = task_for("fom")
    outfits = dataset.tables["outfits"]
    train = {int(i) for its in outfits.loc[outfits["split"] == 0, "items"] for i in its}
    seen = set()
    for batch in task.train_batches(1):
        seen |= set(batch.items[batch.mask].tolist()) | set(batch.negatives[batch.mask].tolist())
    assert seen <= train
    assert [b.items.tolist() for b in task.train_batches(2)] == [b.items.tolist() for b in task.train_batches(2)]


def test_matching_batches_and_comment_targets_are_training_pairs_only():
    dataset, task, config = task_for("nor")
    pairs = dataset.tables["pairs"]
    for batch in task.train_batches(1):
        assert (pairs["split"].to_numpy()[batch.rows.numpy()] == 0).all()
    model = MODELS.get("nor").from_dataset(config, dataset)
    held = pairs["split"].to_numpy() != 0
    assert (model.comments[torch.from_numpy(held)] == 0).all() and (model.comments[torch.from_numpy(~held)] > 0).any()


def test_name_vocabulary_comes_from_training_outfits():
    from fusionrec.models.outfit.base import name_word_ids

    dataset = load_family("outfit").tiny_dataset()
    dataset = type(dataset)(**{**vars(dataset), "items": dataset.items.copy()})
    outfits = dataset.tables["outfits"]
    train = {int(i) for its in outfits.loc[outfits["split"] == 0, "items"] for i in its}
    held = min({int(i) for its in outfits.loc[outfits["split"] == 2, "items"] for i in its} - train)
    dataset.items.loc[held, "title"] = "zzunseenword " + dataset.items.loc[held, "title"]
    _, vocab = name_word_ids(dataset)
    assert "zzunseenword" not in vocab


def test_generation_protocol_ranks_and_generates():
    from fusionrec.api import build_model

    dataset, task, config = task_for("pog")
    model = build_model(config, dataset, 0)
    result = task.evaluate(model, "valid")
    assert set(result.metrics) == {"hit@1", "hit@10", "mrr", "gen_hit"} and result.unit == "record"
    assert 0 <= result.metrics["hit@1"] <= result.metrics["hit@10"] <= 1
    rows, targets, cands = task.generation_questions(1)
    assert [len(g) for g in task.last_generated] == [len(t) for t in targets]
    for generated, slots in zip(task.last_generated, cands):
        assert all(g in slot for g, slot in zip(generated, slots))  # picked from that slot's candidates
    constant = task.evaluate(Constant(), "valid")
    width = len(cands[0][0])
    assert constant.metrics["mrr"] == pytest.approx(np.mean([1 / ((1 + width) / 2)]), rel=0.2)


def test_a_run_through_the_api_explains_and_recommends(tmp_path):
    from fusionrec import api as fusionrec

    overrides = [f"data.options.{k}={v}" for k, v in load_family("outfit").OPTIONS.items()] + [
        "train.epochs=2",
        "train.batch_size=16",
        "model.dim=8",
        "model.num_layers=1",
    ]
    run = fusionrec.train(
        model="fom", data="outfit-synthetic", overrides=overrides, run_dir=tmp_path / "run", progress=False
    )
    assert set(run.test_metrics) >= {"fitb", "auc"}
    explanation = fusionrec.explain(tmp_path / "run", user="o5")
    assert explanation.subject.startswith("outfit o5, blank:") and "attention of the blank" in explanation.weights
    assert 0 < sum(explanation.weights["attention of the blank"].values()) <= 1.0 + 1e-6
    picks = fusionrec.recommend(tmp_path / "run", user="o5", k=3)
    assert len(picks) == 3


def test_generation_without_users_is_one_line():
    family = load_family("outfit")
    config = MODELS.entry("pog").config(name="pog", **family.TINY["pog"])
    with pytest.raises(DataError, match="needs user histories"):
        OutfitTask.build(OutfitTaskConfig(), TrainConfig(), family.tiny_dataset(num_users=0), config)


def test_nor_explains_a_pair_with_its_mutual_attention_and_comment():
    from fusionrec.api import build_model

    dataset, task, config = task_for("nor")
    model = build_model(config, dataset, 0)
    explanation = task.explain(model, 0, None, None)
    top = explanation.weights["top parts (mutual attention)"]
    assert top and abs(sum(top.values()) - 1) < 1e-5
    assert isinstance(explanation.details["comment"], str) and 0 <= explanation.details["match"] <= 1
