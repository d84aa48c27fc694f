"""What to encode for each item: text pieces or an image file, taken from a Dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fusionrec.data.dataset import TRAIN, Dataset
from fusionrec.errors import DataError

_NOT_TEXT = {"item", "image_path"}


@dataclass
class TextSource:
    """Per item, the text pieces to encode (an empty list: no text, masked).

    Pooled vectors of an item with several pieces (e.g. one per training review) are the mean of
    the pieces' vectors; token outputs and corpus-level encoders see the pieces joined by spaces.
    """

    pieces: list[list[str]]
    what: str
    name: str


def _clean(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return str(value).strip()


def training_reviews(dataset: Dataset) -> list[list[str]]:
    """Each item's review texts from TRAINING interactions only (split == 0), so that valid/test
    reviews never leak into item features."""
    inter = dataset.interactions
    if "review" not in inter:
        raise DataError(f"{dataset.name}: interactions have no 'review' column; choose an items column with --column")
    split = inter["split"].to_numpy()
    if not (split == TRAIN).any():
        raise DataError(f"{dataset.name}: no training interactions, so no training reviews; prepare a split data set")
    train = inter[split == TRAIN]
    pieces: list[list[str]] = [[] for _ in range(dataset.num_items)]
    for item, review in zip(train["item"].to_numpy(), train["review"].tolist()):
        text = _clean(review)
        if text:
            pieces[int(item)].append(text)
    return pieces


def text_source(dataset: Dataset, column: str | None = None) -> TextSource:
    """The text of every item.

    ``column=None``: the items table's ``text`` column if any; otherwise its text columns (e.g.
    amazon-fashion's ``styles``), plus each training review as a piece when interactions carry
    reviews. ``column="review"``: training reviews only. Any other name: that items column.
    """
    items = dataset.items
    columns = [] if items is None else list(items.columns)
    if column == "review" and "review" not in columns:
        return TextSource(training_reviews(dataset), "training reviews (split 0)", "review")
    if column is not None:
        if column not in columns:
            extra = ", review (training reviews)" if "review" in dataset.interactions else ""
            raise DataError(
                f"{dataset.name}: no items column {column!r}; text columns are: "
                f"{', '.join(c for c in columns if c not in _NOT_TEXT) or 'none'}{extra}"
            )
        assert items is not None
        return TextSource([[t] if (t := _clean(v)) else [] for v in items[column].tolist()], f"items.{column}", column)
    if "text" in columns:
        assert items is not None
        return TextSource([[t] if (t := _clean(v)) else [] for v in items["text"].tolist()], "items.text", "text")
    text_cols = [
        c
        for c in columns
        if c not in _NOT_TEXT
        and items is not None
        and (items[c].dtype == object or isinstance(items[c].dtype, pd.StringDtype))
    ]
    pieces: list[list[str]] = [[] for _ in range(dataset.num_items)]
    if text_cols:
        assert items is not None
        joined = items[text_cols].apply(lambda row: ". ".join(t for v in row if (t := _clean(v))), axis=1)
        pieces = [[t] if t else [] for t in joined.tolist()]
    what = [f"items.{', '.join(text_cols)}"] if text_cols else []
    if "review" in dataset.interactions:
        for mine, reviews in zip(pieces, training_reviews(dataset)):
            mine.extend(reviews)
        what.append("training reviews (split 0)")
    if not what:
        raise DataError(
            f"{dataset.name}: no item text found (no items table text column, no reviews); pass --column NAME"
        )
    return TextSource(pieces, " + ".join(what), "text")


def image_source(dataset: Dataset, column: str | None = None) -> tuple[list[Path | None], str]:
    """Each item's image file (None: no image). Relative paths are resolved against the data set folder."""
    column = column or "image_path"
    items = dataset.items
    if items is None or column not in items:
        have = ", ".join(c for c in (items.columns if items is not None else []) if c != "item") or "none"
        raise DataError(
            f"{dataset.name}: no items column {column!r} with image paths (items columns: {have}); "
            "add one to the items table or pass --column NAME"
        )
    base = Path(str(dataset.meta["path"])) if dataset.meta.get("path") else Path.cwd()
    paths: list[Path | None] = []
    for value in items[column].tolist():
        text = _clean(value)
        if not text:
            paths.append(None)
            continue
        path = Path(text).expanduser()
        paths.append(path if path.is_absolute() else base / path)
    return paths, f"items.{column}"
