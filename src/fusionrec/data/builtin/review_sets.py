"""Review data sets from the shared data folder: Amazon Musical Instruments 5-core and the Yelp sample.

Both keep each interaction's review text (``review`` column) for the ``rating`` task, which builds
user and item documents from training reviews only (:mod:`fusionrec.data.reviews`). Read with the
review JSON readers (:mod:`fusionrec.data.readers.review_json`); repeated (user, item) pairs keep the
latest review. ``amazon-fashion`` lives in its own module.
"""

from __future__ import annotations

from fusionrec.config import StrictConfig
from fusionrec.data.dataset import Dataset
from fusionrec.data.paths import require_shared
from fusionrec.data.readers.review_json import read_amazon, read_yelp
from fusionrec.registry import DATASETS

MUSICAL_INSTRUMENTS_SOURCE = (
    "it needs the 2014 Amazon review data 5-core file reviews_Musical_Instruments_5.json.gz (McAuley et al., "
    "SIGIR 2015; https://jmcauley.ucsd.edu/data/amazon/) at "
    "<shared>/data/amazon-musical-instruments-5core/reviews_Musical_Instruments_5.json.gz"
)
YELP_SOURCE = (
    "it needs the Yelp review sample reviews_small.json (Yelp Open Dataset review layout) at "
    "<shared>/data/yelp-reviews-sample/reviews_small.json"
)


class ReviewSetOptions(StrictConfig):
    text_dim: int = 64


@DATASETS.register(
    "amazon-musical-instruments",
    config=ReviewSetOptions,
    task="rating, review",
    source=MUSICAL_INSTRUMENTS_SOURCE,
    description="Amazon (2014) Musical Instruments 5-core (1,429 users, 900 items, 10,261 reviews); "
    "the DeepCoNN/NARRE/MPCN/DAML benchmark; needs the shared data folder",
)
def load_amazon_musical_instruments(options: ReviewSetOptions) -> Dataset:
    folder = require_shared("amazon-musical-instruments-5core", MUSICAL_INSTRUMENTS_SOURCE)
    dataset = read_amazon(folder / "reviews_Musical_Instruments_5.json.gz", "amazon-musical-instruments", "last")
    dataset.meta["text_dim"] = options.text_dim
    return dataset


@DATASETS.register(
    "yelp-reviews-sample",
    config=ReviewSetOptions,
    task="rating (reader tests; too sparse for user modelling)",
    source=YELP_SOURCE,
    description="Yelp review sample (3,136 reviews, 3,056 users, 2,000 businesses; not a k-core); "
    "needs the shared data folder",
)
def load_yelp_reviews_sample(options: ReviewSetOptions) -> Dataset:
    folder = require_shared("yelp-reviews-sample", YELP_SOURCE)
    dataset = read_yelp(folder / "reviews_small.json", "yelp-reviews-sample", "last")
    dataset.meta["text_dim"] = options.text_dim
    return dataset
