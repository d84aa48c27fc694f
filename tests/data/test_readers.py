"""Readers on small files written here: MMRec, RecBole atomic files, CSV / TSV / Parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import load_dataset
from fusionrec.data.dataset import TEST, TRAIN, VALID
from fusionrec.data.prepare import detect_format
from fusionrec.data.readers import read_mmrec, read_recbole, read_table


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- MMRec ------------------------------------------------------------------------------------

MMREC_INTER = (
    "userID\titemID\trating\ttimestamp\tx_label\n"
    "0\t0\t5\t100\t0\n0\t1\t3\t101\t0\n0\t2\t4\t102\t1\n0\t3\t4\t103\t2\n"
    "1\t1\t2\t100\t0\n1\t3\t1\t104\t0\n1\t0\t5\t105\t2\n"
    "2\t2\t3\t107\t0\n2\t4\t5\t108\t1\n"
)


def make_mmrec(folder: Path, inter: str = MMREC_INTER, items: int = 6) -> Path:
    write(folder / "toy.inter", inter)
    rng = np.random.default_rng(0)
    np.save(folder / "image_feat.npy", rng.standard_normal((items, 4)).astype(np.float32))
    np.save(folder / "text_feat.npy", rng.standard_normal((items, 3)).astype(np.float32))
    return folder


def test_mmrec_reader(tmp_path):
    folder = make_mmrec(tmp_path / "toy")
    ds = read_mmrec(folder)
    assert ds.name == "toy" and (ds.num_users, ds.num_items, ds.num_interactions) == (3, 6, 9)
    # Item index i is itemID i, and feature row i belongs to it, including item 5 with no interaction.
    assert list(ds.item_ids) == [str(i) for i in range(6)]
    np.testing.assert_array_equal(ds.modalities["image"].values, np.load(folder / "image_feat.npy"))
    np.testing.assert_array_equal(ds.modalities["text"].values, np.load(folder / "text_feat.npy"))
    assert ds.modalities["image"].mask.all()
    assert ds.split_sizes() == {"train": 5, "valid": 2, "test": 2}
    row = ds.interactions[(ds.interactions["user"] == 1) & (ds.interactions["item"] == 0)].iloc[0]
    assert (row["rating"], row["timestamp"], row["split"]) == (5.0, 105, TEST)
    assert detect_format(folder) == "mmrec"


def test_mmrec_through_prepare_keeps_the_column_split(tmp_path):
    folder = make_mmrec(tmp_path / "toy")
    ds = load_dataset(str(folder), split={"method": "column"})
    assert ds.split_sizes() == {"train": 5, "valid": 2, "test": 2}
    assert set(ds.modalities) == {"image", "text"}


# -- RecBole ----------------------------------------------------------------------------------


def make_recbole(folder: Path) -> Path:
    write(
        folder / "toy.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "u1\tm1\t4\t10\nu1\tm2\t3\t11\nu2\tm2\t5\t12\nu2\tm3\t1\t13\nu3\tm1\t2\t14\n",
    )
    write(
        folder / "toy.item",
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "m1\tAlpha\t1995\tAction Drama\nm2\tBeta\t1996\tComedy\nm3\tGamma\t1997\tDrama\nm9\tUnused\t1990\tNoir\n",
    )
    write(folder / "toy.user", "user_id:token\tage:token\tgender:token\nu1\t20\tF\nu2\t30\tM\nu3\t40\tF\n")
    write(folder / "toy.kg", "head_id:token\trelation_id:token\ttail_id:token\ne1\tdirected_by\te7\ne2\tgenre\te8\n")
    write(folder / "toy.link", "item_id:token\tentity_id:token\nm1\te1\nm2\te2\nm9\te9\n")
    return folder


def test_recbole_reader(tmp_path):
    folder = make_recbole(tmp_path / "toy")
    ds = read_recbole(folder)
    assert (ds.num_users, ds.num_items, ds.num_interactions) == (3, 3, 5)
    assert list(ds.user_ids) == ["u1", "u2", "u3"] and list(ds.item_ids) == ["m1", "m2", "m3"]
    assert ds.items["title"].tolist() == ["Alpha", "Beta", "Gamma"]  # aligned to the item index
    assert ds.items["genres"].tolist() == ["Action Drama", "Comedy", "Drama"]
    assert ds.users["gender"].tolist() == ["F", "M", "F"]
    assert ds.kg[["head", "relation", "tail"]].values.tolist() == [["e1", "directed_by", "e7"], ["e2", "genre", "e8"]]
    # Links are mapped to item indices; m9 has no interaction and is dropped.
    assert ds.item_entities.values.tolist() == [[0, "e1"], [1, "e2"]]
    assert ds.interactions["timestamp"].tolist() == [10, 11, 12, 13, 14]
    assert not ds.is_split
    assert detect_format(folder) == "recbole"


def test_recbole_name_comes_from_the_single_inter_file(tmp_path):
    folder = make_recbole(tmp_path / "other-folder-name")
    assert read_recbole(folder).name == "toy"


# -- CSV / TSV / Parquet ----------------------------------------------------------------------

FRAME = pd.DataFrame(
    {
        "customer": ["a", "a", "b", "c", "c", "c"],
        "sku": ["x", "y", "x", "x", "y", "z"],
        "stars": [5, 4, 3, 2, 1, 5],
        "when": [1, 2, 3, 4, 5, 6],
        "extra": list("pqrstu"),
    }
)
MAPPING = {"user": "customer", "item": "sku", "rating": "stars", "timestamp": "when"}


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".txt", ".csv.gz"])
def test_table_reader_with_mapping(tmp_path, suffix):
    path = tmp_path / f"log{suffix}"
    if suffix == ".parquet":
        FRAME.to_parquet(path)
    else:
        FRAME.to_csv(path, sep="\t" if suffix in (".tsv", ".txt") else ",", index=False)
    ds = read_table(path, MAPPING)
    assert ds.name == "log"
    assert (ds.num_users, ds.num_items, ds.num_interactions) == (3, 3, 6)
    assert ds.interactions["rating"].tolist() == [5, 4, 3, 2, 1, 5]
    assert ds.interactions["timestamp"].tolist() == [1, 2, 3, 4, 5, 6]
    assert list(ds.user_ids) == ["a", "b", "c"]


def test_table_reader_recognises_common_names_and_a_split_column(tmp_path):
    path = write(
        tmp_path / "ratings.csv",
        "userId,movieId,rating,timestamp,split\n"
        "1,10,4.5,100,train\n1,11,3,101,valid\n2,10,2,102,test\n2,12,5,103,0\n10,12,1,104,2\n",
    )
    ds = read_table(path)
    assert list(ds.user_ids) == ["1", "2", "10"]  # numeric order
    assert ds.interactions["split"].tolist() == [TRAIN, VALID, TEST, TRAIN, TEST]
    assert ds.interactions["rating"].dtype == np.float32


def test_table_through_prepare(tmp_path):
    path = tmp_path / "log.csv"
    FRAME.to_csv(path, index=False)
    ds = load_dataset(str(path), columns=MAPPING, split={"method": "loo"})
    assert ds.num_interactions == 6 and ds.split_sizes() == {
        "train": 3,
        "valid": 1,
        "test": 2,
    }  # users with 2, 1, 3 rows


def test_duplicates_policy(tmp_path):
    path = write(tmp_path / "d.csv", "user,item,rating,timestamp\n1,1,1,5\n1,1,4,9\n1,1,2,7\n2,1,3,1\n")
    first = read_table(path, duplicates="first")
    last = read_table(path, duplicates="last")
    assert first.num_interactions == last.num_interactions == 2
    assert first.interactions["rating"].tolist()[0] == 1.0
    assert last.interactions["rating"].tolist()[0] == 4.0  # latest timestamp (9)


# -- every registered reader --------------------------------------------------------------------


def _prepared_folder(tmp_path: Path) -> Path:
    from fusionrec.data.config import DataConfig
    from fusionrec.data.prepare import prepare

    return prepare(DataConfig(name=str(make_mmrec(tmp_path / "src")), split={"method": "column"}))


def _kg_folder(folder: Path, files: dict[str, str]) -> Path:
    """A knowledge-graph folder (the kg task's readers): triples, not interactions."""
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "log.csv"
    FRAME.to_csv(path, index=False)
    return path


SAMPLES = {  # registered reader -> a small source in its format (a new reader needs a line here)
    "fusionrec": _prepared_folder,
    "recbole": lambda tmp: make_recbole(tmp / "rb"),
    "mmrec": lambda tmp: make_mmrec(tmp / "mm"),
    "csv": _csv,
    "criteo": lambda tmp: write(  # the ctr family's readers (more in tests/ctr/test_ctr_readers.py)
        tmp / "day_0.txt", "\n".join("\t".join([str(i % 2), *["1"] * 13, *["0a"] * 26]) for i in range(4)) + "\n"
    ),
    "ctr": lambda tmp: write(tmp / "clicks.csv", "user,item,label,hour\n1,1,1,3\n1,2,0,4\n2,1,0,5\n"),
    "amazon-json": lambda tmp: write(  # the rating family's readers (more in tests/rating/test_review_readers.py)
        tmp / "reviews_Toys_5.json",
        '{"reviewerID": "U1", "asin": "I1", "overall": 5.0, "reviewText": "great", "unixReviewTime": 1}\n'
        '{"reviewerID": "U2", "asin": "I1", "overall": 2.0, "reviewText": "poor", "unixReviewTime": 2}\n',
    ),
    "yelp-json": lambda tmp: write(
        tmp / "review.json",
        '{"user_id": "u1", "business_id": "b1", "stars": 4.0, "text": "tasty", "date": "2016-03-09"}\n',
    ),
    "triples": lambda tmp: _kg_folder(
        tmp / "kg", {"train.txt": "a\tr\tb\n", "valid.txt": "b\tr\tc\n", "test.txt": "c\tr\ta\n"}
    ),
    "polyvore": lambda tmp: _kg_folder(  # the outfit family's readers (more in tests/outfit/test_outfit_data.py)
        tmp / "polyvore",
        {
            f"{split}_no_dup.json": f'{{"{n}": {{"upper": {{"index": 1, "name": "red top"}}, '
            f'"bottom": {{"index": 2, "name": "blue jeans"}}}}}}'
            for n, split in enumerate(("train", "valid", "test"))
        },
    ),
    "pog": lambda tmp: _kg_folder(
        tmp / "pog",
        {
            "outfit_data.txt": "o1,a;b\no2,c;d\no3,a;d\n",
            "item_data.txt": "a,1,u,red top\nb,2,u,jeans\nc,1,u,tee\nd,2,u,skirt\n",
            "user_data.txt": "u1,a;c,o1\n",
        },
    ),
    "mind": lambda tmp: _kg_folder(  # the news family's readers (more in tests/news/test_news_readers.py)
        tmp / "mind",
        {
            "behaviors.tsv": "1\tU1\t11/11/2019 9:05:58 AM\tN1\tN2-1 N3-0\n2\tU1\t11/12/2019 9:05:58 AM\tN1 N2\tN3-1 N1-0\n",
            "news.tsv": "N1\tsports\tgolf\tA golf title\nN2\tnews\tus\tA news title\nN3\tfood\tsoup\tSoup\n",
        },
    ),
    "dkn": lambda tmp: _kg_folder(tmp / "dkn", {"raw_train.txt": "0\tsome title\t1\t1:a\n0\tother title\t0\t2:b\n"}),
    "openke": lambda tmp: _kg_folder(
        tmp / "openke",
        {
            "entity2id.txt": "2\na\t0\nb\t1\n",
            "relation2id.txt": "1\nr\t0\n",
            **{
                f"{split}2id.txt": f"1\n{h} {t} 0\n"
                for split, h, t in (("train", 0, 1), ("valid", 1, 0), ("test", 1, 1))
            },
        },
    ),
}


def _registered_readers():
    from fusionrec.data.readers import format_names

    return [name for name in format_names() if name != "auto"]


@pytest.mark.parametrize("name", _registered_readers())
def test_every_reader_detects_and_reads_its_sample(name, tmp_path):
    from fusionrec.data.config import DataConfig
    from fusionrec.data.readers import read_path
    from fusionrec.registry import READERS

    assert name in SAMPLES, f"reader {name!r} has no sample source in tests/data/test_readers.py (SAMPLES)"
    source = SAMPLES[name](tmp_path)
    assert READERS.get(name).detect(source)
    assert detect_format(source) == name  # auto finds it
    others = [n for n in SAMPLES if n != name and READERS.entry(n).meta["order"] < READERS.entry(name).meta["order"]]
    assert not [n for n in others if READERS.get(n).detect(source)], "an earlier reader claims this sample"
    ds = read_path(source, DataConfig(name=str(source), format=name, columns=MAPPING if name == "csv" else {}))
    if ds.is_kg_completion:  # knowledge-graph readers give split triples over entities (docs/kg.md)
        assert ds.kg_split_sizes()["train"] > 0 and ds.num_items > 0
        return
    assert ds.num_interactions > 0 and ds.num_users > 0 and ds.num_items > 0
