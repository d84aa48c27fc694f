"""UVCAN: stacked user-item co-attention over image regions, text and the user's multimodal history."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from fusionrec import models  # noqa: F401
from fusionrec.data.batches import UserBatch
from fusionrec.data.dataset import Modality
from fusionrec.errors import ConfigError
from fusionrec.models.topk.uvcan import UVCAN, UVCANConfig, history_means

R = 4  # image regions


@pytest.fixture(scope="module")
def region_dataset(tiny_dataset):
    """The tiny set plus an ``image_regions`` modality (I, R, 6), missing for some items."""
    rng = np.random.default_rng(0)
    num_items = tiny_dataset.num_items
    mask = rng.random(num_items) > 0.2
    values = rng.normal(size=(num_items, R, 6)).astype(np.float32) * mask[:, None, None]
    regions = Modality(values, mask, kind="regions")
    return replace(tiny_dataset, modalities={**tiny_dataset.modalities, "image_regions": regions})


def build(dataset, **overrides) -> UVCAN:
    torch.manual_seed(0)
    return UVCAN.from_dataset(UVCANConfig(**{"embedding_dim": 8, "num_steps": 2, **overrides}), dataset)


def pairs(dataset):
    return torch.arange(12) % dataset.num_users, torch.arange(12) * 7 % dataset.num_items


def test_regions_modality_gives_one_region_per_grid_cell(region_dataset):
    model = build(region_dataset)
    assert model.modality_names == ["visual", "text", "image_regions"]
    assert model.region_modality_names == ["visual", "text"] + ["image_regions"] * R
    users, items = pairs(region_dataset)
    explanation = model.explain(users, items)
    assert explanation["regions"].shape == (12, 2 + R)
    assert explanation["modalities"].shape == (12, 3)
    assert explanation["user_modalities"].shape == (12, 3)
    assert explanation["region_steps"].shape == (12, 2, 2 + R)


def test_region_attention_sums_to_one_over_valid_regions(region_dataset):
    model = build(region_dataset)
    items = torch.arange(region_dataset.num_items)
    users = items % region_dataset.num_users
    with torch.no_grad():
        regions = model.explain(users, items)["regions"]
    valid = model.region_mask[items]
    has_any = valid.any(1)
    torch.testing.assert_close(regions[has_any].sum(1), torch.ones(int(has_any.sum())))
    assert torch.all(regions[~valid] == 0)  # missing modalities get no attention
    assert (~valid[:, 2:]).any()  # some items do lack their image regions


def test_more_reasoning_steps_change_the_attention(region_dataset):
    one, two = build(region_dataset, num_steps=1), build(region_dataset, num_steps=2)
    two.load_state_dict(one.state_dict(), strict=False)  # share everything step 1 has
    users, items = pairs(region_dataset)
    with torch.no_grad():
        e1, e2 = one.explain(users, items), two.explain(users, items)
    torch.testing.assert_close(e2["region_steps"][:, 0], e1["region_steps"][:, 0])  # step 1 is shared
    assert not torch.allclose(e2["regions"], e1["regions"], atol=1e-4)  # step 2 re-attends
    assert not torch.allclose(two.score(UserBatch(users))[:, items], one.score(UserBatch(users))[:, items])


def test_item_side_attention_depends_on_the_user(region_dataset):
    model = build(region_dataset)
    items = torch.full((6,), 5)
    with torch.no_grad():
        regions = model.explain(torch.arange(6), items)["regions"]
    assert not torch.allclose(regions[0], regions[1], atol=1e-4)


def test_chunked_full_ranking_equals_pair_scores(region_dataset):
    model = build(region_dataset, predictor="mlp").eval()
    users = torch.tensor([0, 3, 9])
    with torch.no_grad():
        full = model.score(UserBatch(users))
        model.score_budget = 1  # one item per chunk
        chunked = model.score(UserBatch(users))
        out, _ = model._pairs(
            users.repeat_interleave(region_dataset.num_items), torch.arange(region_dataset.num_items).repeat(3)
        )
        pairwise = model.predict(out.out, out.out_b).view(3, -1)
    torch.testing.assert_close(chunked, full)
    torch.testing.assert_close(pairwise, full, atol=1e-5, rtol=1e-4)


def test_user_history_means_skip_items_without_the_modality():
    history = np.array([[1, 1, 0], [0, 0, 1], [0, 0, 0]])
    import scipy.sparse as sp

    features = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    means, counts = history_means(sp.csr_matrix(history), features, torch.tensor([True, True, False]))
    torch.testing.assert_close(means, torch.tensor([[2.0, 1.0], [0.0, 0.0], [0.0, 0.0]]))
    assert counts.tolist() == [2.0, 0.0, 0.0]


def test_history_entries_are_projections_of_the_users_items(tiny_dataset):
    model = build(tiny_dataset)
    user = 4
    items = torch.from_numpy(tiny_dataset.matrix("train")[user].indices.astype(np.int64))
    items = items[model.region_mask[items, 1]]  # those with text
    with torch.no_grad():
        entries, valid = model.user_entries(torch.tensor([user]))
        expected = model.item_regions(items)[:, 1].mean(0)
    assert bool(valid[0, 1])
    torch.testing.assert_close(entries[0, 1], expected)


@pytest.mark.parametrize("fusion", ["gated", "sum"])
def test_fusion_ablation(tiny_dataset, fusion):
    model = build(tiny_dataset, fusion=fusion, objective="bce")
    users, items = pairs(tiny_dataset)
    explanation = model.explain(users, items)
    assert ("user_modalities" in explanation) == (fusion == "gated")
    assert torch.isfinite(model.score(UserBatch(users))).all()


def test_unknown_fusion_lists_the_choices(tiny_dataset):
    with pytest.raises(ConfigError, match="modality_attention"):
        build(tiny_dataset, fusion="nope")


def test_training_pairs_leave_their_own_item_out_of_the_users_history(tiny_dataset):
    model = build(tiny_dataset)
    user = 4
    history = torch.from_numpy(tiny_dataset.matrix("train")[user].indices.astype(np.int64))
    item = int(history[model.region_mask[history, 1]][0])  # a training item with text
    others = history[(history != item) & model.region_mask[history, 1]]
    with torch.no_grad():
        entries, valid = model.user_entries(torch.tensor([user, user]), leave_out=torch.tensor([item, -1]))
        full, _ = model.user_entries(torch.tensor([user]))
        expected = model.item_regions(others)[:, 1].mean(0)
    torch.testing.assert_close(entries[0, 1], expected)
    torch.testing.assert_close(entries[1], full[0])  # -1: nothing left out
    assert valid.all()
    # a user whose only item with the modality is left out has no entry for it
    counts = model.user_counts.clone()
    model.user_counts[user, 1] = 1.0
    _, valid = model.user_entries(torch.tensor([user]), leave_out=torch.tensor([item]))
    model.user_counts.copy_(counts)
    assert not bool(valid[0, 1])
