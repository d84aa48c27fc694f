"""What content statistics see: statistics learnt from item content (standardisation, the LSA fit,
k-means centroids) are fitted on the items that occur in training and applied to every item, so
changing an item held out of training changes nothing but that item's own features."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from fusionrec import models  # noqa: F401  (fills the registry)
from fusionrec.data.content import text_modality, training_item_mask
from fusionrec.data.dataset import Modality
from fusionrec.models.topk.features import standardize, training_items
from fusionrec.models.topk.hcgcn import kmeans
from fusionrec.registry import MODELS

SMALL = {"embedding_dim": 8}


@pytest.fixture(scope="module")
def cold(cold_item_dataset):
    return cold_item_dataset


def _held_out_changed(dataset, item: int, shift: float = 50.0):
    """A copy of ``dataset`` where ``item``'s content is different in every modality."""
    changed = {}
    for name, mod in dataset.modalities.items():
        values = np.array(mod.values, dtype=np.float32)
        values[item] = values[item] * -3.0 + shift
        mask = np.array(mod.mask, dtype=bool)
        mask[item] = True
        changed[name] = Modality(values, mask, mod.kind, mod.source, mod.labels)
    return replace(dataset, modalities=changed)


def test_training_items_are_the_items_with_a_training_interaction(cold):
    train = np.asarray(cold.matrix("train").sum(axis=0)).ravel() > 0
    np.testing.assert_array_equal(training_item_mask(cold), train)
    assert training_items(cold).dtype == torch.bool and 0 < int((~training_items(cold)).sum()) < cold.num_items


def test_standardize_fits_on_the_given_items_only():
    x = torch.randn(10, 3)
    mask = torch.ones(10, dtype=torch.bool)
    mask[2] = False
    fit = torch.tensor([True] * 7 + [False] * 3)
    out = standardize(x, mask, fit)
    rows = x[mask & fit]
    torch.testing.assert_close(out[:7][mask[:7]], ((rows - rows.mean(0)) / rows.std(0)))
    assert (out[2] == 0).all()
    x2 = x.clone()
    x2[8:] = 1000.0  # outside fit
    torch.testing.assert_close(standardize(x2, mask, fit)[:8], out[:8])
    # statistics are pooled over regions; without ``fit`` every present item counts, as before
    grid = torch.randn(10, 4, 3)
    torch.testing.assert_close(standardize(grid, mask, fit)[:7], standardize(grid[:7], mask[:7]))


def test_kmeans_centroids_are_fitted_on_the_given_rows():
    x = torch.randn(60, 5)
    fit = torch.arange(60) < 40
    labels = kmeans(x, 4, fit=fit)
    moved = x.clone()
    moved[50] = torch.randn(5) * 100  # an unfitted row: only its own label may change
    again = kmeans(moved, 4, fit=fit)
    keep = torch.arange(60) != 50
    assert torch.equal(labels[keep], again[keep])
    torch.testing.assert_close(kmeans(x[:40], 4), labels[:40])


@pytest.mark.parametrize("name", ["vbpr", "mgat", "mario", "uvcan", "hcgcn", "mcptr", "mml"])
def test_a_held_out_items_content_does_not_change_other_items_features(cold, name):
    train = training_item_mask(cold)
    held_out = int(np.flatnonzero(~train)[0])
    entry = MODELS.entry(name)
    fields = entry.config.model_fields
    config = entry.config(name=name, **{k: v for k, v in {**SMALL, "hidden_dim": 8}.items() if k in fields})
    built = []
    for data in (cold, _held_out_changed(cold, held_out)):
        torch.manual_seed(0)
        built.append(dict(MODELS.get(name).from_dataset(config, data).named_buffers()))
    before, after = built
    compared = 0
    for key, value in before.items():
        if "feature" not in key or value.layout != torch.strided:
            continue
        other = after[key]
        if value.shape[0] == cold.num_items:  # item rows: every training item's row is unchanged
            torch.testing.assert_close(value[torch.from_numpy(train)], other[torch.from_numpy(train)], msg=key)
            assert not torch.equal(value[held_out], other[held_out]), key  # the changed item's own row moved
        else:  # e.g. users' history means: made of training items only
            torch.testing.assert_close(value, other, msg=key)
        compared += 1
    assert compared, f"no feature buffer found in {name}"
    if name == "hcgcn":  # initial k-means clusters of users and training items
        users = before["clusters"][: -cold.num_items]
        torch.testing.assert_close(users, after["clusters"][: -cold.num_items])
        warm = torch.from_numpy(train)
        torch.testing.assert_close(
            before["clusters"][-cold.num_items :][warm], after["clusters"][-cold.num_items :][warm]
        )


def test_builtin_text_fitted_on_training_items():
    texts = [
        "red cotton shirt",
        "blue denim jeans",
        "red wool scarf",
        "blue denim shirt",
        "green rain jacket",
        "black rain boots",
        "",
        "red rain coat",
    ]
    fit = np.array([True, True, True, True, True, False, False, False])
    base = text_modality(texts, 3, "items.text", fit=fit)
    edited = text_modality(texts[:5] + ["zebra zebra zebra red", "", "jeans jeans denim"], 3, "items.text", fit=fit)
    np.testing.assert_array_equal(base.values[:5], edited.values[:5])
    assert base.source == "tfidf-lsa-3 of items.text, fitted on 5 training items"
    assert not base.mask[6] and not base.values[6].any()
