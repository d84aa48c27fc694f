"""``bing-news-dkn``: DKN's sample of Bing News clicks (469 users, real titles), as impressions.

Read at run time from ``<shared>/data/bing-news-dkn`` (``raw_train.txt``, ``raw_test.txt``; MIT,
hwwang55/DKN). Text only (titles, entity names); see :mod:`fusionrec.data.readers.dkn` for how lines
become impressions and the per-user time-ordered split.
"""

from __future__ import annotations

from pydantic import Field

from fusionrec.config import StrictConfig
from fusionrec.data.dataset import Dataset
from fusionrec.data.paths import require_shared
from fusionrec.data.readers.dkn import read_dkn_folder
from fusionrec.registry import DATASETS

SOURCE = (
    "it needs DKN's Bing News sample (github.com/hwwang55/DKN, data/news/raw_train.txt and raw_test.txt) "
    "in <shared>/data/bing-news-dkn/"
)


class BingNewsOptions(StrictConfig):
    negatives: int = Field(4, gt=0, description="non-clicked lines of the user nearest to each click")


@DATASETS.register(
    "bing-news-dkn",
    config=BingNewsOptions,
    task="news",
    source=SOURCE,
    description="DKN's Bing News clicks (469 users, real titles, text only) as impressions; needs the shared data folder",
)
def load_bing_news(options: BingNewsOptions) -> Dataset:
    root = require_shared("bing-news-dkn", SOURCE)
    dataset = read_dkn_folder(root, "bing-news-dkn", options.negatives)
    dataset.meta["license"] = "MIT (hwwang55/DKN)"
    return dataset
