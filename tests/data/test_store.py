"""The canonical data set folder: round trip, fingerprint, verification, atomic writes, the cache."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import DataConfig, SplitConfig, load_dataset, prepare
from fusionrec.data.dataset import Modality, build_dataset
from fusionrec.data.io import atomic_dir
from fusionrec.data.prepare import cache_dir
from fusionrec.data.splits import apply_split
from fusionrec.data.store import (
    MANIFEST,
    add_modality,
    load_dataset_dir,
    read_manifest,
    save_dataset,
    verify_dataset_dir,
)
from fusionrec.errors import DataError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "data.md"


@pytest.fixture
def rich_dataset():
    """A small data set with every optional part: ratings, timestamps, side tables, two kinds of
    modality, a KG with item links, a split, and string ids."""
    rng = np.random.default_rng(0)
    users = [f"u{i}" for i in rng.integers(0, 12, 90)]
    items = [f"i{i}" for i in rng.integers(0, 15, 90)]
    inter = pd.DataFrame({"user": users, "item": items}).drop_duplicates().reset_index(drop=True)
    inter["rating"] = rng.integers(1, 6, len(inter)).astype(float)
    inter["timestamp"] = rng.permutation(len(inter)) + 1_000_000
    item_table = pd.DataFrame({"item": [f"i{i}" for i in range(15)], "title": [f"movie {i}" for i in range(15)]})
    user_table = pd.DataFrame({"user": [f"u{i}" for i in range(12)], "age": [str(20 + i) for i in range(12)]})
    feats = rng.standard_normal((15, 4)).astype(np.float32)
    regions = rng.standard_normal((15, 3, 2)).astype(np.float32)
    kg = pd.DataFrame({"head": ["e1", "e2"], "relation": ["r", "r"], "tail": ["e2", "e3"]})
    links = pd.DataFrame({"item": ["i1", "i2"], "entity": ["e1", "e2"]})
    ds = build_dataset(
        "rich",
        inter,
        items=item_table,
        users=user_table,
        kg=kg,
        item_entities=links,
        modalities={
            "visual": ([f"i{i}" for i in range(15)], feats, {"source": "test"}),
            "grid": ([f"i{i}" for i in range(15)], regions, {"kind": "regions"}),
        },
        item_universe=np.array([f"i{i}" for i in range(15)]),
        meta={"note": "x"},
    )
    return apply_split(ds, SplitConfig(method="random", seed=1))


def _assert_same(a, b) -> None:
    pd.testing.assert_frame_equal(a.interactions.reset_index(drop=True), b.interactions.reset_index(drop=True))
    assert list(a.user_ids) == list(b.user_ids) and list(a.item_ids) == list(b.item_ids)
    for attr in ("items", "users", "kg", "item_entities"):
        left, right = getattr(a, attr), getattr(b, attr)
        assert (left is None) == (right is None), attr
        if left is not None:
            pd.testing.assert_frame_equal(
                left.reset_index(drop=True), right.reset_index(drop=True), check_dtype=False, obj=attr
            )
    assert set(a.modalities) == set(b.modalities)
    for name, m in a.modalities.items():
        n = b.modalities[name]
        np.testing.assert_array_equal(m.values, n.values)
        np.testing.assert_array_equal(m.mask, n.mask)
        assert (m.kind, m.source, m.labels) == (n.kind, n.source, n.labels)


def test_round_trip_is_identical(rich_dataset, tmp_path):
    folder = save_dataset(rich_dataset, tmp_path / "ds")
    loaded = load_dataset_dir(folder, verify=True)
    _assert_same(rich_dataset, loaded)
    assert loaded.interactions["user"].dtype == np.int32 and loaded.interactions["split"].dtype == np.int8
    assert loaded.interactions["timestamp"].dtype == np.int64 and loaded.interactions["rating"].dtype == np.float32
    assert loaded.modalities["grid"].values.shape == (15, 3, 2)
    assert loaded.meta["note"] == "x" and loaded.meta["fingerprint"] == read_manifest(folder)["fingerprint"]
    # And a second save of the loaded copy reproduces the same folder, byte for byte.
    again = save_dataset(loaded, tmp_path / "again")
    assert read_manifest(again)["files"] == read_manifest(folder)["files"]


def test_manifest_fields(rich_dataset, tmp_path):
    manifest = read_manifest(save_dataset(rich_dataset, tmp_path / "ds"))
    assert manifest["num_users"] == rich_dataset.num_users
    assert manifest["num_interactions"] == rich_dataset.num_interactions
    assert manifest["split"] == rich_dataset.split_sizes()
    assert manifest["modalities"]["visual"]["shape"] == [15, 4]
    assert set(manifest["files"]) == set(manifest["bytes"])
    assert {
        "interactions.parquet",
        "user_ids.npy",
        "item_ids.npy",
        "items.parquet",
        "users.parquet",
        "kg.parquet",
        "item_entities.parquet",
        "features/visual.npy",
        "features/visual.mask.npy",
    } <= set(manifest["files"])
    assert re.fullmatch(r"[0-9a-f]{16}", manifest["fingerprint"])


def test_docs_describe_every_manifest_field_and_file(rich_dataset, tmp_path):
    """docs/data.md documents the folder: every manifest key and every file name appears there."""
    text = DOCS.read_text()
    manifest = read_manifest(save_dataset(rich_dataset, tmp_path / "ds"))
    for key in manifest:
        assert f"`{key}`" in text, f"manifest key {key!r} is not documented in docs/data.md"
    for rel in manifest["files"]:
        generic = re.sub(r"features/\w+?(\.mask)?\.npy", r"features/<name>\1.npy", rel)
        assert generic in text, f"file {generic} is not documented in docs/data.md"
    for col in rich_dataset.interactions.columns:
        assert f"`{col}`" in text


def test_fingerprint_is_stable_and_follows_content(rich_dataset, tmp_path):
    first = read_manifest(save_dataset(rich_dataset, tmp_path / "a"))["fingerprint"]
    assert read_manifest(save_dataset(rich_dataset, tmp_path / "b"))["fingerprint"] == first
    changed = rich_dataset.interactions.copy()
    changed.loc[0, "rating"] = changed.loc[0, "rating"] + 1
    rich_dataset.interactions = changed
    assert read_manifest(save_dataset(rich_dataset, tmp_path / "c"))["fingerprint"] != first


def test_verify_catches_a_modified_file(rich_dataset, tmp_path):
    folder = save_dataset(rich_dataset, tmp_path / "ds")
    path = folder / "features" / "visual.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(data))
    load_dataset_dir(folder)  # the cheap size check cannot see it ...
    with pytest.raises(DataError, match=r"visual\.npy: content differs from the manifest"):
        verify_dataset_dir(folder)  # ... the sha256 check does


def test_verify_and_load_catch_a_truncated_file(rich_dataset, tmp_path):
    folder = save_dataset(rich_dataset, tmp_path / "ds")
    path = folder / "interactions.parquet"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match=r"interactions\.parquet: \d+ bytes, the manifest recorded \d+"):
        verify_dataset_dir(folder)
    with pytest.raises(DataError, match="truncated or changed"):
        load_dataset_dir(folder)


def test_verify_catches_a_missing_file_and_an_edited_fingerprint(rich_dataset, tmp_path):
    folder = save_dataset(rich_dataset, tmp_path / "ds")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["fingerprint"] = "0" * 16
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="fingerprint 0000000000000000 does not match"):
        verify_dataset_dir(folder)
    (folder / "kg.parquet").unlink()
    with pytest.raises(DataError, match=r"kg\.parquet: listed in the manifest but missing"):
        load_dataset_dir(folder)


def test_exception_mid_write_leaves_nothing(rich_dataset, tmp_path, monkeypatch):
    import fusionrec.data.store as store

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "write_json", boom)  # fail after every data file was written
    target = tmp_path / "cache" / "datasets" / "rich" / "key"
    with pytest.raises(RuntimeError, match="disk full"):
        save_dataset(rich_dataset, target)
    assert not target.exists()
    assert not (tmp_path / "cache").exists(), "folders created for the write must be removed too"


def test_exception_mid_write_keeps_the_previous_copy(rich_dataset, tmp_path, monkeypatch):
    import fusionrec.data.store as store

    folder = save_dataset(rich_dataset, tmp_path / "ds")
    before = read_manifest(folder)
    monkeypatch.setattr(store, "write_npy", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        save_dataset(rich_dataset, folder)
    assert read_manifest(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"], "no temporary folder may remain"


def test_atomic_dir_replaces_as_a_whole(tmp_path):
    target = tmp_path / "x"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with atomic_dir(target) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_add_modality(rich_dataset, tmp_path):
    folder = save_dataset(rich_dataset, tmp_path / "ds")
    before = read_manifest(folder)["fingerprint"]
    values = np.ones((rich_dataset.num_items, 3), dtype=np.float32)
    add_modality(folder, "extra", Modality(values, np.ones(rich_dataset.num_items, bool)))
    loaded = load_dataset_dir(folder, verify=True)
    np.testing.assert_array_equal(loaded.modalities["extra"].values, values)
    assert loaded.meta["fingerprint"] != before
    with pytest.raises(DataError, match="has 2 rows, the data set has 15 items"):
        add_modality(folder, "bad", Modality(np.ones((2, 3)), np.ones(2, bool)))
    values[4, 1] = np.nan
    with pytest.raises(DataError, match="NaN/inf in row 4"):
        add_modality(folder, "nan", Modality(values, np.ones(rich_dataset.num_items, bool)))


SYN = {"num_users": 60, "num_items": 40, "num_interactions": 900, "visual_dim": 4, "text_dim": 4}


def test_prepare_caches_by_key(home):
    config = DataConfig(name="synthetic")
    folder = prepare(config, SYN)
    assert folder == cache_dir(config, SYN) and folder.parent.parent == home / "datasets"
    stamp = (folder / MANIFEST).stat().st_mtime_ns
    assert prepare(config, SYN) == folder and (folder / MANIFEST).stat().st_mtime_ns == stamp  # cached
    other = prepare(config, {**SYN, "seed": 1})
    assert other != folder and other.parent == folder.parent
    assert prepare(DataConfig(name="synthetic", kcore=2), SYN) not in (folder, other)


def test_one_folder_however_the_options_are_given(home):
    """load_dataset(options=...), data.options and the defaults spelt out name one cached folder."""
    from fusionrec.data.builtin.synthetic import SyntheticOptions

    by_argument = cache_dir(DataConfig(name="synthetic"), SYN)
    by_config = cache_dir(DataConfig(name="synthetic", options=SYN), None)
    defaults = SyntheticOptions().model_dump()
    spelt_out = cache_dir(DataConfig(name="synthetic"), {**defaults, **SYN, "seed": str(defaults["seed"])})
    assert by_argument == by_config == spelt_out
    assert cache_dir(DataConfig(name="synthetic"), {**SYN, "seed": 1}) != by_argument


def test_prepare_rebuilds_a_damaged_cache_entry(home):
    config = DataConfig(name="synthetic")
    folder = prepare(config, SYN)
    fingerprint = read_manifest(folder)["fingerprint"]
    path = folder / "interactions.parquet"
    path.write_bytes(path.read_bytes()[:100])
    assert prepare(config, SYN) == folder
    verify_dataset_dir(folder)
    assert read_manifest(folder)["fingerprint"] == fingerprint
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]


def test_prepare_is_deterministic(tmp_path, monkeypatch):
    prints = []
    for run in range(2):
        monkeypatch.setenv("FUSIONREC_HOME", str(tmp_path / f"home{run}"))
        prints.append(load_dataset("synthetic", options=SYN).meta["fingerprint"])
    assert prints[0] == prints[1]


def test_prepared_folder_is_used_as_is(home):
    folder = prepare(DataConfig(name="synthetic"), SYN)
    assert prepare(DataConfig(name=str(folder))) == folder
    assert load_dataset(str(folder)).num_interactions == read_manifest(folder)["num_interactions"]


def _with_records(dataset, splits):
    """A data set whose family records (impressions with list-valued columns) carry the split."""
    dataset.tables["impressions"] = pd.DataFrame(
        {
            "user": np.arange(len(splits), dtype=np.int32) % dataset.num_users,
            "history": [[0, 1], [], [2], [3, 4, 5]][: len(splits)],
            "split": np.asarray(splits, dtype=np.int8),
        }
    )
    dataset.meta["split_records"] = "impressions"
    return dataset


def test_record_tables_round_trip_with_their_lists(rich_dataset, tmp_path):
    dataset = _with_records(rich_dataset, [0, 0, 1, 2])
    loaded = load_dataset_dir(save_dataset(dataset, tmp_path / "ds"), verify=True)
    table = loaded.tables["impressions"]
    assert [list(h) for h in table["history"]] == [[0, 1], [], [2], [3, 4, 5]]
    assert loaded.split_records == "impressions"
    assert loaded.record_split_sizes() == {"train": 2, "valid": 1, "test": 1}
    assert read_manifest(tmp_path / "ds")["split"] == {"train": 2, "valid": 1, "test": 1}


def test_record_split_needs_its_table_and_every_split(rich_dataset):
    from fusionrec.data.validate import validate_dataset

    with pytest.raises(DataError, match="no valid rows in table 'impressions'"):
        validate_dataset(_with_records(rich_dataset, [0, 0, 2, 2]))
    rich_dataset.tables.clear()
    with pytest.raises(DataError, match="names table 'impressions', which is missing"):
        _ = rich_dataset.split_records
