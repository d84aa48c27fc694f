"""The ctr task: labels, fitted fields, batches, the protocol, and the family through the API."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ctr_family import built, family

from fusionrec import api
from fusionrec.errors import ConfigError, DataError
from fusionrec.tasks.ctr.task import CTRTaskConfig, row_labels


def test_every_field_kind_is_encoded():
    _, task = family.tiny_task("deepfm", None)
    kinds = [(f.name, f.kind) for f in task.layout.fields]
    assert kinds == [
        ("user", "categorical"),
        ("item", "categorical"),
        ("segment", "categorical"),
        ("age", "numeric"),
        ("age_bucket", "categorical"),
        ("tags", "sequence"),
        ("title", "sequence"),
        ("image", "content"),
        ("text", "content"),
    ]
    batch = task.batch(task.rows["train"][:5])
    assert batch.categorical.shape == (5, 4) and batch.numeric.shape == (5, 1)
    assert [s.shape for s in batch.sequences] == [(5, 3), (5, 4)]
    assert batch.contents[0].shape == (5, 6) and batch.content_masks[0].dtype == torch.bool
    assert task.layout.fields[4].vocab_size == 1 + 4  # code 0 + 4 quantile buckets (3 edges)


def test_rating_threshold_and_label_column():
    dataset = family.tiny_dataset()
    labels = row_labels(dataset, CTRTaskConfig())
    np.testing.assert_array_equal(labels, dataset.interactions["label"].to_numpy())
    dataset.interactions["rating"] = np.arange(len(labels)) % 5 + 1.0
    by_rating = row_labels(dataset, CTRTaskConfig(rating_threshold=4))
    np.testing.assert_array_equal(by_rating, (dataset.interactions["rating"] >= 4).to_numpy())


@pytest.mark.parametrize("bad", [2, -1, np.nan])
def test_labels_outside_zero_one_are_refused_in_one_line(bad):
    dataset = family.tiny_dataset()
    dataset.interactions["label"] = dataset.interactions["label"].astype(float)
    dataset.interactions.loc[7, "label"] = bad
    with pytest.raises(DataError, match=r"label column 'label' has .* at interaction row 7 .*labels must be 0 or 1"):
        row_labels(dataset, CTRTaskConfig())


def test_train_batches_hold_training_rows_only_and_depend_on_seed_and_epoch():
    _, task = family.tiny_task("deepfm", None)
    rows = np.concatenate([b.rows.numpy() for b in task.train_batches(1)])
    assert sorted(rows) == sorted(task.rows["train"])
    again = np.concatenate([b.rows.numpy() for b in task.train_batches(1)])
    other = np.concatenate([b.rows.numpy() for b in task.train_batches(2)])
    np.testing.assert_array_equal(rows, again)
    assert not np.array_equal(rows, other)
    assert task.num_batches == -(-len(task.rows["train"]) // 64)


def test_evaluation_reports_rows_with_their_ids():
    model, task = built("deepfm")
    result = task.evaluate(model, "valid")
    assert result.unit == "row"
    np.testing.assert_array_equal(result.users, task.rows["valid"])
    assert set(result.metrics) == {"auc", "logloss", "gauc", "calibration", "positive_rate"}
    assert result.metrics["logloss"] == pytest.approx(result.per_user["logloss"].mean())
    assert result.metrics["positive_rate"] == pytest.approx(task.labels[task.rows["valid"]].mean())


def test_selection_metric_vocabulary_and_direction():
    _, task = family.tiny_task("deepfm", None)
    assert task.higher_is_better("auc") and task.higher_is_better("gauc") and not task.higher_is_better("logloss")
    with pytest.raises(ConfigError, match="the ctr task selects on auc, logloss, gauc"):
        type(task).check_metric(None, "ndcg@20")


TINY_RUN = [
    "data.options.num_users=60",
    "data.options.num_items=80",
    "data.options.num_rows=1500",
    "data.options.image_dim=6",
    "data.options.text_dim=5",
    "task.fields.user.source=user_id",
    "task.fields.segment.source=user",
    "task.fields.category.source=item",
    "task.fields.image.source=modality",
    "train.batch_size=128",
    "train.lr=0.01",
    "train.num_threads=1",
]


def test_cmbf_trains_evaluates_recommends_and_explains_through_the_api(tmp_path):
    tiny = [f"model.{k}={v}" for k, v in family.TINY["cmbf"].items() if k != "hidden_dims"]
    run = api.train(
        "cmbf",
        "ctr-synthetic",
        overrides=[*TINY_RUN, *tiny, "model.hidden_dims=[16]", "train.epochs=3", "train.metric=logloss"],
        run_dir=tmp_path / "run",
        progress=False,
    )
    record = run.record
    assert record["task"] == "ctr" and record["evaluation"]["test_unit"] == "row"
    assert record["evaluation"]["selection"] == "best epoch by valid logloss"
    assert "positive rate train" in record["evaluation"]["protocol"]
    valid_losses = [h["valid"]["logloss"] for h in record["history"]]
    assert record["metrics"]["valid"]["logloss"] == min(valid_losses)  # the epoch with the lowest logloss
    assert api.evaluate(run.run_dir, "test") == pytest.approx(record["metrics"]["test"])

    user = str(run.dataset.user_ids[0])
    recs = api.recommend(run.run_dir, user, k=5)
    seen = set(run.dataset.item_ids[run.dataset.interactions.query("user == 0")["item"]].astype(str))
    assert len(recs) == 5 and not seen & {r["item"] for r in recs}
    assert [r["score"] for r in recs] == sorted((r["score"] for r in recs), reverse=True)

    with_image = np.flatnonzero(run.dataset.modalities["image"].mask)
    item = str(run.dataset.item_ids[with_image[0]])
    explained = api.explain(run.run_dir, user, item, tmp_path / "png")
    assert explained.details["image_present"] is True
    grid = explained.grids["text -> image attention"]
    assert grid.rows[0].startswith("user=") and len(grid.columns) == 4
    np.testing.assert_allclose(np.asarray(grid.values).sum(1), 1.0, rtol=1e-5)
    assert explained.images and all(p.endswith(".png") for p in explained.images)
    by_recommend = {r["item"]: r["score"] for r in api.recommend(run.run_dir, user, k=80)}
    if item in by_recommend:
        assert explained.score == pytest.approx(by_recommend[item], rel=1e-5)

    # --why: the text token each recommended item's image attends to most, the same weight explain shows
    why = api.recommend(run.run_dir, user, k=80, with_reasons=True)
    assert [r["item"] for r in why] == list(by_recommend)
    assert [r["score"] for r in why] == pytest.approx(list(by_recommend.values()))
    image_items = set(run.dataset.item_ids[with_image].astype(str))
    assert all((r["reason"] is None) == (r["item"] not in image_items) for r in why)
    explained_reasons = {}
    for r in [r for r in why if r["reason"] is not None][:3]:
        weights = api.explain(run.run_dir, user, r["item"]).weights["text tokens the image side attends to"]
        explained_reasons[r["reason"][0]] = (r["reason"][1], max(weights.values()), weights.get(r["reason"][0]))
    assert explained_reasons
    for reason_weight, top_weight, same_token in explained_reasons.values():
        assert reason_weight == pytest.approx(top_weight, rel=1e-5) == same_token


def test_explain_needs_a_model_with_cross_attention(tmp_path):
    run = api.train(
        "fm", "ctr-synthetic", overrides=[*TINY_RUN, "train.epochs=1"], run_dir=tmp_path / "fm", progress=False
    )
    with pytest.raises(Exception, match="no cross-modal attention"):
        api.explain(run.run_dir, str(run.dataset.user_ids[0]), str(run.dataset.item_ids[0]))


def test_field_tables_train_with_sparse_gradients(tmp_path):
    run = api.train(
        "deepfm",
        "ctr-synthetic",
        overrides=[*TINY_RUN, "train.epochs=2", "train.sparse_embeddings=true"],
        run_dir=tmp_path / "sparse",
        progress=False,
    )
    assert all(table.sparse for table in run.model.lookup_embeddings())
    losses = [h["loss"] for h in run.record["history"]]
    assert losses[-1] < losses[0]
