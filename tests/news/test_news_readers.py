"""News readers and built-ins: MIND (behaviors.tsv + news.tsv), DKN lines, bad input as one clear line or
counted and reported, the synthetic generator's planted signal, and the shared data sets when present."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data.config import DataConfig
from fusionrec.data.paths import shared_dir
from fusionrec.data.readers import detect_format, read_path
from fusionrec.data.readers.dkn import dkn_impressions, read_dkn_lines
from fusionrec.data.readers.mind import MissingNews, count_history_leaks
from fusionrec.errors import DataError

NEWS = (
    "N1\tsports\tfootball\tLocal team wins the cup\tabstract\turl\t[]\t[]\n"
    "N2\tnews\tpolitics\tElection results are in\t\t\t\t\n"
    "N3\tsports\ttennis\tTennis star retires\t\n"
    "N4\tfood\trecipes\tTen soups for winter\t\n"
)


def mind_folder(tmp_path: Path, behaviors: str, news: str = NEWS) -> Path:
    folder = tmp_path / "mind"
    folder.mkdir(exist_ok=True)
    (folder / "behaviors.tsv").write_text(behaviors, encoding="utf-8")
    (folder / "news.tsv").write_text(news, encoding="utf-8")
    return folder


BEHAVIORS = (
    "1\tU1\t11/11/2019 9:05:58 AM\tN1 N2\tN3-1 N4-0\n"
    "2\tU2\t11/12/2019 9:05:58 AM\tN3\tN1-0 N2-1 N4-0\n"
    "3\tU1\t11/13/2019 10:00:00 PM\tN1 N2\tN4-1 N2-0\n"
    "4\tU2\t11/14/2019 9:05:58 AM\tN3\tN4-1 N1-0\n"
    "5\tU1\t11/15/2019 9:05:58 AM\tN1 N2\tN2-1 N3-0\n"
)


def read(folder):
    return read_path(folder, DataConfig(name=str(folder)))


def test_mind_folder_becomes_impressions(tmp_path):
    folder = mind_folder(tmp_path, BEHAVIORS)
    assert detect_format(folder) == "mind"
    ds = read(folder)
    table = ds.tables["impressions"]
    assert ds.meta["split_records"] == "impressions" and len(table) == 5 and ds.num_items == 4
    assert table["split"].tolist() == [0, 0, 0, 0, 2]  # one global time cut; 5 impressions leave valid empty
    first = table.iloc[0]
    assert [ds.item_ids[i] for i in first["history"]] == ["N1", "N2"]
    assert [ds.item_ids[i] for i in first["candidates"]] == ["N3", "N4"] and first["labels"].tolist() == [1, 0]
    assert int(table["time"].iloc[2] - table["time"].iloc[1]) == 86_400 + 22 * 3600 - (9 * 3600 + 5 * 60 + 58)
    assert ds.num_interactions == 5 and ds.items["title"].iloc[0] == "Local team wins the cup"
    assert ds.meta["history_leaks"] == 0


def test_malformed_impression_token_is_one_line(tmp_path):
    folder = mind_folder(tmp_path, BEHAVIORS.replace("N4-0\n", "N4\n", 1))
    with pytest.raises(DataError, match=r"behaviors.tsv line 1: impression token 'N4' is not NEWS_ID-LABEL"):
        read(folder)
    bad_time = mind_folder(tmp_path, BEHAVIORS.replace("11/12/2019 9:05:58 AM", "yesterday"))
    with pytest.raises(DataError, match=r"line 2: time 'yesterday'"):
        read(bad_time)


def test_missing_news_and_clickless_impressions_are_counted_and_reported(tmp_path):
    behaviors = BEHAVIORS + "6\tU3\t11/15/2019 9:06:00 AM\tN9 N1 N8\tN2-0 N7-1 N3-0\n"
    with pytest.warns(MissingNews, match=r"2 history and 1 candidate entries name news missing"):
        ds = read(mind_folder(tmp_path, behaviors))
    assert ds.meta["missing_news"] == {
        "history_entries": 2,
        "history_ids": 2,
        "candidate_entries": 1,
        "candidate_ids": 1,
    }
    assert ds.meta["impressions_without_click"] == 1  # its only click named a missing news
    row = ds.tables["impressions"].iloc[-1]
    assert [ds.item_ids[i] for i in row["history"]] == ["N1"] and row["labels"].tolist() == [0, 0]


def test_an_image_that_cannot_be_decoded_is_counted_not_raised(tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image

    folder = mind_folder(tmp_path, BEHAVIORS)
    (folder / "images").mkdir()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(folder / "images" / "N1.jpg")
    (folder / "images" / "N2.jpg").write_bytes(b"not a jpeg at all")
    ds = read(folder)
    assert ds.items["image_path"].notna().sum() == 2

    from fusionrec.features import extract_features
    from fusionrec.features.vision import ImageEncoder

    class Tiny(ImageEncoder):  # no weights to load: the decoding path is what is tested
        name = "tiny"
        default_batch_size = 4

        @property
        def cache_id(self):
            return "tiny-test"

        def _load(self):
            import torch

            return torch.nn.Conv2d(3, 4, 32, stride=32)

        def _features(self, model, pixels):
            return model(pixels)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = extract_features(ds, modality="image", encoder=Tiny(), progress=False, write=False)
    assert [Path(f).name for _, f, _ in result.corrupt] == ["N2.jpg"]
    assert result.present == 1 and any("corrupt image" in str(w.message) for w in caught)
    assert result.modalities["image"].mask.tolist() == [True, False, False, False]


def test_dkn_lines_become_per_user_impressions_without_look_ahead(tmp_path):
    folder = tmp_path / "dkn"
    folder.mkdir()
    lines = [f"u1\ttitle {i}\t{int(i % 3 == 0)}\t{i}:e{i}" for i in range(14)] + [
        "u2\tother\t1\t1:x",
        "u2\tthing\t0\t2:y",
    ]
    (folder / "raw_train.txt").write_text("\r\n".join(lines) + "\r\n", encoding="ascii")
    (folder / "raw_test.txt").write_text("u1\tlate news\t1\t3:z\nu1\tlate other\t0\t4:w\n", encoding="ascii")
    assert detect_format(folder) == "dkn"
    behaviors, news = dkn_impressions(read_dkn_lines(folder), negatives=2)
    u1 = behaviors[behaviors["user"] == "u1"]  # clicks at positions 0, 3, 6, 9, 12, 14 (the test file's first line)
    assert u1["time"].tolist() == [0, 3, 6, 9, 12, 14]
    assert u1["split"].tolist() == ["train"] * 4 + ["valid", "test"]
    titles = dict(zip(news["item"], news["title"]))
    sixth = u1.iloc[3]  # the click at position 9: 8 and 10 are nearest, but 10 is in the valid segment (10-12)
    assert [titles[c] for c in sixth["candidates"]] == ["title 9", "title 7", "title 8"]
    assert sixth["labels"] == [1, 0, 0]
    assert [titles[c] for c in u1.iloc[5]["candidates"]] == ["late news", "title 13", "late other"]  # test: 13-15
    assert [titles[h] for h in sixth["history"]] == ["title 0", "title 3", "title 6"]  # earlier clicks only
    ds = read(folder)
    assert ds.meta["history_leaks"] == 0 == count_history_leaks(ds.tables["impressions"])
    assert ds.meta["impressions_without_non_click"] == 0 and len(ds.tables["impressions"]) == 7
    with pytest.raises(DataError, match=r"raw_train.txt line 2: expected user<TAB>title<TAB>label"):
        (folder / "raw_train.txt").write_text("u\tt\t1\nu\tt\tx\n")
        read(folder)


def test_synthetic_plants_a_visual_signal_in_one_region():
    from fusionrec.data import load_dataset

    ds = load_dataset("news-synthetic", options={"num_users": 30, "num_news": 50, "num_impressions": 200, "seed": 4})
    items, regions = ds.items, ds.modalities["image_regions"]
    norms = np.linalg.norm(regions.values, axis=-1)  # (I, R)
    has = regions.mask
    assert (norms[has].argmax(1) == items["planted_region"].to_numpy()[has]).mean() > 0.9
    table = ds.tables["impressions"]
    users = ds.users.set_index("user")
    match = [
        (items["cluster"].iloc[c] == users.loc[ds.user_ids[u], "cluster"], y)
        for u, cs, ys in zip(table["user"], table["candidates"], table["labels"])
        for c, y in zip(cs, ys)
    ]
    hit = np.array(match, dtype=float)
    assert hit[hit[:, 0] == 1, 1].mean() > hit[hit[:, 0] == 0, 1].mean() + 0.2  # the preferred cluster is clicked more
    assert ds.meta["history_leaks"] == 0


@pytest.mark.skipif(shared_dir("data/bing-news-dkn") is None, reason="shared/data/bing-news-dkn not available")
def test_bing_news_from_the_shared_folder():
    from fusionrec.data import load_dataset

    ds = load_dataset("bing-news-dkn")
    assert ds.num_users == 469 and ds.meta["history_leaks"] == 0
    assert ds.num_items == 8668 + 407 and ds.record_split_sizes() == {"train": 2491, "valid": 2085, "test": 2000}


@pytest.mark.skipif(shared_dir("data/movielens-posters") is None, reason="shared/data/movielens-posters not available")
def test_movielens_posters_impressions_hold_earlier_likes_only():
    import pandas as pd

    from fusionrec.data import load_dataset

    ds = load_dataset("news-movielens-posters")
    table, ids = ds.tables["impressions"], ds.item_ids
    assert ds.num_items == 188 and ds.items["image_path"].notna().all() and ds.meta["history_leaks"] == 0
    ratings = pd.read_csv(shared_dir("data/movielens-latest-small") / "data" / "movielens-latest-small" / "ratings.csv")
    liked_at = ratings[ratings["rating"] >= 4].set_index(["userId", "movieId"])["timestamp"]
    sample = table.sample(200, random_state=0)
    for row in sample.itertuples():
        user = int(ds.user_ids[row.user])
        assert all(liked_at[(user, int(ids[i]))] < row.time for i in row.history)  # liked strictly earlier
        clicked = [int(ids[c]) for c, y in zip(row.candidates, row.labels) if y]
        assert all(liked_at[(user, c)] == row.time for c in clicked)
        rated = set(ratings.loc[ratings["userId"] == user, "movieId"])
        assert not {int(ids[c]) for c, y in zip(row.candidates, row.labels) if not y} & rated
