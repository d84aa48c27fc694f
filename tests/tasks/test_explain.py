"""Explanations from trained runs: the top modality per recommendation, sequence attention heat
maps, and the choice of image regions for an overlay."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import torch

from fusionrec import api
from fusionrec.tasks.topk.explain import image_regions, top_modalities

SYNTH = {
    "data.options.num_users": "80",
    "data.options.num_items": "60",
    "data.options.num_interactions": "2400",
    "data.options.visual_dim": "8",
    "data.options.text_dim": "6",
    "data.options.seed": "2",
}


def tiny_run(tmp_path, model, *extra):
    overrides = [f"{k}={v}" for k, v in SYNTH.items()] + ["train.epochs=2", "train.batch_size=256", *extra]
    return api.train(model, "synthetic", overrides=overrides, run_dir=tmp_path / model, progress=False)


def test_recommend_names_the_top_weighted_modality_of_each_pair(tmp_path):
    run = tiny_run(tmp_path, "mario")
    user = str(run.dataset.user_ids[3])
    recs = api.recommend(run.run_dir, user, k=5, with_reasons=True)
    loaded = api.load_run(run.run_dir)
    items = torch.tensor([int(np.flatnonzero(loaded.dataset.item_ids.astype(str) == r["item"])[0]) for r in recs])
    with torch.no_grad():
        weights = loaded.model.explain(torch.full((5,), 3), items)["modality_weights"]  # (5, M)
    for rec, row in zip(recs, weights):
        name, weight = rec["reason"]
        assert name == loaded.model.modality_names[int(row.argmax())]
        assert weight == pytest.approx(float(row.max()))
    assert "reason" not in api.recommend(run.run_dir, user, k=3)[0]
    explained = api.explain(run.run_dir, user, recs[0]["item"])
    assert explained.score == pytest.approx(recs[0]["score"], rel=1e-5)
    modality = explained.weights["modality_weights"]
    assert set(modality) == set(loaded.model.modality_names) and sum(modality.values()) == pytest.approx(1.0, abs=1e-5)
    grid = api.explain(run.run_dir, user).grids["modality weights per recommendation"]  # no item: the top 10
    top = api.recommend(run.run_dir, user, k=10)
    assert grid.rows == [(r["title"] or r["item"])[:40] for r in top] and grid.columns == loaded.model.modality_names
    np.testing.assert_allclose(np.array(grid.values).sum(1), 1.0, atol=1e-3)
    assert (run.run_dir / "explanations" / f"modalities-u{user}.png").stat().st_size > 1000


def test_models_without_modality_weights_give_none():
    model = types.SimpleNamespace(modality_names=[], explain=lambda u, i: None)
    assert top_modalities(model, torch.tensor([0, 1]), torch.tensor([2, 3])) == [None, None]


def test_sequential_run_recommends_unseen_items_and_draws_its_attention(tmp_path):
    run = tiny_run(tmp_path, "sasrec", "data.split.method=loo", "model.max_length=12", "model.hidden_dim=16")
    user = str(run.dataset.user_ids[5])
    recs = api.recommend(run.run_dir, user, k=5)
    seen = set(run.dataset.item_ids[run.dataset.matrix("train", "valid", "test")[5].indices].astype(str))
    assert len(recs) == 5 and not seen & {r["item"] for r in recs}
    explained = api.explain(run.run_dir, user)  # no item: the attention does not depend on the candidate
    attention = np.array(explained.details["attention"])
    items = explained.details["items"]
    assert attention.shape == (len(items), len(items)) and 2 <= len(items) <= 12
    np.testing.assert_allclose(attention.sum(1), 1.0, atol=1e-5)  # rows: distributions over real items
    assert np.allclose(np.triu(attention, 1), 0)  # SASRec is causal
    (image,) = explained.images  # written into the run folder by default
    assert image == str(run.run_dir / "explanations" / f"attention-u{user}.png") and Path(image).stat().st_size > 1000
    (table,) = explained.weights.values()  # the predicting slot's attention, largest first
    assert list(table.values()) == sorted(table.values(), reverse=True)
    why = api.recommend(run.run_dir, user, k=3, with_reasons=True)
    assert {r["reason"] for r in why} == {next(iter(table.items()))}  # the most attended item, for every candidate


def test_image_regions_are_picked_out_of_mixed_region_attention():
    model = types.SimpleNamespace(region_modality_names=["text_tokens"] * 2 + ["image_regions"] * 4)
    weights = np.array([0.5, 0.1, 0.1, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(image_regions(model, weights), [0.25, 0.25, 0.25, 0.25])
    assert image_regions(types.SimpleNamespace(region_modality_names=["text"] * 6), weights) is None
    np.testing.assert_allclose(image_regions(object(), weights), weights)


def test_region_overlay_tints_the_attended_corner(tmp_path):
    from PIL import Image

    from fusionrec.render import region_overlay

    Image.new("RGB", (70, 70), (90, 90, 90)).save(tmp_path / "poster.png")
    items = __import__("pandas").DataFrame({"image_path": [str(tmp_path / "poster.png"), None]})
    dataset = types.SimpleNamespace(items=items)
    weights = np.full(49, 0.01)
    weights[0] = 0.5  # the top-left region of the 7 x 7 grid
    path = region_overlay(dataset, 0, weights, tmp_path / "out.png")
    canvas = np.asarray(Image.open(path), dtype=float)
    height, width = canvas.shape[:2]
    assert height == 70 * (400 // 70) and width == 2 * height + 8  # upscaled poster, gap, overlay
    overlay = canvas[:, (width + 8) // 2 :]
    hot, cold = overlay[:20, :20].mean((0, 1)), overlay[-20:, -20:].mean((0, 1))
    assert hot[0] > cold[0] + 60  # red channel: the attended corner is tinted, the rest dimmed
    assert region_overlay(dataset, 1, weights, tmp_path / "none.png") is None  # no image


def test_sequential_models_without_self_attention_explain_through_their_own_maps(tmp_path):
    """MARank's per-item window weights become a table over the sequence (and the reason behind its
    recommendations); MML's learner weights a table labelled by learner."""
    marank = tiny_run(tmp_path, "marank", "data.split.method=loo", "model.hidden_dim=16")
    user = str(marank.dataset.user_ids[4])
    explained = api.explain(marank.run_dir, user)
    (table,) = [w for name, w in explained.weights.items() if name.startswith("individual")]
    assert len(table) == len(explained.details["items"]) and max(table.values()) > 0
    np.testing.assert_allclose(sum(table.values()), 1.0, atol=1e-4)  # a distribution over the window
    assert set(explained.vectors) == {"item_orders", "orders"}
    why = api.recommend(marank.run_dir, user, k=2, with_reasons=True)
    assert {r["reason"][0] for r in why} == {next(iter(table))}

    mml = tiny_run(tmp_path, "mml", "data.split.method=loo", "model.hidden_dim=16")
    weights = api.explain(mml.run_dir, str(mml.dataset.user_ids[4])).weights["fusion"]
    assert set(weights) == set(api.load_run(mml.run_dir).model.names)
    np.testing.assert_allclose(sum(weights.values()), 1.0, atol=1e-4)
