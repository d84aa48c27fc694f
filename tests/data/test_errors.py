"""Bad input never ends in a stack trace: one FusionrecError line naming the file, the row or
column, and the fix; and a failed preparation leaves nothing in the cache.

Each case goes through ``load_dataset`` (the public entry point) where it can, so the cache check
covers the whole pipeline.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import load_dataset
from fusionrec.data.builtin.synthetic import SyntheticOptions, load_synthetic
from fusionrec.data.config import SplitConfig
from fusionrec.data.filters import k_core, to_implicit
from fusionrec.data.splits import apply_split
from fusionrec.data.store import load_dataset_dir, save_dataset
from fusionrec.errors import ConfigError, DataError, FusionrecError


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


@pytest.fixture
def fails(leftovers):
    """``fails(source, *patterns, error=DataError, **config)``: loading must raise one clear line."""

    def check(source, *patterns: str, error: type[FusionrecError] = DataError, options=None, **config) -> str:
        with pytest.raises(error) as info:
            load_dataset(str(source), options=options, **config)
        message = str(info.value)
        assert "\n" not in message, "the message must be one line"
        assert "Traceback" not in message
        for pattern in patterns:
            assert re.search(pattern, message), f"{pattern!r} not in: {message}"
        assert leftovers() == [], "a failed preparation must leave nothing in the cache"
        return message

    return check


# -- tables -----------------------------------------------------------------------------------


def test_missing_column(tmp_path, fails):
    path = write(tmp_path / "log.csv", "customer,item\n1,2\n")
    fails(path, r"log\.csv", r"no user column among \['customer', 'item'\]", r"data\.columns\.user")


def test_mapped_column_not_found(tmp_path, fails):
    path = write(tmp_path / "log.csv", "customer,sku\n1,2\n")
    fails(path, r"log\.csv", r"mapped column 'client' \(data\.columns\.user\) not found", columns={"user": "client"})


def test_unknown_mapping_key(tmp_path, fails):
    path = write(tmp_path / "log.csv", "user,item\n1,2\n")
    fails(path, r"log\.csv", r"unknown column mapping key\(s\) \['usr'\]", "valid keys", columns={"usr": "user"})


def test_extra_field_in_a_row(tmp_path, fails):
    path = write(tmp_path / "log.csv", "user,item,rating\n1,2,3\n1,3,4,5\n2,2,1\n")
    fails(path, r"log\.csv", r"line 3 has 4 fields but the header has 3 columns", "quote")


def test_extra_field_in_the_first_row_is_not_taken_as_an_index(tmp_path, fails):
    # pandas would silently shift every column (using the first one as the index).
    path = write(tmp_path / "log.csv", "user,item,rating\n1,2,3,9\n1,3,4,5\n")
    fails(path, r"log\.csv", r"line 2 has 4 fields but the header has 3 columns")


def test_duplicate_header_column(tmp_path, fails):
    path = write(tmp_path / "log.csv", "user,item,user\n1,2,3\n")
    fails(path, r"log\.csv", r"column 'user' appears more than once in the header")


def test_empty_file(tmp_path, fails):
    fails(write(tmp_path / "log.csv", ""), r"log\.csv", "file is empty")


def test_header_but_no_rows(tmp_path, fails):
    fails(write(tmp_path / "log.csv", "user,item\n"), r"log\.csv", "has a header but no rows")


def test_binary_garbage_csv(tmp_path, fails):
    garbage = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    fails(write(tmp_path / "log.csv", garbage), r"log\.csv", "binary data", "not a text table")


def test_non_utf8_csv(tmp_path, fails):
    path = write(tmp_path / "log.csv", "user,item,title\n1,2,Amélie\n".encode("latin-1"))
    fails(path, r"log\.csv", r"not UTF-8 text \(byte 0xe9", "save it as UTF-8")


def test_truncated_parquet(tmp_path, fails):
    path = tmp_path / "log.parquet"
    pd.DataFrame({"user": range(50), "item": range(50)}).to_parquet(path)
    path.write_bytes(path.read_bytes()[:200])
    fails(path, r"log\.parquet", "unreadable or truncated Parquet", "write the file again")


def test_non_numeric_rating(tmp_path, fails):
    path = write(tmp_path / "log.csv", "user,item,rating\n1,2,4\n1,3,abc\n")
    fails(path, r"log\.csv", r"line 3 column 'rating' is 'abc', not a finite number")


def test_infinite_timestamp_in_parquet(tmp_path, fails):
    path = tmp_path / "log.parquet"
    pd.DataFrame({"user": [1, 2, 3], "item": [1, 1, 1], "timestamp": [1.0, np.inf, 3.0]}).to_parquet(path)
    fails(path, r"log\.parquet", r"row 2 column 'timestamp' is inf")


def test_empty_id(tmp_path, fails):
    path = write(tmp_path / "log.csv", "user,item\n1,2\n,3\n")
    fails(path, r"log\.csv", r"line 3 has an empty user id")


def test_duplicate_interactions(tmp_path, fails):
    path = write(tmp_path / "log.csv", "user,item\n1,1\n1,2\n1,1\n")
    fails(path, r"log\.csv", r"line 4 repeats the \(user '1', item '1'\) pair of line 2", "data.duplicates=first")


def test_unknown_split_value(tmp_path, fails):
    path = write(tmp_path / "log.csv", "user,item,split\n1,1,train\n1,2,holdout\n")
    fails(path, r"log\.csv", r"line 3 split is 'holdout'", "train/valid/test")


def test_missing_file(tmp_path, fails):
    fails(tmp_path / "nope.csv", r"unknown data set '.*nope\.csv'", "no such file or folder", "ml-100k")


# -- MMRec ------------------------------------------------------------------------------------

INTER = "userID\titemID\tx_label\n0\t0\t0\n0\t1\t0\n0\t2\t2\n1\t1\t0\n1\t2\t1\n"


def mmrec(folder: Path, inter: str = INTER, image=None, text=None) -> Path:
    write(folder / "toy.inter", inter)
    np.save(folder / "image_feat.npy", np.ones((4, 3), np.float32) if image is None else image)
    np.save(folder / "text_feat.npy", np.ones((4, 2), np.float32) if text is None else text)
    return folder


def test_mmrec_missing_column(tmp_path, fails):
    folder = mmrec(tmp_path / "m", inter="userID\titemID\n0\t0\n")
    fails(folder, r"toy\.inter", r"missing MMRec column\(s\) \['x_label'\]")


def test_mmrec_non_integer_id(tmp_path, fails):
    folder = mmrec(tmp_path / "m", inter=INTER + "2\tB00X\t0\n")
    fails(folder, r"toy\.inter", r"line 7 itemID is 'B00X'", "non-negative integers")


def test_mmrec_unknown_item_id(tmp_path, fails):
    folder = mmrec(tmp_path / "m", inter=INTER + "2\t9\t0\n")
    fails(folder, r"toy\.inter", r"line 7 itemID 9 has no row in image_feat\.npy \(4 rows, item ids 0\.\.3\)")


def test_mmrec_bad_x_label(tmp_path, fails):
    folder = mmrec(tmp_path / "m", inter=INTER + "2\t1\t3\n")
    fails(folder, r"toy\.inter", r"line 7 x_label is 3", r"0 \(train\)")


def test_mmrec_feature_row_counts_disagree(tmp_path, fails):
    folder = mmrec(tmp_path / "m", text=np.ones((5, 2), np.float32))
    fails(folder, r"text_feat\.npy: 5 rows but image_feat\.npy has 4")


def test_mmrec_nan_in_features(tmp_path, fails):
    text = np.ones((4, 2), np.float32)
    text[2, 1] = np.nan
    folder = mmrec(tmp_path / "m", text=text)
    fails(folder, r"text_feat\.npy: row 2 \(item id 2\) has NaN/inf")


def test_mmrec_truncated_npy(tmp_path, fails):
    folder = mmrec(tmp_path / "m", image=np.ones((400, 8), np.float32))
    path = folder / "image_feat.npy"
    path.write_bytes(path.read_bytes()[:1000])
    fails(folder, r"image_feat\.npy", r"truncated", "extract the features again")


def test_mmrec_feature_file_is_not_npy(tmp_path, fails):
    folder = mmrec(tmp_path / "m")
    write(folder / "text_feat.npy", "0.1,0.2\n0.3,0.4\n")
    fails(folder, r"text_feat\.npy: not a \.npy array file")


def test_mmrec_one_dimensional_features(tmp_path, fails):
    folder = mmrec(tmp_path / "m", image=np.ones(4, np.float32))
    fails(folder, r"image_feat\.npy: shape \(4,\)", r"2-D \(items, dim\)")


def test_mmrec_two_inter_files(tmp_path, fails):
    folder = mmrec(tmp_path / "m")
    write(folder / "other.inter", INTER)
    fails(folder, r"expected one <name>\.inter file, found \['other\.inter', 'toy\.inter'\]", format="mmrec")


def test_empty_inter_file(tmp_path, fails):
    folder = mmrec(tmp_path / "m", inter="")
    fails(folder, r"toy\.inter: file is empty", format="mmrec")


# -- RecBole ----------------------------------------------------------------------------------


def test_recbole_header_without_types(tmp_path, fails):
    write(tmp_path / "r" / "r.inter", "user_id:token\titem_id\n1\t2\n")
    fails(
        tmp_path / "r",
        r"r\.inter",
        r"header field\(s\) \['item_id'\] are not in RecBole's `name:type` form",
        format="recbole",
    )


def test_recbole_missing_field(tmp_path, fails):
    write(tmp_path / "r" / "r.inter", "user_id:token\tmovie:token\n1\t2\n")
    fails(tmp_path / "r", r"r\.inter", r"missing field\(s\) \['item_id:token'\]")


def test_recbole_bad_kg(tmp_path, fails):
    write(tmp_path / "r" / "r.inter", "user_id:token\titem_id:token\n1\t2\n")
    write(tmp_path / "r" / "r.kg", "head_id:token\ttail_id:token\ne1\te2\n")
    fails(tmp_path / "r", r"r\.kg", "needs fields head_id:token, relation_id:token")


# -- splits and filters -----------------------------------------------------------------------


def test_users_left_without_training_interaction(tmp_path, fails):
    # User 2 has only valid/test rows in the given split.
    folder = mmrec(tmp_path / "m", inter=INTER + "2\t0\t1\n2\t3\t2\n")
    fails(
        folder,
        r"2 valid/test row\(s\) belong to users with no training interaction",
        r"user '2'",
        "cold_users=drop",
        split={"method": "column"},
    )
    ds = load_dataset(str(folder), split={"method": "column", "cold_users": "drop"})
    assert ds.num_users == 2 and ds.meta["split"]["dropped_unseen_users"] == 2


def test_kcore_leaves_users_without_training(tmp_path, fails):
    # The 2-core removes user 1's only training row (item 3 has one interaction); its valid and test rows stay.
    inter = "userID\titemID\tx_label\n0\t0\t0\n0\t1\t0\n1\t3\t0\n1\t1\t2\n1\t0\t1\n2\t0\t0\n2\t1\t0\n"
    folder = mmrec(tmp_path / "m", inter=inter)
    fails(folder, r"belong to users with no training interaction", split={"method": "column"}, kcore=2)


SPLIT_DATA = "user,item\n1,1\n1,2\n1,3\n2,1\n2,2\n"


def split_files(folder: Path, train: str, valid: str, test: str) -> Path:
    for name, body in (("train", train), ("valid", valid), ("test", test)):
        write(folder / f"{name}.tsv", "user_id\titem_id\n" + body)
    return folder


def test_split_file_pair_not_in_data(tmp_path, fails):
    data = write(tmp_path / "log.csv", SPLIT_DATA)
    folder = split_files(tmp_path / "s", "1\t1\n1\t2\n2\t1\n", "1\t3\n", "2\t2\n9\t1\n")
    fails(
        data,
        r"test\.tsv: line 3 \(user 9, item 1\) is not an interaction of log",
        split={"method": "files", "path": str(folder)},
    )


def test_split_file_pair_in_two_files(tmp_path, fails):
    data = write(tmp_path / "log.csv", SPLIT_DATA)
    folder = split_files(tmp_path / "s", "1\t1\n1\t2\n2\t1\n", "1\t3\n1\t1\n", "2\t2\n")
    fails(
        data,
        r"valid\.tsv: line 3 \(user 1, item 1\) is already in the train file",
        split={"method": "files", "path": str(folder)},
    )


def test_split_files_miss_interactions(tmp_path, fails):
    data = write(tmp_path / "log.csv", SPLIT_DATA)
    folder = split_files(tmp_path / "s", "1\t1\n2\t1\n", "1\t3\n", "2\t2\n")
    fails(
        data,
        r"1 interaction\(s\) of log are in none of the split files \(first: user 1, item 2\)",
        split={"method": "files", "path": str(folder)},
    )


def test_split_folder_without_test_file(tmp_path, fails):
    data = write(tmp_path / "log.csv", SPLIT_DATA)
    folder = split_files(tmp_path / "s", "1\t1\n", "1\t2\n", "")
    (folder / "test.tsv").unlink()
    fails(data, r"no test\.tsv / test\.csv split file", split={"method": "files", "path": str(folder)})


def test_temporal_split_without_timestamps(tmp_path, fails):
    data = write(tmp_path / "log.csv", SPLIT_DATA)
    fails(data, r"split\.method=loo needs timestamps", "split.method=random", split={"method": "loo"})


def test_kcore_removes_everything(tmp_path, fails):
    data = write(tmp_path / "log.csv", SPLIT_DATA)
    fails(data, r"no interaction survives a 9/9-core", "lower data.kcore", kcore=9)


def test_implicit_threshold_without_ratings(tmp_path, fails):
    data = write(tmp_path / "log.csv", SPLIT_DATA)
    fails(data, r"implicit threshold 4\.0 needs a rating column", implicit_threshold=4)


def test_split_column_missing(tmp_path, fails):
    data = write(tmp_path / "log.csv", SPLIT_DATA)
    fails(data, r"split\.method=column but the data has no split column", split={"method": "column"})


# -- names, settings and damaged folders ------------------------------------------------------


def test_unknown_dataset_name(fails):
    fails("ml-1m", r"unknown data set 'ml-1m'", r"not a built-in \(amazon-fashion, .*ml-100k, .*synthetic")


def test_unknown_config_key(fails):
    fails("synthetic", r"unknown key 'kcroe'; valid keys: .*kcore", error=ConfigError, kcroe=5)


def test_unknown_nested_config_key(fails):
    fails("synthetic", r"unknown key 'split\.metod'; valid keys: .*method", error=ConfigError, split={"metod": "loo"})


def test_wrong_config_type_and_value(fails):
    fails("synthetic", r"kcore", error=ConfigError, kcore="many")
    fails("synthetic", r"split\.method", "loo", error=ConfigError, split={"method": "leave-one-out"})
    fails("synthetic", r"ratios must be non-negative", error=ConfigError, split={"ratios": [0.5, 0.1, 0.1]})


def test_unknown_builtin_option(fails):
    fails(
        "synthetic",
        r"synthetic options: unknown key 'users'; valid keys: .*num_users",
        error=ConfigError,
        options={"users": 5},
    )


def test_options_for_a_file(tmp_path, fails):
    data = write(tmp_path / "log.csv", SPLIT_DATA)
    fails(data, r"options \['seed'\] only apply to built-in data sets", options={"seed": 1})


def test_damaged_manifest(tmp_path):
    folder = save_dataset(
        apply_split(load_synthetic(SyntheticOptions(num_users=20, num_items=10, num_interactions=100)), SplitConfig()),
        tmp_path / "ds",
    )
    write(folder / "manifest.json", '{"format_version": 1, "name": ')
    with pytest.raises(DataError, match=r"manifest\.json: unreadable manifest .*prepare the data set again"):
        load_dataset_dir(folder)
    with pytest.raises(DataError, match=r"not a fusionrec data set folder \(no manifest\.json\)"):
        load_dataset_dir(tmp_path)


def test_truncated_feature_in_prepared_folder(tmp_path):
    folder = save_dataset(
        apply_split(load_synthetic(SyntheticOptions(num_users=20, num_items=10, num_interactions=100)), SplitConfig()),
        tmp_path / "ds",
    )
    path = folder / "features" / "visual.npy"
    path.write_bytes(path.read_bytes()[:150])
    with pytest.raises(DataError, match=r"visual\.npy: \d+ bytes, the manifest recorded \d+"):
        load_dataset_dir(folder)


def test_filters_fail_clearly_in_python_too(small_synthetic):
    with pytest.raises(DataError, match="needs a rating column"):
        to_implicit(small_synthetic, 3.0)
    with pytest.raises(DataError, match="no interaction survives"):
        k_core(small_synthetic, 10_000, 10_000)


def test_feature_ids_that_match_no_item():
    from fusionrec.data.dataset import build_dataset

    inter = pd.DataFrame({"user": ["u1", "u2"], "item": ["a", "b"]})
    with pytest.raises(DataError, match=r"modality 'image': none of its 2 feature ids match an item id"):
        build_dataset("x", inter, modalities={"image": (np.array(["0", "1"]), np.ones((2, 3)), {})})
    with pytest.raises(DataError, match=r"modality 'image': item id 'a' has two feature rows"):
        build_dataset("x", inter, modalities={"image": (np.array(["a", "a"]), np.ones((2, 3)), {})})


def test_bad_recbole_wheel(tmp_path, monkeypatch, fails, home):
    wheel = write(tmp_path / "recbole-1.2.1-py3-none-any.whl", "not a zip")
    monkeypatch.setenv("FUSIONREC_RECBOLE_WHEEL", str(wheel))
    fails("ml-100k", r"recbole-1\.2\.1-py3-none-any\.whl: the recbole wheel is unreadable", "FUSIONREC_RECBOLE_WHEEL")
    assert not (home / "raw").exists()


def test_blank_id(tmp_path, fails):
    path = write(tmp_path / "log.csv", "user,item\n1,2\n1,  \n")
    fails(path, r"log\.csv", r"line 3 has an empty item id")
