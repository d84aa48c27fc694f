"""MovieLens latest-small with poster images, read from the project's shared data folder.

Items are the 9,724 rated movies. Titles, genres and user tags form the item text; genres are
also a categorical modality; ``items.image_path`` points at the poster of the 188 movies that
have one (``fusionrec features extract movielens-small --modality image`` turns them into an
image modality; the others are flagged missing).

Tags are written by users on movies, so a tag can reveal a held-out interaction (a user tags
the movie that is their test item). Each rating keeps the tags its user wrote on that movie
(``interactions.tags``; tags without a rating are dropped), and the item text is built after the
split from the tags of *training* ratings only (:func:`add_training_text`, the data set's
``after_split`` step). Reading the source alone (:func:`load_movielens_small`) therefore gives
no ``text`` modality yet.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from pydantic import Field

from fusionrec.config import StrictConfig
from fusionrec.data.content import category_modality, text_modality, training_item_mask
from fusionrec.data.dataset import TRAIN, Dataset, build_dataset
from fusionrec.data.paths import require_shared
from fusionrec.data.readers.table import read_table_file
from fusionrec.registry import DATASETS

SOURCE = (
    "it needs GroupLens MovieLens latest-small (ml-latest-small.zip from "
    "https://grouplens.org/datasets/movielens/latest/, unzipped so that <shared>/data/movielens-latest-small/ "
    "holds ratings.csv, movies.csv and tags.csv), optionally with posters as "
    "<shared>/data/movielens-posters/<movieId>.jpg (github.com/Xia12121/MovieLens-dataset-with-poster, poster/)"
)

_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")


class MovieLensSmallOptions(StrictConfig):
    text_dim: int = 64
    posters_only: bool = Field(
        False,
        description="keep only the movies that have a poster (188) and their ratings: "
        "a small set where every item has an image",
    )


def add_training_text(dataset: Dataset) -> Dataset:
    """Item text (``items.tags``, ``items.text``, the ``text`` modality) from the tags of training
    ratings only: a tag written on an item that is in its author's valid/test split never reaches
    the item's text."""
    items = dataset.items
    assert items is not None
    inter = dataset.interactions
    train = inter[(inter["split"].to_numpy() == TRAIN) & inter["tags"].notna().to_numpy()]
    per_item = train.groupby("item")["tags"].agg(lambda t: ", ".join(sorted({x for s in t for x in s.split("|")})))
    tags = per_item.reindex(range(dataset.num_items)).fillna("")
    items["tags"] = tags.to_numpy(dtype=object)
    items["text"] = (
        items["title"].fillna("")
        + " ("
        + items["year"].fillna("")
        + "). Genres: "
        + items["genres"].fillna("").str.replace("|", ", ")
        + ". Tags: "
        + items["tags"]
        + "."
    )
    dataset.modalities["text"] = text_modality(
        items["text"].tolist(),
        int(dataset.meta.get("text_dim", 64)),
        "title, genres, tags of training ratings",
        fit=training_item_mask(dataset),
    )
    return dataset


@DATASETS.register(
    "movielens-small",
    config=MovieLensSmallOptions,
    task="top-k, sequential, ctr, multimodal",
    after_split=add_training_text,
    source=SOURCE,
    description="GroupLens MovieLens latest-small (610 users, 9,724 movies) + 188 posters; text: "
    "title, genres and the tags of training ratings only; needs the shared data folder",
)
def load_movielens_small(options: MovieLensSmallOptions) -> Dataset:
    root = require_shared("movielens-latest-small", SOURCE)
    posters = root.parent / "movielens-posters"
    ratings = read_table_file(root / "ratings.csv").rename(columns={"userId": "user", "movieId": "item"})
    movies = read_table_file(root / "movies.csv").rename(columns={"movieId": "item"})
    tags = read_table_file(root / "tags.csv").rename(columns={"userId": "user", "movieId": "item"})
    movies["year"] = movies["title"].str.extract(_YEAR, expand=False).fillna("")
    movies["title"] = movies["title"].str.replace(_YEAR, "", regex=True).str.strip()
    movies["genres"] = movies["genres"].replace("(no genres listed)", "")
    has_poster = movies["item"].map(lambda i: (posters / f"{i}.jpg").exists())
    movies["image_path"] = np.where(has_poster, movies["item"].map(lambda i: str(posters / f"{i}.jpg")), None)

    if options.posters_only:
        movies = movies[has_poster.to_numpy()].reset_index(drop=True)
        ratings = ratings[ratings["item"].isin(movies["item"])]
    # Each rating carries the tags its user wrote on that movie ("|"-joined); tags without a rating go.
    pair_tags = (
        tags.assign(tag=tags["tag"].fillna("").str.replace("|", "/").str.strip())
        .loc[lambda t: t["tag"] != ""]
        .groupby(["user", "item"])["tag"]
        .agg(lambda t: "|".join(sorted(set(t))))
        .rename("tags")
    )
    ratings = ratings.merge(pair_tags, left_on=["user", "item"], right_index=True, how="left")
    rated_pairs = pd.MultiIndex.from_frame(ratings[["user", "item"]])
    dataset = build_dataset(
        "movielens-small",
        ratings[["user", "item", "rating", "timestamp"]],
        items=movies,
        meta={
            "source": str(root),
            "license": "MovieLens: research use, cite GroupLens",
            "text_dim": options.text_dim,
            "tags_without_rating": int((~pair_tags.index.isin(rated_pairs)).sum()),
        },
    )
    dataset.interactions["tags"] = ratings["tags"].to_numpy(dtype=object)
    items = dataset.items
    assert items is not None
    dataset.modalities["genre"] = category_modality(items["genres"].fillna("").tolist(), "genres")
    return dataset
