"""VECF and SAERS on the planted-region set: only training reviews reach VECF, and `explain` draws the
region attention over the item image (with VECF's generated review and SAERS's attribute weights)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from fusionrec import api
from fusionrec.data.builtin.planted_fashion import CLASSES
from fusionrec.data.dataset import TRAIN
from fusionrec.metrics.explanation import attention_mass, pointing_game
from fusionrec.models.topk.saers import SAERS, SAERSConfig
from fusionrec.models.topk.vecf import VECF, VECFConfig
from fusionrec.tasks.topk.task import TopKTask


def test_vecf_reads_training_reviews_only(planted_tiny):
    held_out = copy.deepcopy(planted_tiny)
    inter = held_out.interactions
    not_train = inter["split"].to_numpy() != TRAIN
    inter.loc[not_train, "review"] = "leaked words from a held out review"
    config = VECFConfig(review_weight=1.0, embedding_dim=8, attention_dim=8, word_dim=8, decoder_dim=8)
    torch.manual_seed(0)
    a = VECF.from_dataset(config, planted_tiny)
    torch.manual_seed(0)
    b = VECF.from_dataset(config, held_out)
    assert a.vocabulary is not None and b.vocabulary is not None
    assert a.vocabulary.tokens == b.vocabulary.tokens and "leaked" not in b.vocabulary.index
    assert torch.equal(a.review_keys, b.review_keys) and torch.equal(a.review_tokens, b.review_tokens)
    assert len(a.review_keys) == int((inter["split"].to_numpy() == TRAIN).sum())
    batch = next(iter(TopKTask(planted_tiny, batch_size=32, seed=0).train_batches(1)))
    torch.testing.assert_close(a.loss(batch).loss, b.loss(batch).loss)


def test_saers_reads_the_garment_classes_as_attributes(planted_tiny):
    model = SAERS.from_dataset(SAERSConfig(embedding_dim=8, semantic_dim=8, attention_dim=8), planted_tiny)
    assert model.attribute_names == list(CLASSES) and model.regions.shape[:2] == (60, 9)
    torch.testing.assert_close(model.labels, torch.tensor(planted_tiny.modalities["attribute"].values))


def test_untrained_attention_scores_near_uniform_on_the_planted_ground_truth(planted_tiny):
    """The metrics pipeline end to end: an untrained model's attention is close to uniform (mass ~1/9)."""
    from fusionrec.data.builtin.planted_fashion import ground_truth

    gt = ground_truth(planted_tiny, "test")
    torch.manual_seed(0)
    model = VECF.from_dataset(VECFConfig(embedding_dim=8, attention_dim=8), planted_tiny)
    with torch.no_grad():
        alpha = model.explain(torch.tensor(gt["user"].to_numpy()), torch.tensor(gt["item"].to_numpy()))["regions"]
    mass = attention_mass(alpha.numpy(), gt["gt_region"].to_numpy())
    assert 0.03 < mass.mean() < 0.3 and 0 <= pointing_game(alpha.numpy(), gt["gt_region"].to_numpy()).mean() <= 1


@pytest.mark.parametrize("model", ["vecf", "saers"])
def test_explain_draws_region_attention_over_the_item_image(tmp_path, tiny_image_folder, model):
    extra = ["model.review_weight=1.0", "model.decoder_dim=16", "model.word_dim=8"] if model == "vecf" else []
    run = api.train(
        model,
        "planted-fashion",
        overrides=[
            "data.options.num_users=30",
            "data.options.num_items=40",
            "data.options.interactions_per_user=8",
            f"data.options.images={tiny_image_folder}",
            "train.epochs=2",
            "train.batch_size=64",
            "model.embedding_dim=8",
            *extra,
        ],
        run_dir=tmp_path / model,
        progress=False,
    )
    ds = run.dataset
    row = ds.interactions[ds.interactions["split"] == 2].iloc[0]
    user, item = str(ds.user_ids[row["user"]]), str(ds.item_ids[row["item"]])
    result = api.explain(run.run_dir, user, item, tmp_path / "out")
    assert len(result.images) == 1
    picture = np.asarray(Image.open(result.images[0]))
    assert picture.shape[0] >= 84 and picture.shape[1] > 2 * 84  # original | attention, side by side
    if model == "vecf":
        assert isinstance(result.details["generated review"], str)
        assert sum(result.vectors["regions"]) == pytest.approx(1.0, abs=1e-4)
        # the command line prints the sentence and the heat map's path
        env = {**os.environ, "COLUMNS": "200"}
        args = ["explain", str(run.run_dir), "--user", user, "--item", item, "--out", str(tmp_path / "cli")]
        proc = subprocess.run(
            [sys.executable, "-m", "fusionrec.cli.main", *args], capture_output=True, text=True, env=env
        )
        assert proc.returncode == 0, proc.stderr
        assert f"generated review: {result.details['generated review']}" in proc.stdout and "heat map:" in proc.stdout
    else:
        assert set(result.weights["attributes"]) == set(CLASSES)
        assert sum(result.weights["attributes"].values()) == pytest.approx(1.0, abs=1e-4)
