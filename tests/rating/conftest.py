"""Tiny review data sets for the rating family's tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusionrec.data.builtin.synthetic_reviews import SyntheticReviewOptions, load_synthetic_reviews
from fusionrec.data.config import SplitConfig
from fusionrec.data.dataset import build_dataset
from fusionrec.data.paths import shared_dir
from fusionrec.data.splits import apply_split


def tiny_reviews(num_reviews: int = 600, seed: int = 0):
    """A split synthetic review set: 60 users, 40 items, planted aspect words."""
    options = SyntheticReviewOptions(num_users=60, num_items=40, num_reviews=num_reviews, seed=seed)
    return apply_split(load_synthetic_reviews(options), SplitConfig(seed=seed))


@pytest.fixture
def reviews():
    return tiny_reviews()


@pytest.fixture
def marked_reviews():
    """A split review set whose every review carries a word naming its own row and split
    (``trainrow12``, ``validrow40``, ``testrow7``), so any held-out text reaching training is visible."""
    dataset = tiny_reviews(400, seed=3)
    names = {0: "train", 1: "valid", 2: "test"}
    split = dataset.interactions["split"].to_numpy()
    marks = [f"{names[int(s)]}row{row}" for row, s in enumerate(split)]
    dataset.interactions["review"] = [f"{m} {m} {text}" for m, text in zip(marks, dataset.interactions["review"])]
    return dataset


def frame_dataset(ratings, reviews, splits, users=None, items=None):
    n = len(ratings)
    frame = pd.DataFrame(
        {
            "user": users if users is not None else np.arange(n) % 3,
            "item": items if items is not None else np.arange(n) // 3,
            "rating": ratings,
            "split": splits,
        }
    )
    dataset = build_dataset("frame", frame)
    dataset.interactions["review"] = reviews
    return dataset


@pytest.fixture
def shared():
    path = shared_dir()
    if path is None:
        pytest.skip("shared data folder not found (set FUSIONREC_SHARED)")
    return path


@pytest.fixture
def make_frame():
    """``frame_dataset(ratings, reviews, splits, users=None, items=None)``: a split data set from lists."""
    return frame_dataset
