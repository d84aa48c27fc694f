"""Splits, k-core and implicit conversion, with leakage and protocol checks for every method."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import DataConfig, SplitConfig, load_dataset
from fusionrec.data.dataset import TEST, TRAIN, VALID, build_dataset
from fusionrec.data.filters import k_core, to_implicit
from fusionrec.data.splits import apply_split

METHODS = ["random", "temporal", "loo", "global_time", "column", "files", "cold_item"]


def split_with(dataset, method: str, tmp_path: Path, **kwargs):
    """Apply ``method``; ``column`` and ``files`` get a given split derived from a seeded random one."""
    if method in ("column", "files"):
        given = apply_split(dataset, SplitConfig(method="random", seed=11))
        if method == "column":
            return apply_split(given, SplitConfig(method="column"))
        inter = given.interactions
        for code, name in ((TRAIN, "train"), (VALID, "valid"), (TEST, "test")):
            part = inter[inter["split"] == code]
            pd.DataFrame({"user_id": given.user_ids[part["user"]], "item_id": given.item_ids[part["item"]]}).to_csv(
                tmp_path / f"{name}.tsv", sep="\t", index=False
            )
        return apply_split(dataset, SplitConfig(method="files", path=str(tmp_path)))
    return apply_split(dataset, SplitConfig(method=method, **kwargs))


def pairs(ds, code):
    frame = ds.interactions[ds.interactions["split"] == code]
    return set(zip(ds.user_ids[frame["user"]], ds.item_ids[frame["item"]]))


@pytest.mark.parametrize("method", METHODS)
def test_no_leakage_and_protocol_rules(small_synthetic, method, tmp_path):
    ds = split_with(small_synthetic, method, tmp_path)
    inter = ds.interactions
    assert ds.is_split and set(np.unique(inter["split"])) == {TRAIN, VALID, TEST}
    # No (user, item) pair in two splits.
    train, valid, test = pairs(ds, TRAIN), pairs(ds, VALID), pairs(ds, TEST)
    assert not (train & valid) and not (train & test) and not (valid & test)
    assert len(train) + len(valid) + len(test) == len(inter)
    # Every user with a valid/test row has training data.
    is_train = inter["split"].to_numpy() == TRAIN
    evaluated = ~is_train
    assert np.isin(inter["user"][evaluated], inter["user"][is_train]).all()
    # Ids stay dense and consistent with the id arrays.
    assert inter["user"].max() == ds.num_users - 1 and len(np.unique(inter["user"])) == ds.num_users
    assert inter["item"].max() < ds.num_items
    if method == "global_time":  # every evaluated item was seen in training
        assert np.isin(inter["item"][evaluated], inter["item"][is_train]).all()
    if method == "cold_item":  # held-out items never appear in training
        assert not np.isin(inter["item"][evaluated], inter["item"][is_train]).any()
    # Raw pairs survive the re-indexing.
    raw = set(
        zip(
            small_synthetic.user_ids[small_synthetic.interactions["user"]],
            small_synthetic.item_ids[small_synthetic.interactions["item"]],
        )
    )
    assert train | valid | test <= raw
    assert ds.meta["split"]["dropped_rows"] == len(raw) - len(inter)


def test_random_split_is_seeded(small_synthetic):
    a = apply_split(small_synthetic, SplitConfig(method="random", seed=1)).interactions["split"]
    b = apply_split(small_synthetic, SplitConfig(method="random", seed=1)).interactions["split"]
    c = apply_split(small_synthetic, SplitConfig(method="random", seed=2)).interactions["split"]
    assert a.equals(b) and not a.equals(c)


def test_random_split_ratios_per_user(small_synthetic):
    ds = apply_split(small_synthetic, SplitConfig(method="random", ratios=(0.6, 0.2, 0.2)))
    counts = pd.crosstab(ds.interactions["user"], ds.interactions["split"])
    n = counts.sum(axis=1)
    big = n >= 10
    assert (counts[TRAIN] >= 1).all()
    np.testing.assert_allclose(counts.loc[big, TEST] / n[big], 0.2, atol=0.5 / n[big].min() + 0.01)
    np.testing.assert_allclose(counts.loc[big, VALID] / n[big], 0.2, atol=0.5 / n[big].min() + 0.01)


def test_leave_one_out_by_time(small_synthetic):
    ds = apply_split(small_synthetic, SplitConfig(method="loo"))
    inter = ds.interactions.sort_values(["user", "timestamp"])
    last = inter.groupby("user").tail(1)
    second = inter.groupby("user").nth(-2)
    n = inter.groupby("user").size()
    assert (last["split"][n[last["user"]].to_numpy() >= 2] == TEST).all()
    assert (second["split"][n[second["user"]].to_numpy() >= 3] == VALID).all()
    assert (ds.interactions["split"] == TEST).sum() == (n >= 2).sum()
    assert (ds.interactions["split"] == VALID).sum() == (n >= 3).sum()


def test_temporal_split_per_user(small_synthetic):
    ds = apply_split(small_synthetic, SplitConfig(method="temporal"))
    g = ds.interactions.groupby(["user", "split"])["timestamp"].agg(["min", "max"]).unstack()
    has = g["min"].notna()
    both = has[TRAIN] & has[VALID]
    assert (g["max"][TRAIN][both] < g["min"][VALID][both]).all()
    both = has[VALID] & has[TEST]
    assert (g["max"][VALID][both] < g["min"][TEST][both]).all()
    both = has[TRAIN] & has[TEST]
    assert (g["max"][TRAIN][both] < g["min"][TEST][both]).all()


def test_global_time_cut(small_synthetic):
    ds = apply_split(small_synthetic, SplitConfig(method="global_time", ratios=(0.7, 0.15, 0.15)))
    ts = ds.interactions.groupby("split")["timestamp"]
    assert ts.max()[TRAIN] < ts.min()[VALID] and ts.max()[VALID] < ts.min()[TEST]
    info = ds.meta["split"]
    assert ds.num_interactions == small_synthetic.num_interactions - info["dropped_rows"]


def test_global_time_drops_and_counts_unseen_users_and_items():
    # Times 1-6 train, 7-8 valid, 9-10 test. User "new" and item "late" appear only after the cut.
    inter = pd.DataFrame(
        {
            "user": ["a", "a", "a", "b", "b", "b", "a", "new", "b", "a"],
            "item": ["x", "y", "z", "x", "y", "w", "w", "x", "late", "late2"],
            "timestamp": range(1, 11),
        }
    )
    ds = apply_split(build_dataset("g", inter), SplitConfig(method="global_time", ratios=(0.6, 0.2, 0.2)))
    info = ds.meta["split"]
    assert (info["dropped_unseen_users"], info["dropped_unseen_items"], info["dropped_rows"]) == (1, 2, 3)
    assert "new" not in set(ds.user_ids) and info["removed_users"] == 1
    # Their rows are dropped, the items stay in the catalogue (cold-start items), counted.
    assert {"late", "late2"} <= set(ds.item_ids) and info["items_without_train"] == 2
    assert ds.split_sizes() == {"train": 6, "valid": 1, "test": 0}


def test_global_time_ties_share_a_split():
    inter = pd.DataFrame({"user": list("aabbccdd"), "item": list("xyxyxyxy"), "timestamp": [1, 2, 2, 2, 2, 3, 3, 4]})
    ds = apply_split(build_dataset("ties", inter), SplitConfig(method="global_time", ratios=(0.25, 0.25, 0.5)))
    by_time = ds.interactions.groupby("timestamp")["split"].nunique()
    assert (by_time == 1).all()


def test_cold_item_split(small_synthetic):
    ds = apply_split(small_synthetic, SplitConfig(method="cold_item", cold_item_ratio=0.3, seed=5))
    inter = ds.interactions
    items_in = {code: set(inter["item"][inter["split"] == code]) for code in (TRAIN, VALID, TEST)}
    assert not items_in[TRAIN] & (items_in[VALID] | items_in[TEST])
    assert not items_in[VALID] & items_in[TEST]
    held_out = len(items_in[VALID] | items_in[TEST]) / ds.num_items
    assert 0.2 < held_out <= 0.3 + 1e-9
    assert ds.num_items == small_synthetic.num_items  # cold items stay in the catalogue


def test_files_split_reproduces_the_peer_split(ml100k_env, shared):
    folder = shared / "fixtures" / "ml100k-peer-split"
    if not folder.is_dir():
        pytest.skip("fixtures/ml100k-peer-split not in the shared folder")
    ds = load_dataset("ml-100k", split={"method": "files", "path": "shared:fixtures/ml100k-peer-split"})
    assert ds.split_sizes() == {"train": 80808, "valid": 9596, "test": 9596}
    for name, code in (("train", TRAIN), ("test", TEST)):
        expected = pd.read_csv(folder / f"{name}.tsv", sep="\t", dtype=str)
        assert pairs(ds, code) == set(zip(expected["user_id"], expected["item_id"]))


def test_kcore(small_synthetic):
    for k in (3, 8):
        ds = k_core(small_synthetic, k, k)
        inter = ds.interactions
        assert inter.groupby("user").size().min() >= k and inter.groupby("item").size().min() >= k
        assert inter["user"].nunique() == ds.num_users and inter["item"].nunique() == ds.num_items
        assert naive_kcore(small_synthetic, k) == set(zip(ds.user_ids[inter["user"]], ds.item_ids[inter["item"]]))


def naive_kcore(dataset, k: int) -> set:
    """The k-core by repeated pandas filtering on raw ids: the reference for :func:`k_core`."""
    inter = dataset.interactions
    frame = pd.DataFrame({"user": dataset.user_ids[inter["user"]], "item": dataset.item_ids[inter["item"]]})
    while True:
        user_deg = frame.groupby("user")["item"].transform("size")
        item_deg = frame.groupby("item")["user"].transform("size")
        keep = (user_deg >= k) & (item_deg >= k)
        if keep.all():
            return set(zip(frame["user"], frame["item"]))
        frame = frame[keep]


def test_kcore_keeps_modalities_aligned(small_synthetic):
    ds = k_core(small_synthetic, 5, 5)
    original = {raw: i for i, raw in enumerate(small_synthetic.item_ids)}
    rows = [original[raw] for raw in ds.item_ids]
    np.testing.assert_array_equal(ds.modalities["visual"].values, small_synthetic.modalities["visual"].values[rows])


def test_implicit_threshold():
    inter = pd.DataFrame({"user": [1, 1, 2, 2, 3], "item": [1, 2, 1, 3, 3], "rating": [5, 3, 4, 1, 2]})
    ds = to_implicit(build_dataset("r", inter), 4)
    assert ds.num_interactions == 2 and (ds.interactions["rating"] >= 4).all()
    assert list(ds.user_ids) == ["1", "2"] and list(ds.item_ids) == ["1"]


def test_implicit_and_kcore_through_prepare(ml100k_raw, ml100k_env):
    ds = load_dataset(DataConfig(name="ml-100k", implicit_threshold=4, kcore=5))
    inter = ds.interactions
    assert inter.groupby("user").size().min() >= 5 and inter.groupby("item").size().min() >= 5
    assert (inter["rating"] >= 4).all()
    assert ds.num_interactions < (ml100k_raw.interactions["rating"] >= 4).sum()
    assert ds.meta["prepare"]["kcore"] == 5


def test_split_replaced_not_mutated(small_synthetic):
    before = small_synthetic.interactions.copy()
    apply_split(dataclasses.replace(small_synthetic), SplitConfig(method="cold_item"))
    pd.testing.assert_frame_equal(small_synthetic.interactions, before)


def test_files_split_with_an_empty_validation_file_is_refused(tmp_path):
    """An empty validation file reads fine, but a data set without validation rows is refused
    (training selects on valid: it would end without metrics)."""
    from fusionrec.errors import DataError

    (tmp_path / "log.csv").write_text("user,item\n1,1\n1,2\n1,3\n2,1\n2,2\n")
    for name, body in (("train", "1\t1\n1\t2\n2\t1\n"), ("valid", ""), ("test", "1\t3\n2\t2\n")):
        (tmp_path / f"{name}.tsv").write_text("user_id\titem_id\n" + body)
    with pytest.raises(
        DataError,
        match=r"the valid split is empty \(train 3 / valid 0 / test 2, split.method=files\); "
        r"the valid file under data.split.path has no pairs",
    ):
        load_dataset(str(tmp_path / "log.csv"), split={"method": "files", "path": str(tmp_path)})


def test_cold_user_split_passes_validation_through_prepare(tmp_path):
    """Held-out new users have no training rows by design: prepare (and validate) must accept them."""
    from fusionrec.data.validate import validate_dataset

    rows = [(u, i, t) for u in range(6) for t, i in enumerate(range(u, u + 8))]  # 6 users, 8 items each
    rows += [(u, i, t) for u in range(6, 10) for t, i in enumerate(range(u, u + 3))]  # 4 users with 3 items
    pd.DataFrame(rows, columns=["user", "item", "timestamp"]).to_csv(tmp_path / "log.csv", index=False)
    ds = load_dataset(str(tmp_path / "log.csv"), split={"method": "cold_user", "cold_user_max_interactions": 3})
    inter = ds.interactions
    new_users = set(ds.user_ids[inter["user"][inter["split"] != TRAIN]])
    assert new_users == {"6", "7", "8", "9"}
    assert not (inter["split"][inter["user"].isin([ds.user_ids.tolist().index(u) for u in new_users])] == TRAIN).any()
    validate_dataset(ds)
    with pytest.raises(Exception, match="no training interaction"):  # still an error for other splits
        validate_dataset(dataclasses.replace(ds, meta={**ds.meta, "split": {**ds.meta["split"], "method": "loo"}}))


# -- the catalogue survives the split; the manifest's counts are true ---------------------------


def test_column_split_with_cold_users_drop_keeps_items_with_features_only(mmrec_folder, toy_rows):
    """100 items have features, 30 have interactions: dropping a cold user's rows must not shrink
    the catalogue to the interacted items, and the counts must say what happened."""
    from fusionrec.data.store import read_manifest

    rows = toy_rows(num_interacted=30) + [(99, 31, 2)]  # user 99: a test row only (a cold user)
    folder = mmrec_folder(rows, num_items=100)
    ds = load_dataset(str(folder), split={"method": "column", "cold_users": "drop"})
    assert ds.num_items == 100 and ds.modalities["image"].values.shape == (100, 4)
    np.testing.assert_array_equal(ds.modalities["image"].values, np.load(folder / "image_feat.npy"))
    assert list(ds.item_ids) == [str(i) for i in range(100)]
    info = ds.meta["split"]
    inter = ds.interactions
    in_train = set(inter["item"][inter["split"] == TRAIN])
    assert info == {
        **info,
        "dropped_rows": 1,
        "dropped_unseen_users": 1,
        "dropped_unseen_items": 0,
        "removed_users": 1,
        "items_without_train": 100 - len(in_train),
    }
    assert "99" not in set(ds.user_ids)
    assert read_manifest(ds.meta["path"])["meta"]["split"]["items_without_train"] == 100 - len(in_train)


@pytest.mark.parametrize("method", ["random", "loo", "temporal", "cold_item"])
def test_no_split_method_shrinks_the_catalogue(small_synthetic, method):
    assert apply_split(small_synthetic, SplitConfig(method=method)).num_items == small_synthetic.num_items


# -- empty valid / test splits are refused at prepare and validate time -------------------------


def test_empty_splits_are_refused_with_the_fix(tmp_path):
    from fusionrec.errors import DataError

    path = tmp_path / "log.csv"
    path.write_text("user,item\n" + "".join(f"{u},{i}\n" for u in range(3) for i in range(4)))
    with pytest.raises(DataError) as info:  # 4 interactions per user: round(0.4) = 0 valid rows
        load_dataset(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("log: the valid split is empty (train 12 / valid 0 / test 0, split.method=random)")
    assert "raise the valid share of data.split.ratios (now 0.8,0.1,0.1)" in message
    with pytest.raises(
        DataError,
        match=r"the test split is empty .*raise the test share of data.split.ratios "
        r"\(now 0.5,0.5,0\)",
    ):
        load_dataset(str(path), split={"ratios": [0.5, 0.5, 0.0]})
    assert load_dataset(str(path), split={"ratios": [0.5, 0.25, 0.25]}).split_sizes() == {
        "train": 6,
        "valid": 3,
        "test": 3,
    }


def test_empty_column_split_names_the_column(mmrec_folder, toy_rows):
    from fusionrec.errors import DataError

    rows = [(u, i, 0 if s == 1 else s) for u, i, s in toy_rows()]  # x_label has no 1
    with pytest.raises(
        DataError,
        match=r"the valid split is empty \(train 100 / valid 0 / test 20, "
        r"split.method=column\); the source's split column",
    ):
        load_dataset(str(mmrec_folder(rows)), split={"method": "column"})


def test_data_validate_refuses_a_folder_with_an_empty_test_split(tmp_path, small_synthetic):
    """A folder written by an older version (or by hand) with no test rows fails `data validate`."""
    from typer.testing import CliRunner

    from fusionrec.cli.main import app
    from fusionrec.data.store import save_dataset
    from fusionrec.errors import DataError

    ds = apply_split(small_synthetic, SplitConfig(method="random", ratios=(0.9, 0.1, 0.0)))
    folder = save_dataset(ds, tmp_path / "prepared")
    result = CliRunner().invoke(app, ["data", "validate", str(folder)])
    assert isinstance(result.exception, DataError)
    assert "the test split is empty" in str(result.exception) and "data.split.ratios (now 0.9,0.1,0)" in str(
        result.exception
    )
