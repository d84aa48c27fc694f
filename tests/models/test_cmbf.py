"""CMBF: image and field/text towers fused by cross-attention; a missing image is masked, and the
ablation switches (no cross-modal layers, one tower only) remove exactly what they name."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "ctr"))
from ctr_family import built, family  # noqa: E402

from fusionrec.data.dataset import Modality  # noqa: E402
from fusionrec.errors import ConfigError  # noqa: E402


def rows_with_and_without_image(task, n=200):
    batch = task.batch(task.rows["train"][:n])
    present = batch.content_masks[0]
    assert present.any() and (~present).any()
    return batch, present


def test_missing_image_is_masked_and_a_present_one_matters():
    model, task = built("cmbf")
    model.eval()
    batch, present = rows_with_and_without_image(task)
    with torch.no_grad():
        before = model.logits(batch)
        batch.contents[0].add_(2.0)  # behind the mask for the rows without an image
        after = model.logits(batch)
    torch.testing.assert_close(after[~present], before[~present])
    assert not torch.allclose(after[present], before[present])


def test_cross_attention_text_to_image_sums_to_one_when_the_image_is_there():
    model, task = built("cmbf")
    model.eval()
    batch, present = rows_with_and_without_image(task, 50)
    weights = model.cross_attention(batch)
    _, text_mask = model.text_side(batch)
    t2i = weights["text_to_image"]  # (B, H, Lt, Li)
    assert t2i.shape[-1] == 4  # image_tokens
    sums = t2i.sum(-1)  # (B, H, Lt)
    real = text_mask[:, None, :].expand_as(sums)
    full = present[:, None, None].expand_as(sums) & real
    torch.testing.assert_close(sums[full], torch.ones(int(full.sum())))
    assert (t2i[~present] == 0).all()  # a missing image gets no attention at all


def test_cross_layers_let_the_image_reach_the_text_tokens():
    model, task = built("cmbf")
    model.eval()
    batch, present = rows_with_and_without_image(task, 50)
    width = 8 + 1  # pooled image (D) + presence bit, at the end of the DNN input
    with torch.no_grad():
        before, _ = model.encode(batch)
        batch.contents[0].add_(2.0)
        after, _ = model.encode(batch)
    assert not torch.allclose(after[present, :-width], before[present, :-width])


def test_no_cross_modal_layers_keeps_the_text_tokens_blind_to_the_image():
    model, task = built("cmbf", cross_modal_layers=0)
    model.eval()
    assert len(model.cross) == 0
    batch, present = rows_with_and_without_image(task, 50)
    width = 8 + 1
    with torch.no_grad():
        before, _ = model.encode(batch)
        batch.contents[0].add_(2.0)
        after, _ = model.encode(batch)
    torch.testing.assert_close(after[:, :-width], before[:, :-width])
    assert not torch.allclose(after[present, -width:], before[present, -width:])  # the image still counts
    assert model.cross_attention(batch) == {}


def test_text_tower_only_ignores_the_image_and_image_tower_only_ignores_the_fields():
    text_only, task = built("cmbf", towers="text")
    image_only, _ = built("cmbf", towers="image")
    batch, present = rows_with_and_without_image(task, 50)
    for model in (text_only, image_only):
        model.eval()
    with torch.no_grad():
        text_before, image_before = text_only.logits(batch), image_only.logits(batch)
        batch.contents[0].add_(2.0)
        torch.testing.assert_close(text_only.logits(batch), text_before)
        image_shifted = image_only.logits(batch)
        batch.categorical[:, 2] = 1 + batch.categorical[:, 2] % 3  # another segment
        torch.testing.assert_close(image_only.logits(batch), image_shifted)
    assert not torch.allclose(image_shifted[present], image_before[present])


def test_region_tokens_and_the_choice_of_image_field():
    dataset = family.tiny_dataset()
    rng = np.random.default_rng(0)
    mask = dataset.modalities["image"].mask
    regions = Modality(
        rng.normal(size=(dataset.num_items, 4, 3)).astype(np.float32) * mask[:, None, None], mask, "regions"
    )
    dataset = replace(dataset, modalities={**dataset.modalities, "grid": regions}, meta=dict(dataset.meta))
    fields = {**family.FIELDS, "grid": {"source": "modality"}}
    model, task = built("cmbf", dataset=dataset, task_options={"fields": fields}, image_field="grid")
    assert model.regions
    batch = task.batch(task.rows["train"][:8])
    image, image_mask = model.image_side(batch)
    assert image.shape == (8, 4, 8) and image_mask.shape == (8, 4)
    with pytest.raises(ConfigError, match="not a content field"):
        built("cmbf", image_field="poster")
    with pytest.raises(ConfigError, match="needs an image content field"):
        built("cmbf", task_options={"fields": {"user": {"source": "user_id"}}})


def test_the_embedding_l2_covers_the_field_and_token_rows():
    model, task = built("cmbf", embedding_reg=1.0)
    batch = task.batch(task.rows["train"][:8])
    reg = model.loss(batch).parts["reg"]
    assert reg > 0
    with torch.no_grad():
        for table in [*model.fields_in.categorical, *model.fields_in.sequences]:
            table.weight.zero_()
    assert model.loss(batch).parts["reg"] == 0
