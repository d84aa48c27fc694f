"""The CTR readers (``ctr``: a labelled CSV/Parquet log, every column kept; ``criteo``: the Criteo
layout), on files the tests write, trained through the API with a field spec."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusionrec import api
from fusionrec.data import load_dataset
from fusionrec.data.readers import detect_format
from fusionrec.errors import DataError


def write_log(folder, rows=600, label=None, price=None, image_rows=None, suffix=".csv"):
    """A click log: 20 users, 30 items, label, hour, price, genres; and image_feat.npy (item 3 has no image)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, 20, rows)],
            "item_id": [f"i{i}" for i in rng.integers(0, 30, rows)],
            "label": (rng.random(rows) < 0.3).astype(int),
            "hour": rng.integers(0, 24, rows),
            "price": np.round(rng.gamma(2.0, 3.0, rows), 2),
            "genres": np.array(["a|b", "b", "c|a"])[rng.integers(0, 3, rows)],
        }
    ).drop_duplicates(["user_id", "item_id"])
    frame["label"] = frame["label"].astype(object)
    frame["price"] = frame["price"].astype(object)
    if label is not None:
        frame.iloc[4, frame.columns.get_loc("label")] = label
    if price is not None:
        frame.iloc[5, frame.columns.get_loc("price")] = price
    path = folder / f"clicks{suffix}"
    if suffix == ".parquet":
        frame.astype(str).to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    image = rng.normal(size=(image_rows or frame["item_id"].nunique(), 4)).astype(np.float32)
    image[3] = 0.0
    np.save(folder / "image_feat.npy", image)
    return path


def write_criteo(path, rows=400):
    rng = np.random.default_rng(1)
    lines = []
    for _ in range(rows):
        ints = [str(rng.integers(0, 50)) if rng.random() > 0.2 else "" for _ in range(13)]
        cats = [f"{rng.integers(0, 6):08x}" if rng.random() > 0.1 else "" for _ in range(26)]
        label = int(rng.random() < 0.3 + 0.4 * (cats[0] == "00000001"))
        lines.append("\t".join([str(label), *ints, *cats]))
    path.write_text("\n".join(lines) + "\n")
    return path


LOG_FIELDS = [
    "task.fields.user.source=user_id",
    "task.fields.item.source=item_id",
    "task.fields.hour.source=interaction",
    "task.fields.price.kind=numeric",
    "task.fields.genres.kind=multi",
    "task.fields.image.source=modality",
]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_ctr_log_keeps_every_column_and_reads_its_image_file(tmp_path, suffix):
    path = write_log(tmp_path, suffix=suffix)
    dataset = load_dataset(str(path), format="ctr", modalities={"image": "image_feat.npy"})
    assert {"label", "hour", "price", "genres"} <= set(dataset.interactions.columns)
    image = dataset.modalities["image"]
    assert image.values.shape == (dataset.num_items, 4)
    assert not image.mask[3] and image.mask.sum() == dataset.num_items - 1  # the all-zero row is missing
    assert detect_format(path) == "ctr"  # a table with a label column is a click log
    plain = tmp_path / f"plain{suffix}"
    if suffix == ".csv":
        pd.read_csv(path).drop(columns="label").to_csv(plain, index=False)
    else:
        pd.read_parquet(path).drop(columns="label").to_parquet(plain)
    assert detect_format(plain) == "csv"  # without one, a plain interaction table


def test_deepfm_content_trains_on_a_ctr_log(tmp_path):
    path = write_log(tmp_path)
    run = api.train(
        "deepfm_content",
        str(path),
        overrides=[
            "data.format=ctr",
            "data.modalities.image=image_feat.npy",
            *LOG_FIELDS,
            "model.hidden_dims=[8]",
            "train.epochs=2",
            "train.num_threads=1",
        ],
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert 0.0 <= run.record["metrics"]["test"]["auc"] <= 1.0
    assert [f.name for f in run.task.layout.fields] == ["user", "item", "hour", "price", "genres", "image"]


def test_image_file_with_the_wrong_row_count_is_refused(tmp_path):
    path = write_log(tmp_path, image_rows=7)
    with pytest.raises(DataError, match=r"image_feat.npy: 7 feature rows, but the log has \d+ distinct items"):
        load_dataset(str(path), format="ctr", modalities={"image": "image_feat.npy"})


def test_criteo_layout_is_detected_and_trains(tmp_path):
    path = write_criteo(tmp_path / "day_0.txt")
    assert detect_format(path) == "criteo"
    dataset = load_dataset(str(path))
    assert dataset.meta["format"] == "criteo" and dataset.num_users == 1 and dataset.num_items == 400
    assert list(dataset.interactions.columns[3:6]) == ["label", "I1", "I2"]
    run = api.train(
        "dcn_v2",
        str(path),
        overrides=[
            "task.fields.I1.kind=numeric",
            "task.fields.I1.transform=log",
            "task.fields.I1.fill_missing=0",
            "task.fields.I2.kind=numeric",
            "task.fields.I2.transform=bucketize",
            "task.fields.I2.fill_missing=-1",
            "task.fields.C1.source=interaction",
            "task.fields.C2.source=interaction",
            "model.hidden_dims=[8]",
            "train.epochs=3",
            "train.lr=0.01",
            "train.num_threads=1",
        ],
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert run.record["metrics"]["test"]["auc"] > 0.5  # C1 carries the planted signal


def test_criteo_user_column_and_a_missing_numeric_value_without_fill(tmp_path):
    path = write_criteo(tmp_path / "day_0.txt")
    with pytest.raises(DataError, match="line 2 has an empty user id"):  # C1 is empty on some lines
        load_dataset(str(path), columns={"user": "C1"})
    with pytest.raises(Exception, match=r"task.fields.I1 is numeric, and interaction row \d+ has empty"):
        api.train("lr", str(path), overrides=["task.fields.I1.kind=numeric"], run_dir=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
