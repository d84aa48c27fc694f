"""A seeded synthetic review data set whose ratings are driven by planted aspect words.

Each of ``num_aspects`` aspects (sound, price, build, ...) has ``words_per_aspect`` positive and as many
negative words (``soundgood0``, ``soundbad0``, ...): the planted aspect words. A user weighs the aspects
(a Dirichlet draw, so most users care about a few), an item is good or bad at each (a sign), and

    rating = clip(round(3 + 2 * tanh(strength * sum_a w_ua q_ia) + noise), 1, 5).

The review of (u, i) has ``review_length`` words: an ``aspect_share`` of them name aspects drawn from
the user's weights, each with the positive or negative word that the item's sign for that aspect
calls for; the rest are filler words (``w0``, ``w1``, ...) drawn with a Zipf-like skew, shuffled
together. So the words that explain a rating are the planted ones, and a model with personalised
attention should weigh them above the filler: ``meta["aspect_words"]`` keeps them for that check.

Everything is vectorised (NumPy draws over all reviews at once); 10^6 reviews take seconds and about
1 GB while being generated. Pairs are distinct: ``num_reviews`` of them (a few fewer when that is
close to users x items, where 64 rounds of draws cannot find them all).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from fusionrec.config import StrictConfig
from fusionrec.data.dataset import Dataset, build_dataset
from fusionrec.registry import DATASETS

ASPECTS = ("sound", "price", "build", "tone", "strings", "weight", "finish", "tuning", "noise", "fit")


class SyntheticReviewOptions(StrictConfig):
    num_users: int = Field(500, gt=1)
    num_items: int = Field(300, gt=1)
    num_reviews: int = Field(10_000, gt=0)
    num_aspects: int = Field(5, gt=0, le=len(ASPECTS))
    words_per_aspect: int = Field(2, gt=0)
    review_length: int = Field(24, gt=1)
    aspect_share: float = Field(0.25, gt=0, lt=1)
    filler_words: int = Field(400, gt=0)
    concentration: float = Field(0.3, gt=0, description="Dirichlet concentration of the users' aspect weights")
    strength: float = Field(2.0, gt=0)
    noise: float = Field(0.3, ge=0)
    text_dim: int = Field(16, gt=0)
    seed: int = 0


def aspect_words(num_aspects: int, words_per_aspect: int) -> tuple[list[str], list[str]]:
    """The planted positive and negative words, aspect-major: ``[soundgood0, soundgood1, pricegood0, ...]``."""
    good = [f"{a}good{k}" for a in ASPECTS[:num_aspects] for k in range(words_per_aspect)]
    bad = [f"{a}bad{k}" for a in ASPECTS[:num_aspects] for k in range(words_per_aspect)]
    return good, bad


def draw_pairs(rng: np.random.Generator, num_users: int, num_items: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` distinct (user, item) pairs: users by a log-normal activity, items uniformly. Repeated draws
    are topped up in vectorised rounds; after 8 rounds users are drawn uniformly too (busy users run out
    of unseen items)."""
    activity = rng.lognormal(0.0, 0.8, num_users)
    keys = np.empty(0, dtype=np.int64)
    for round_ in range(64):
        missing = count - len(keys)
        if missing <= 0:
            break
        size = int(missing * 1.2) + 16
        users = (
            rng.choice(num_users, size, p=activity / activity.sum()) if round_ < 8 else rng.integers(0, num_users, size)
        )
        fresh = users.astype(np.int64) * num_items + rng.integers(0, num_items, size)
        fresh = pd.unique(fresh)
        keys = np.concatenate([keys, fresh[~np.isin(fresh, keys)][:missing]])
    return keys // num_items, keys % num_items


@DATASETS.register(
    "synthetic-reviews",
    config=SyntheticReviewOptions,
    task="rating",
    description="seeded reviews whose ratings are driven by planted aspect words (up to 10^6 reviews)",
)
def load_synthetic_reviews(options: SyntheticReviewOptions) -> Dataset:
    o = options
    rng = np.random.default_rng(o.seed)
    weights = rng.dirichlet(np.full(o.num_aspects, o.concentration), o.num_users)  # (U, A)
    quality = rng.choice([-1.0, 1.0], size=(o.num_items, o.num_aspects))  # (I, A)
    users, items = draw_pairs(rng, o.num_users, o.num_items, min(o.num_reviews, o.num_users * o.num_items))
    n = len(users)

    affinity = (weights[users] * quality[items]).sum(axis=1)  # (N,)
    ratings = np.clip(np.rint(3 + 2 * np.tanh(o.strength * affinity) + o.noise * rng.standard_normal(n)), 1, 5)

    num_planted = max(1, int(round(o.aspect_share * o.review_length)))
    cumulative = np.cumsum(weights, axis=1)[users]  # (N, A)
    draws = rng.random((n, num_planted))
    aspect = np.minimum((draws[:, :, None] > cumulative[:, None, :]).sum(-1), o.num_aspects - 1)  # (N, P)
    positive = quality[items[:, None], aspect] > 0  # (N, P)
    variant = rng.integers(0, o.words_per_aspect, (n, num_planted))
    planted = aspect * o.words_per_aspect + variant + np.where(positive, 0, o.num_aspects * o.words_per_aspect)
    zipf = 1.0 / np.arange(1, o.filler_words + 1)
    filler = rng.choice(o.filler_words, size=(n, o.review_length - num_planted), p=zipf / zipf.sum())
    good, bad = aspect_words(o.num_aspects, o.words_per_aspect)
    vocabulary = np.array([*good, *bad, *(f"w{k}" for k in range(o.filler_words))])
    ids = np.concatenate([planted, filler + len(good) + len(bad)], axis=1)  # (N, W)
    ids = np.take_along_axis(ids, rng.random(ids.shape).argsort(axis=1), axis=1)  # planted words anywhere
    texts = [" ".join(row) for row in vocabulary[ids]]

    frame = pd.DataFrame(
        {
            "user": users,
            "item": items,
            "rating": ratings.astype(np.float32),
            "timestamp": rng.integers(1_300_000_000, 1_600_000_000, n),
        }
    )
    dataset = build_dataset(
        "synthetic-reviews",
        frame,
        meta={"text_dim": o.text_dim, "aspect_words": [*good, *bad], "options": o.model_dump()},
    )
    dataset.interactions["review"] = texts
    return dataset
