"""``news-movielens-posters``: MovieLens latest-small with posters as a multimodal impression log.

Articles are the 188 movies that have a poster (title and genres as text, the poster as image:
``items.image_path``; `fusionrec features extract news-movielens-posters -m image --regions` encodes
the 7x7 EfficientNet-Lite0 grid). A user "clicks" a movie by rating it at least ``threshold``. One
impression per (user, time) at which the user gave such ratings: its clicks are those movies, its
non-clicks ``negatives`` movies drawn (seeded) among the poster movies the user never rated that
somebody had already rated by then (movies of the same period); its history is the user's clicks at
earlier times only (the latest first kept by the task). Impressions without an earlier click are
left out (``min_history``). Split: one global time cut (80/10/10 of impressions).

What it is: real users, real choices among real items, real images. What it is not: a news log.
Nobody was shown these candidates; the non-clicks are sampled, unrated movies (some may be liked),
and a rating is a deliberate act long after a movie's release, not a click in a feed.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from pydantic import Field

from fusionrec.config import StrictConfig
from fusionrec.data.dataset import Dataset
from fusionrec.data.paths import require_shared
from fusionrec.data.readers.mind import build_news_dataset
from fusionrec.data.readers.table import read_table_file
from fusionrec.registry import DATASETS

SOURCE = (
    "it needs MovieLens latest-small (<shared>/data/movielens-latest-small/ratings.csv, movies.csv) and the "
    "posters (<shared>/data/movielens-posters/<movieId>.jpg, github.com/Xia12121/MovieLens-dataset-with-poster)"
)
_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")


class NewsMovieLensOptions(StrictConfig):
    threshold: float = Field(4.0, description="a rating at least this is a click")
    negatives: int = Field(9, gt=0, description="non-clicked candidates per impression")
    min_history: int = Field(1, ge=0, description="earlier clicks an impression needs")
    seed: int = 0


@DATASETS.register(
    "news-movielens-posters",
    config=NewsMovieLensOptions,
    task="news",
    source=SOURCE,
    description="MovieLens latest-small's 188 poster movies as articles: impressions of a user's liked movies "
    "among sampled unrated ones of the same period; needs the shared data folder",
)
def load_news_movielens(options: NewsMovieLensOptions) -> Dataset:
    root = require_shared("movielens-latest-small", SOURCE)
    posters = require_shared("movielens-posters", SOURCE)
    movies = read_table_file(root / "movies.csv").rename(columns={"movieId": "item"})
    movies["item"] = pd.to_numeric(movies["item"]).astype(np.int64)
    movies = movies[movies["item"].map(lambda i: (posters / f"{i}.jpg").exists())].reset_index(drop=True)
    movies["image_path"] = movies["item"].map(lambda i: str(posters / f"{i}.jpg"))
    movies["year"] = movies["title"].str.extract(_YEAR, expand=False).fillna("")
    movies["genres"] = movies["genres"].replace("(no genres listed)", "").str.replace("|", " ")
    movies["title"] = movies["title"].str.replace(_YEAR, "", regex=True).str.strip() + " " + movies["genres"]
    ratings = read_table_file(root / "ratings.csv").rename(columns={"userId": "user", "movieId": "item"})
    for column, kind in (("user", np.int64), ("item", np.int64), ("timestamp", np.int64), ("rating", np.float64)):
        ratings[column] = pd.to_numeric(ratings[column]).astype(kind)
    ratings = ratings[ratings["item"].isin(movies["item"])].sort_values(["timestamp", "user", "item"], kind="stable")
    first_rated = ratings.groupby("item")["timestamp"].min()
    rated_by = ratings.groupby("user")["item"].agg(set)
    liked = ratings[ratings["rating"] >= options.threshold]
    rng = np.random.default_rng(options.seed)
    all_items = movies["item"].to_numpy()
    available_since = first_rated.reindex(all_items).to_numpy(dtype=np.float64)
    rows = []
    for (user, time), group in liked.groupby(["user", "timestamp"], sort=True):
        earlier = liked[(liked["user"] == user) & (liked["timestamp"] < time)]["item"].tolist()
        if len(earlier) < options.min_history:
            continue
        pool = all_items[(available_since <= time) & ~np.isin(all_items, list(rated_by[user]))]
        if not len(pool):
            continue
        negatives = rng.choice(pool, size=min(options.negatives, len(pool)), replace=False)
        clicked = group["item"].tolist()
        rows.append(
            {
                "impression": f"{user}@{time}",
                "user": user,
                "time": int(time),
                "history": earlier,
                "candidates": clicked + negatives.tolist(),
                "labels": [1] * len(clicked) + [0] * len(negatives),
            }
        )
    behaviors = pd.DataFrame(rows).sort_values("time", kind="stable")
    return build_news_dataset(
        "news-movielens-posters",
        behaviors,
        movies[["item", "title", "genres", "year", "image_path"]],
        meta={
            "source": str(root),
            "license": "MovieLens: research use, cite GroupLens",
            "options": options.model_dump(),
        },
    )
