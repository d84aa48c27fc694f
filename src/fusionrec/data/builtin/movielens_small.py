"""MovieLens latest-small with poster images, read from the project's shared data folder.

Items are the 9,724 rated movies. Titles, genres and user tags form the item text; genres are
also a categorical modality; ``items.image_path`` points at the poster of the 188 movies that
have one (``fusionrec features extract movielens-small --modality image`` turns them into an
image modality; the others are flagged missing).
"""

from __future__ import annotations

import re

import numpy as np
from pydantic import Field

from fusionrec.config import StrictConfig
from fusionrec.data.content import category_modality, text_modality
from fusionrec.data.dataset import Dataset, build_dataset
from fusionrec.data.paths import shared_dir
from fusionrec.data.readers.table import read_table_file
from fusionrec.errors import DataError
from fusionrec.registry import DATASETS

_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")


class MovieLensSmallOptions(StrictConfig):
    text_dim: int = 64
    posters_only: bool = Field(False, description="keep only the movies that have a poster (188) and their ratings: "
                                                  "a small set where every item has an image")


@DATASETS.register("movielens-small", config=MovieLensSmallOptions, task="top-k, sequential, multimodal",
                   description="MovieLens latest-small (610 users, 9,724 movies) + 188 posters; needs the shared data folder")
def load_movielens_small(options: MovieLensSmallOptions) -> Dataset:
    root = _require_shared("movielens-latest-small")
    posters = root.parent / "movielens-posters"
    ratings = read_table_file(root / "ratings.csv").rename(columns={"userId": "user", "movieId": "item"})
    movies = read_table_file(root / "movies.csv").rename(columns={"movieId": "item"})
    tags = read_table_file(root / "tags.csv")
    tag_text = tags.groupby("movieId")["tag"].agg(lambda t: ", ".join(sorted(set(t)))).rename("tags")
    movies = movies.merge(tag_text, left_on="item", right_index=True, how="left")
    movies["year"] = movies["title"].str.extract(_YEAR, expand=False).fillna("")
    movies["title"] = movies["title"].str.replace(_YEAR, "", regex=True).str.strip()
    movies["genres"] = movies["genres"].replace("(no genres listed)", "")
    movies["text"] = (movies["title"] + " (" + movies["year"] + "). Genres: " + movies["genres"].str.replace("|", ", ")
                      + ". Tags: " + movies["tags"].fillna("") + ".")
    has_poster = movies["item"].map(lambda i: (posters / f"{i}.jpg").exists())
    movies["image_path"] = np.where(has_poster, movies["item"].map(lambda i: str(posters / f"{i}.jpg")), None)

    if options.posters_only:
        movies = movies[has_poster.to_numpy()].reset_index(drop=True)
        ratings = ratings[ratings["item"].isin(movies["item"])]
    dataset = build_dataset("movielens-small", ratings[["user", "item", "rating", "timestamp"]], items=movies,
                            meta={"source": str(root), "license": "MovieLens: research use, cite GroupLens"})
    items = dataset.items
    assert items is not None
    dataset.modalities["text"] = text_modality(items["text"].tolist(), options.text_dim, "title, genres, tags")
    dataset.modalities["genre"] = category_modality(items["genres"].fillna("").tolist(), "genres")
    return dataset


def _require_shared(name: str):
    shared = shared_dir()
    if shared is None or not (shared / "data" / name).is_dir():
        raise DataError(f"data set folder data/{name} not found: it lives in the project's shared folder; "
                        "set FUSIONREC_SHARED=/path/to/shared")
    return shared / "data" / name
