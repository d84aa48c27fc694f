"""Every reader strips whitespace around ids and drops header lines repeated inside a table,
counting both in ``meta.cleaning`` (the manifest) and ``fusionrec data info``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import load_dataset
from fusionrec.data.readers import read_mmrec, read_recbole, read_table
from fusionrec.data.store import read_manifest


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# Two CSV files concatenated (its header repeated at line 7) and a user id written " 1 ".
CONCATENATED = "user,item,rating\n1,10,5\n 1 ,11,4\n1,12,3\n2,10,4\n2,11,2\nuser,item,rating\n2,12,5\n3,10,1\n3,11,2\n"


def test_table_ids_are_stripped_and_a_repeated_header_is_dropped(tmp_path):
    ds = read_table(write(tmp_path / "log.csv", CONCATENATED))
    assert list(ds.user_ids) == ["1", "2", "3"]  # " 1 " is user "1"; no user "user"
    assert list(ds.item_ids) == ["10", "11", "12"]
    assert ds.num_interactions == 8
    assert ds.meta["cleaning"] == {
        "stripped_ids": 1,
        "repeated_header_rows": 1,
        "first_repeated_header": "log.csv line 7",
    }


def test_stripping_happens_before_duplicates_are_found(tmp_path):
    path = write(tmp_path / "d.csv", "user,item\n1,10\n1 ,10\n2,10\n")
    from fusionrec.errors import DataError

    with pytest.raises(DataError, match=r"line 3 repeats the \(user '1', item '10'\) pair of line 2"):
        read_table(path)
    assert read_table(path, duplicates="first").num_interactions == 2


def test_parquet_ids_are_stripped(tmp_path):
    import pandas as pd

    path = tmp_path / "log.parquet"
    pd.DataFrame({"user": ["a", " a", "b"], "item": ["x ", "y", "x"]}).to_parquet(path)
    ds = read_table(path)
    assert list(ds.user_ids) == ["a", "b"] and list(ds.item_ids) == ["x", "y"]
    assert ds.meta["cleaning"]["stripped_ids"] == 2


def test_mmrec_repeated_header_is_dropped_and_counted(tmp_path):
    folder = tmp_path / "mm"
    write(
        folder / "toy.inter", "userID\titemID\tx_label\n0\t0\t0\n0\t1\t2\nuserID\titemID\tx_label\n1\t1\t0\n 1\t0\t2\n"
    )
    np.save(folder / "image_feat.npy", np.ones((3, 2), dtype=np.float32))
    ds = read_mmrec(folder)
    assert (ds.num_users, ds.num_items, ds.num_interactions) == (2, 3, 4)
    assert ds.meta["cleaning"] == {
        "stripped_ids": 1,
        "repeated_header_rows": 1,
        "first_repeated_header": "toy.inter line 4",
    }


def test_recbole_ids_in_every_file_are_stripped(tmp_path):
    folder = tmp_path / "rb"
    write(folder / "rb.inter", "user_id:token\titem_id:token\nu1\tm1\nu1 \tm2\nuser_id:token\titem_id:token\nu2\t m1\n")
    write(folder / "rb.item", "item_id:token\ttitle:token_seq\n m1\tAlpha\nm2 \tBeta\n")
    write(folder / "rb.link", "item_id:token\tentity_id:token\nm1\t e1\n")
    ds = read_recbole(folder)
    assert list(ds.user_ids) == ["u1", "u2"] and list(ds.item_ids) == ["m1", "m2"]
    assert ds.items["title"].tolist() == ["Alpha", "Beta"]  # side table keys stripped too, so they align
    assert ds.item_entities.values.tolist() == [[0, "e1"]]
    assert ds.meta["cleaning"]["stripped_ids"] == 5 and ds.meta["cleaning"]["repeated_header_rows"] == 1


def test_cleaning_counts_reach_the_manifest_and_data_info(tmp_path):
    from typer.testing import CliRunner

    from fusionrec.cli.main import app

    path = write(tmp_path / "log.csv", CONCATENATED)
    result = CliRunner().invoke(
        app, ["data", "prepare", str(path), "split.ratios=[0.34,0.33,0.33]"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "1 id(s) stripped of whitespace; 1 repeated header row(s) dropped (first: log.csv line 7)" in result.output
    folder = Path(result.output.split("prepared:")[1].split()[0])
    assert read_manifest(folder)["meta"]["cleaning"]["stripped_ids"] == 1


def test_split_files_with_padded_ids_still_match(tmp_path):
    write(tmp_path / "log.csv", "user,item\n1,1\n1,2\n1,3\n 2,1\n2,2\n2,3\n")
    for name, body in (("train", "1\t1\n 2 \t1\n"), ("valid", "1\t2\n2\t2\n"), ("test", "1\t3\n2\t 3\n")):
        write(tmp_path / "split" / f"{name}.tsv", "user_id\titem_id\n" + body)
    ds = load_dataset(str(tmp_path / "log.csv"), split={"method": "files", "path": str(tmp_path / "split")})
    assert ds.split_sizes() == {"train": 2, "valid": 2, "test": 2}
