"""Review JSON readers (amazon-json, yelp-json) and the review data sets: layouts, gzip, concatenated
objects, and one clear line (or a counted skip) for each kind of bad input."""

from __future__ import annotations

import gzip
import json

import pytest

from fusionrec.config import validate
from fusionrec.data.builtin.review_sets import (
    ReviewSetOptions,
    load_amazon_musical_instruments,
    load_yelp_reviews_sample,
)
from fusionrec.data.config import DataConfig
from fusionrec.data.readers import detect_format, read_path
from fusionrec.data.readers.review_json import EmptyReviews
from fusionrec.errors import DataError

A2014 = [
    {
        "reviewerID": "U1",
        "asin": "I1",
        "overall": 5.0,
        "reviewText": "great strings",
        "summary": "Five",
        "unixReviewTime": 1400000000,
    },
    {
        "reviewerID": "U2",
        "asin": "I1",
        "overall": 2.0,
        "reviewText": "buzzing noise",
        "summary": "meh",
        "unixReviewTime": 1400000100,
    },
    {"reviewerID": "U1", "asin": "I2", "overall": 4.0, "reviewText": "", "summary": "", "unixReviewTime": 1400000200},
]
A2018 = [{**r, "verified": True, "style": {"Size:": " M"}, "vote": "2"} for r in A2014]
YELP = [
    {
        "review_id": "r1",
        "user_id": "u1",
        "business_id": "b1",
        "stars": 4.0,
        "text": "tasty",
        "date": "2016-03-09 00:00:00",
    },
    {
        "review_id": "r2",
        "user_id": "u2",
        "business_id": "b1",
        "stars": 1.0,
        "text": "cold food",
        "date": "2017-01-02 10:00:00",
    },
]


def jsonl(records):
    return "\n".join(json.dumps(r) for r in records) + "\n"


def read(path, **config):
    return read_path(path, validate(DataConfig, {"name": str(path), **config}, "data"))


def test_amazon_2014_json_lines_gzip(tmp_path):
    path = tmp_path / "reviews_Toys_5.json.gz"
    path.write_bytes(gzip.compress(jsonl(A2014).encode()))
    assert detect_format(path) == "amazon-json"
    with pytest.warns(EmptyReviews, match="1 review"):
        ds = read(path)
    assert ds.meta["format"] == "amazon-2014" and ds.meta["cleaning"]["empty_reviews"] == 1
    assert ds.num_users == 2 and ds.num_items == 2
    assert sorted(ds.interactions["rating"].tolist()) == [2.0, 4.0, 5.0]
    assert "Five. great strings" in ds.interactions["review"].tolist()


def test_amazon_2018_concatenated_pretty_printed_objects(tmp_path):
    path = tmp_path / "AMAZON_X_5.json"
    path.write_text("\n".join(json.dumps(r, indent=2) for r in A2018))
    with pytest.warns(EmptyReviews):
        ds = read(path)
    assert ds.meta["format"] == "amazon-2018" and ds.num_interactions == 3


def test_yelp_json_lines(tmp_path):
    path = tmp_path / "review.json"
    path.write_text(jsonl(YELP))
    assert detect_format(path) == "yelp-json"
    ds = read(path)
    assert ds.num_interactions == 2 and ds.interactions["timestamp"].min() > 1.4e9
    assert set(ds.interactions["review"]) == {"tasty", "cold food"}


def test_a_malformed_json_line_is_one_line_naming_it(tmp_path):
    path = tmp_path / "reviews.json"
    path.write_text(jsonl(A2014[:2]) + '{"reviewerID": "U3", "asin": \n' + jsonl(A2014[2:]))
    with pytest.raises(DataError, match=r"reviews.json: line 3 is not valid JSON .*fix or delete that line") as err:
        read(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "record, message",
    [
        ({"asin": "I9", "overall": 3.0}, r"line 3: the review has no 'reviewerID'"),
        ({"reviewerID": "U9", "asin": "I9", "overall": "five"}, r"line 3: overall is 'five', not a number"),
    ],
)
def test_a_record_without_user_or_rating_is_refused(tmp_path, record, message):
    path = tmp_path / "reviews.json"
    path.write_text(jsonl([*A2014[:2], record]))
    with pytest.raises(DataError, match=message):
        read(path)


def test_a_review_of_an_item_the_item_file_lacks_is_refused(tmp_path):
    folder = tmp_path / "toys"
    folder.mkdir()
    (folder / "reviews.json").write_text(jsonl(A2014))
    (folder / "meta_toys.json").write_text(jsonl([{"asin": "I1", "title": "Guitar strings"}]))
    with pytest.raises(
        DataError, match=r"line 3: a review of item 'I2', which the item file meta_toys.json does not list"
    ):
        read(folder)
    (folder / "meta_toys.json").write_text(jsonl([{"asin": "I1", "title": "Strings"}, {"asin": "I2", "title": "Pick"}]))
    with pytest.warns(EmptyReviews):
        ds = read(folder)
    assert ds.items["title"].tolist() == ["Strings", "Pick"]


def test_repeated_pairs_follow_data_duplicates(tmp_path):
    path = tmp_path / "reviews.json"
    path.write_text(jsonl([A2014[0], A2014[1], {**A2014[0], "overall": 1.0, "unixReviewTime": 1500000000}]))
    with pytest.raises(DataError, match="data.duplicates"):
        read(path)
    ds = read(path, duplicates="last")
    assert ds.num_interactions == 2 and 1.0 in ds.interactions["rating"].tolist()


def test_the_shared_review_sets(shared):
    mi = load_amazon_musical_instruments(ReviewSetOptions())
    assert (mi.num_interactions, mi.num_users, mi.num_items) == (10_261, 1_429, 900)
    assert mi.meta["format"] == "amazon-2014" and mi.name == "amazon-musical-instruments"
    yelp = load_yelp_reviews_sample(ReviewSetOptions())
    assert yelp.name == "yelp-reviews-sample"
    assert yelp.num_users == 3_056 and yelp.num_items == 2_000 and yelp.num_interactions == 3_134  # 2 repeats kept last
