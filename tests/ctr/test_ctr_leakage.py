"""The ctr family's leakage rules: every fitted statistic comes from training rows, a value first seen
in a held-out row is unknown, and the test split is read once, after selection on validation."""

from __future__ import annotations

import numpy as np
import pytest
from ctr_family import family

from fusionrec import api
from fusionrec.data.dataset import TRAIN, Modality

FIELDS = {
    **family.FIELDS,
    "hour": {"source": "interaction"},
    "price": {"source": "interaction", "kind": "numeric"},
    "price_bucket": {"source": "interaction", "column": "price", "kind": "numeric", "transform": "bucketize"},
    "query": {"source": "interaction", "kind": "tokens"},
}


def with_context(dataset, held_out_shift=0.0):
    """Interaction-level fields; ``held_out_shift`` changes every valid/test value (and item features
    of items that occur in held-out rows only)."""
    inter = dataset.interactions
    rng = np.random.default_rng(0)
    held = inter["split"].to_numpy() != TRAIN
    hour = rng.integers(0, 5, len(inter)).astype(str)
    price = rng.gamma(2.0, 3.0, len(inter))
    query = np.array(["cheap red shoes", "blue hat", "red hat sale"])[rng.integers(0, 3, len(inter))].astype(object)
    if held_out_shift:
        hour = np.where(held, "h-new", hour)
        price = np.where(held, price + held_out_shift, price)
        query = np.where(held, "never seen words", query)
        train_items = np.unique(inter["item"].to_numpy()[~held])
        only_held = np.setdiff1d(np.arange(dataset.num_items), train_items)
        image = dataset.modalities["image"]
        values = image.values.copy()
        values[only_held] += held_out_shift
        dataset.modalities["image"] = Modality(values, image.mask, image.kind, image.source)
    dataset.interactions = inter.assign(hour=hour, price=price, query=query)
    return dataset


def encoded(dataset):
    _, task = family.tiny_task("deepfm", None, dataset, fields=FIELDS)
    return task


def test_held_out_values_change_nothing_fitted_and_nothing_in_training_rows():
    plain = encoded(with_context(family.tiny_dataset()))
    shifted = encoded(with_context(family.tiny_dataset(), held_out_shift=1000.0))
    assert plain.layout == shifted.layout  # vocabularies, bucket edges (labels), sizes
    train = plain.rows["train"]
    a, b = plain.batch(train), shifted.batch(train)
    np.testing.assert_array_equal(a.categorical.numpy(), b.categorical.numpy())
    np.testing.assert_allclose(a.numeric.numpy(), b.numeric.numpy())
    for x, y in zip(a.sequences, b.sequences):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    for x, y in zip(a.contents, b.contents):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-6)


def test_a_value_first_seen_in_held_out_rows_is_unknown():
    task = encoded(with_context(family.tiny_dataset(), held_out_shift=1000.0))
    held = task.batch(np.concatenate([task.rows["valid"], task.rows["test"]]))
    hour = [f.name for f in task.layout.of_kind("categorical")].index("hour")
    assert (held.categorical[:, hour] == 0).all() and "h-new" not in task.layout.fields[9].labels
    query = [f.name for f in task.layout.of_kind("sequence")].index("query")
    assert (held.sequences[query] == 0).all()
    price = task.batch(task.rows["train"]).numeric[:, 1].numpy()
    assert abs(price.mean()) < 1e-5 and abs(price.std() - 1) < 1e-3  # normalised with training rows' statistics
    train = task.batch(task.rows["train"])
    image = train.contents[0][train.content_masks[0]].numpy()
    np.testing.assert_allclose(image.mean(0), 0.0, atol=1e-4)  # standardised over training rows' images


def test_test_is_read_once_after_selection_on_valid(tmp_path, monkeypatch):
    from fusionrec.tasks.ctr.task import CTRTask

    reads = []
    original = CTRTask.evaluate
    monkeypatch.setattr(
        CTRTask, "evaluate", lambda self, m, split="valid", d="cpu": reads.append(split) or original(self, m, split, d)
    )
    api.train(
        "lr",
        "ctr-synthetic",
        overrides=[
            "data.options.num_users=60",
            "data.options.num_items=80",
            "data.options.num_rows=1500",
            "train.epochs=3",
            "train.num_threads=1",
        ],
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert reads == ["valid", "valid", "valid", "test"]


@pytest.mark.parametrize("split", ["valid", "test"])
def test_held_out_rows_never_reach_a_training_batch(split):
    task = encoded(with_context(family.tiny_dataset()))
    seen = np.concatenate([b.rows.numpy() for epoch in (1, 2) for b in task.train_batches(epoch)])
    assert not np.isin(task.rows[split], seen).any()


@pytest.mark.parametrize("method, field", [("cold_item", 1), ("cold_user", 0)])
def test_disjoint_splits_leave_held_out_ids_unknown(method, field):
    from fusionrec.data.config import SplitConfig
    from fusionrec.data.splits import apply_split

    dataset = apply_split(family.tiny_dataset(), SplitConfig(method=method, cold_user_max_interactions=40))
    _, task = family.tiny_task("deepfm", None, dataset)
    held = task.batch(np.concatenate([task.rows["valid"], task.rows["test"]]))
    assert len(held.rows) and (held.categorical[:, field] == 0).all()  # item (or user) ids never seen in training
    assert (task.batch(task.rows["train"]).categorical[:, field] > 0).all()
