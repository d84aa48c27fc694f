"""Amazon Fashion 5-core reviews (Ni, Li, McAuley, EMNLP 2019), from the shared data folder.

The file is concatenated pretty-printed JSON objects. 68 records repeat exactly; repeated
(user, item) pairs keep the latest review. Each interaction keeps its review text (``review``
column) so that review-based models can use it; item text built from reviews must use training
reviews only, which :func:`fusionrec.data.prepare.prepare` does after the split.
"""

from __future__ import annotations

import json

import pandas as pd

from fusionrec.config import StrictConfig
from fusionrec.data.dataset import Dataset, build_dataset
from fusionrec.data.filters import deduplicate
from fusionrec.data.paths import require_shared
from fusionrec.errors import DataError
from fusionrec.registry import DATASETS

SOURCE = (
    "it needs the Amazon Review Data (2018) Fashion 5-core file AMAZON_FASHION_5.json (Ni, Li, McAuley, "
    "EMNLP 2019; AMAZON_FASHION_5.json.gz from https://cseweb.ucsd.edu/~jmcauley/datasets/amazon_v2/, "
    "gunzipped) at <shared>/data/amazon-fashion-5core/AMAZON_FASHION_5.json"
)


class AmazonFashionOptions(StrictConfig):
    text_dim: int = 64


@DATASETS.register(
    "amazon-fashion",
    config=AmazonFashionOptions,
    task="top-k, rating, review",
    source=SOURCE,
    description="Amazon Review Data (2018) Fashion 5-core (406 users, 31 items, 3,176 reviews); "
    "needs the shared data folder",
)
def load_amazon_fashion(options: AmazonFashionOptions) -> Dataset:
    path = require_shared("amazon-fashion-5core", SOURCE) / "AMAZON_FASHION_5.json"
    records = list(iter_json_objects(path))
    frame = pd.DataFrame.from_records(records)
    frame = pd.DataFrame(
        {
            "user": frame["reviewerID"],
            "item": frame["asin"],
            "rating": frame["overall"].astype(float),
            "timestamp": frame["unixReviewTime"].astype("int64"),
            "review": (frame.get("summary", "").fillna("") + ". " + frame.get("reviewText", "").fillna("")).str.strip(),
            "style": frame.get("style").map(
                lambda s: "; ".join(f"{k.strip(':')} {v.strip()}" for k, v in s.items()) if isinstance(s, dict) else ""
            ),
        }
    )
    frame = deduplicate(frame, "last", str(path))
    styles = frame.groupby("item")["style"].agg(lambda s: " | ".join(sorted(set(x for x in s if x)))).rename("styles")
    dataset = build_dataset(
        "amazon-fashion",
        frame[["user", "item", "rating", "timestamp"]],
        items=styles.reset_index(),
        meta={"source": str(path), "text_dim": options.text_dim},
    )
    dataset.interactions["review"] = frame["review"].to_numpy()
    return dataset


def iter_json_objects(path):
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            return
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}; the file may be truncated"
            ) from None
        yield obj
