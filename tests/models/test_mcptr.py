"""MCPTR: multimodal contrastive pre-training (stage 1) then fine-tuning a base recommender (stage 2)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fusionrec import models  # noqa: F401
from fusionrec.api import train
from fusionrec.errors import ConfigError
from fusionrec.models.topk.mcptr import MCPTR, MCPTRConfig, contrastive_views, sample_negatives
from fusionrec.nn.graph import co_interaction_knn

TINY = dict(embedding_dim=8, num_layers=1, num_neighbors=4, pretrain_epochs=3, pretrain_batch_size=256)


def build(dataset, **overrides) -> MCPTR:
    torch.manual_seed(0)
    return MCPTR.from_dataset(MCPTRConfig(**{**TINY, **overrides}), dataset)


def test_co_interaction_knn_hand_case():
    # users 0 and 1 share items 0 and 1; user 2 shares item 1 with both; user 3 shares nothing
    r = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]]))
    one = co_interaction_knn(r, 1).toarray()
    # 0 -> 1 (2 shared), 1 -> 0 (2 shared), 2 -> 0 (tie of 1 with 0 and 1: lower index); 3 -> nobody
    expected = np.zeros((4, 4), dtype=np.float32)
    for a, b in ((0, 1), (2, 0)):
        expected[a, b] = expected[b, a] = 1
    np.testing.assert_array_equal(one, expected)
    # blocks of one row give the same graph
    np.testing.assert_array_equal(co_interaction_knn(r, 2, budget=1).toarray(), co_interaction_knn(r, 2).toarray())
    assert np.all(np.diag(co_interaction_knn(r, 3).toarray()) == 0)


def test_co_interaction_knn_matches_a_dense_reference(monkeypatch):
    from fusionrec.nn import graph

    r = sp.random(120, 30, density=0.1, random_state=3, format="csr")
    counts = (r != 0).astype(np.float32)
    counts = (counts @ counts.T).toarray()
    np.fill_diagonal(counts, 0)
    expected = np.zeros_like(counts)
    for row, c in enumerate(counts):
        top = np.argsort(-c, kind="stable")[:4]  # most shared, ties to the lower index
        expected[row, top[c[top] > 0]] = 1
    expected = np.maximum(expected, expected.T)
    np.testing.assert_array_equal(co_interaction_knn(r, 4, budget=40).toarray(), expected)
    monkeypatch.setattr(graph, "_SORT_KEY_LIMIT", 0)  # the lexsort used when packed keys would overflow
    np.testing.assert_array_equal(co_interaction_knn(r, 4, budget=40).toarray(), expected)


@pytest.mark.parametrize("base", ["bpr", "lightgcn"])
def test_stage_two_starts_from_stage_one_embeddings(tiny_dataset, base):
    model = build(tiny_dataset, base=base, init_std=None)
    users, items = model.pretrain()
    torch.testing.assert_close(model.user_emb.weight.detach(), users)
    torch.testing.assert_close(model.item_emb.weight.detach(), items)
    # the default rescales to the base model's initial std without changing directions
    scaled = build(tiny_dataset, base=base)
    users, items = scaled.pretrain()
    weight = scaled.item_emb.weight.detach()
    assert float(weight.std()) == pytest.approx(0.1, rel=1e-4)
    torch.testing.assert_close(weight / weight.norm(dim=1, keepdim=True), items / items.norm(dim=1, keepdim=True))


def test_stage_one_runs_once_before_the_first_epoch(tiny_dataset):
    model = build(tiny_dataset, pretrain_epochs=1)
    before = model.item_emb.weight.detach().clone()
    model.on_epoch_start(1)
    assert len(model.pretrain_history) == 1
    after = model.item_emb.weight.detach().clone()
    assert not torch.allclose(before, after)
    model.on_epoch_start(2)
    torch.testing.assert_close(model.item_emb.weight.detach(), after)
    # the trained stage-1 network is kept (for explanations); its weights are not the initial ones
    keys = set(model.state_dict())
    assert {"user_emb.weight", "item_emb.weight"} < keys and all(
        k.startswith("stage1.") for k in keys - {"user_emb.weight", "item_emb.weight"}
    )
    fresh = build(tiny_dataset, pretrain_epochs=1)
    assert not torch.allclose(fresh.stage1.encoders[0].weight, model.stage1.encoders[0].weight)


def test_explain_gives_stage_one_view_weights_per_pair(tiny_dataset):
    model = build(tiny_dataset, pretrain_epochs=1)
    model.on_epoch_start(1)
    users, items = torch.tensor([0, 5, 9]), torch.tensor([3, 3, 40])
    out = model.explain(users, items)
    assert model.explain_names == [*model.modality_names, "graph"]
    for key in ("modality_weights", "user_modality_weights"):
        assert out[key].shape == (3, len(model.explain_names))
        torch.testing.assert_close(out[key].sum(1), torch.ones(3))
    # the same item gives the same item-side weights whoever the user is
    torch.testing.assert_close(out["modality_weights"][0], out["modality_weights"][1])
    # a modality the item lacks gets no weight
    missing = (~model.masks_0).nonzero().flatten()
    if len(missing):
        assert float(model.explain(users[:1], missing[:1])["modality_weights"][0, 0]) == 0.0


def test_contrastive_and_bce_losses_decrease_in_stage_one(tiny_dataset):
    model = build(tiny_dataset, pretrain_epochs=6)
    model.pretrain()
    first, last = model.pretrain_history[0], model.pretrain_history[-1]
    assert model.contrastive == ("visual", "text")
    assert last["contrastive"] < first["contrastive"]
    assert last["bce"] < first["bce"]


def test_pretrained_item_ignores_the_features_of_a_modality_it_lacks(tiny_dataset):
    model = build(tiny_dataset)
    missing = int(torch.nonzero(~model.masks_0)[0])  # an item without the first modality (visual)
    net = model.pretrainer().eval()
    items = torch.tensor([missing])
    before = net(items=items)[1]
    net.features[0][missing] += 5.0  # garbage in the missing row
    after = net(items=items)[1]
    torch.testing.assert_close(before, after)


def test_review_attention_is_a_softmax_over_the_users_items(tiny_dataset):
    model = build(tiny_dataset)
    net = model.pretrainer()
    x = torch.randn(tiny_dataset.num_items, 8)
    with torch.no_grad():
        got = net.aggregate_reviews(1, x)  # text
        scores = net.review_attention[1](x)
        history = tiny_dataset.matrix("train")
        user = 3
        items = torch.tensor([i for i in history[user].indices if bool(model.masks_1[i])])
        weights = torch.softmax(scores[items], 0)
    torch.testing.assert_close(got[user], (weights[:, None] * x[items]).sum(0))


def test_contrastive_views_default_to_text_and_image():
    assert contrastive_views(["genre", "image", "text"], []) == ("text", "image")
    assert contrastive_views(["text", "genre"], []) == ("text", "genre")
    assert contrastive_views(["text"], []) == ("text", "graph")
    assert contrastive_views([], []) is None
    with pytest.raises(ConfigError, match="graph"):
        contrastive_views(["text", "genre"], ["text", "image"])


def test_negatives_avoid_training_items():
    seen = torch.tensor([0 * 5 + 1, 0 * 5 + 2, 1 * 5 + 0]).sort().values
    torch.manual_seed(0)
    negatives = sample_negatives(torch.tensor([0, 0, 1]), 5, 20, seen)
    assert not torch.isin(negatives[:2], torch.tensor([1, 2])).any()
    assert not (negatives[2] == 0).any()


def test_gated_fusion_is_an_ablation(tiny_dataset):
    model = build(tiny_dataset, fusion="gated", pretrain_epochs=1)
    model.pretrain()
    assert np.isfinite(model.pretrain_history[0]["loss"])
    with pytest.raises(ConfigError, match="gated"):
        build(tiny_dataset, fusion="nope")


def test_single_modality_contrasts_with_the_graph_view(tiny_dataset):
    only_text = replace(tiny_dataset, modalities={"text": tiny_dataset.modalities["text"]})
    model = build(only_text, pretrain_epochs=2)
    model.pretrain()
    assert model.contrastive == ("text", "graph")
    assert model.pretrain_history[-1]["contrastive"] < model.pretrain_history[0]["contrastive"]


def test_contrastive_loss_uses_at_most_contrastive_items_of_the_batch(tiny_dataset):
    from fusionrec.nn.losses import info_nce

    model = build(tiny_dataset, contrastive_items=4)
    items = torch.arange(tiny_dataset.num_items)
    with torch.no_grad():
        _, _, views = model.pretrainer()()
        a, b = model.contrastive
        both = items
        for view in (a, b):
            if view != "graph":
                both = both[getattr(model, f"masks_{model.modality_names.index(view)}")[both]]
        assert len(both) > 4
        torch.manual_seed(1)
        got = model._contrastive(views, items)
        torch.manual_seed(1)
        subset = both[torch.randperm(len(both))[:4]]
    torch.testing.assert_close(got, info_nce(views[a][subset], views[b][subset], model.temperature))


def test_one_train_call_runs_both_stages_and_records_them(tmp_path):
    overrides = [
        "data.options.num_users=120",
        "data.options.num_items=80",
        "data.options.num_interactions=3000",
        "model.embedding_dim=8",
        "model.pretrain_epochs=2",
        "model.pretrain_batch_size=512",
        "train.batch_size=256",
        "train.epochs=2",
        "train.lr=0.01",
    ]
    run = train("mcptr", "synthetic", overrides=overrides, run_dir=tmp_path / "r", progress=False)
    record = json.loads((run.run_dir / "record.json").read_text())
    pretrain = record["model_extra"]["pretrain"]
    assert pretrain["epochs"] == 2 and len(pretrain["history"]) == 2
    assert {"bce", "contrastive", "loss", "seconds"} <= set(pretrain["history"][0])
    assert len(record["history"]) == 2 and record["metrics"]["test"]
    # the trained stage-1 network is saved with the model and comes back with load_run (for explain)
    from fusionrec.api import load_run

    loaded = load_run(run.run_dir).model
    fresh = MCPTR.from_dataset(MCPTRConfig(embedding_dim=8), run.dataset)
    for key, value in run.model.stage1.state_dict().items():
        torch.testing.assert_close(loaded.stage1.state_dict()[key], value)
    assert not torch.allclose(fresh.stage1.encoders[0].weight, loaded.stage1.encoders[0].weight)


@pytest.fixture(scope="module")
def cold_dataset(cold_item_dataset):
    return cold_item_dataset


def _recorded_negatives(monkeypatch, model: MCPTR) -> list[torch.Tensor]:
    from fusionrec.models.topk import mcptr

    drawn: list[torch.Tensor] = []
    original = mcptr.sample_negatives

    def record(*args, **kwargs):
        out = original(*args, **kwargs)
        drawn.append(out.reshape(-1).clone())
        return out

    monkeypatch.setattr(mcptr, "sample_negatives", record)
    return drawn


def test_pretraining_negatives_never_include_items_absent_from_training(cold_dataset, monkeypatch):
    train_items = np.flatnonzero(np.asarray(cold_dataset.matrix("train").sum(axis=0)).ravel() > 0)
    held_out = np.setdiff1d(np.arange(cold_dataset.num_items), train_items)
    assert len(held_out) > 10
    model = build(cold_dataset, pretrain_epochs=2, pretrain_num_negatives=8)
    drawn = _recorded_negatives(monkeypatch, model)
    model.pretrain()  # without fit: the pool defaults to the training items
    negatives = torch.cat(drawn).numpy()
    assert len(negatives) > 1000 and not np.isin(negatives, held_out).any()
    assert len(np.unique(negatives)) > len(train_items) // 2  # drawn across the pool, not from a corner of it


def test_pretraining_negatives_follow_the_tasks_negative_pool(cold_dataset, monkeypatch):
    from fusionrec.tasks.topk import TopKTask

    held_out = np.flatnonzero(np.asarray(cold_dataset.matrix("train").sum(axis=0)).ravel() == 0)
    for pool, expect_held_out in (("train", False), ("all", True)):
        model = build(cold_dataset, pretrain_epochs=2, pretrain_num_negatives=8)
        model.on_fit_start(TopKTask(cold_dataset, negative_pool=pool))
        np.testing.assert_array_equal(
            model.negative_pool.numpy(), TopKTask(cold_dataset, negative_pool=pool).negative_items()
        )
        drawn = _recorded_negatives(monkeypatch, model)
        model.pretrain()
        assert np.isin(torch.cat(drawn).numpy(), held_out).any() == expect_held_out


def test_negatives_are_drawn_from_the_pool_and_avoid_training_items():
    seen = torch.tensor([0 * 20 + 1, 0 * 20 + 2, 1 * 20 + 0]).sort().values
    pool = torch.arange(10)  # items 10..19 exist but are outside the pool
    torch.manual_seed(0)
    negatives = sample_negatives(torch.tensor([0, 0, 1]), 20, 50, seen, pool=pool)
    assert set(negatives.flatten().tolist()) <= set(range(10))
    assert not torch.isin(negatives[:2], torch.tensor([1, 2])).any()
    assert not (negatives[2] == 0).any()


def test_pretraining_optimiser_settings_are_applied(tiny_dataset, monkeypatch):
    seen: dict[str, object] = {}
    real_adamw, real_clip = torch.optim.AdamW, torch.nn.utils.clip_grad_norm_

    class SpyAdamW(real_adamw):
        def __init__(self, params, **kwargs):
            seen.update(kwargs)
            super().__init__(params, **kwargs)

    def spy_clip(params, max_norm, *args, **kwargs):
        seen["clip"] = max_norm
        return real_clip(params, max_norm, *args, **kwargs)

    from fusionrec.models.topk import mcptr

    monkeypatch.setitem(mcptr._PRETRAIN_OPTIMIZERS, "adamw", SpyAdamW)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy_clip)
    model = build(
        tiny_dataset,
        pretrain_epochs=1,
        pretrain_optimizer="adamw",
        pretrain_weight_decay=0.01,
        pretrain_grad_clip=0.5,
        pretrain_lr=0.002,
    )
    model.pretrain()
    assert seen == {"lr": 0.002, "weight_decay": 0.01, "clip": 0.5}
    # weight decay shrinks the stage-1 weights: same seed, same batches, only the decay differs
    plain = build(tiny_dataset, pretrain_epochs=1, pretrain_optimizer="sgd", pretrain_lr=0.1)
    decayed = build(
        tiny_dataset, pretrain_epochs=1, pretrain_optimizer="sgd", pretrain_lr=0.1, pretrain_weight_decay=1.0
    )
    for m in (plain, decayed):
        torch.manual_seed(5)
        m.pretrain()
    assert decayed.stage1.encoders[0].weight.norm() < plain.stage1.encoders[0].weight.norm()
    with pytest.raises(ValueError, match="pretrain_optimizer"):
        MCPTRConfig(pretrain_optimizer="rmsprop")
