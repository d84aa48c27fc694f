"""A seeded synthetic click log whose label depends on an image cluster x user field interaction.

Every item belongs to one of ``num_clusters`` visual clusters; its ``image`` vector is the cluster's
centroid plus noise (missing for a ``missing_image_rate`` share of items, masked). Every user has a
``segment`` (a categorical user field). The click logit is

    logit = bias + strength * A[segment, cluster] + user_bias + item_bias + category effect

with ``A`` a random +-1 table: whether a segment likes a cluster is an interaction between a user
field and the image, which an additive model cannot express and which, for an item rarely seen in
training, only the image reveals. ``items.category`` (a categorical item field, with an additive
effect) and a ``text`` vector (a noisy code of the category) are the other item inputs; ``users.age``
is a numeric user field without effect. The planted truth is kept (``items.cluster``) for tests; a
run that uses it as a field learns the answer.

Rows are distinct (user, item) pairs drawn uniformly (vectorised; 10^7 rows need about 1 GB), each
with a ``label`` and a ``timestamp``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from fusionrec.config import StrictConfig
from fusionrec.data.dataset import Dataset, build_dataset
from fusionrec.registry import DATASETS


class CTRSyntheticOptions(StrictConfig):
    num_users: int = Field(2000, gt=1)
    num_items: int = Field(5000, gt=1)
    num_rows: int = Field(100_000, gt=0)
    num_segments: int = Field(4, gt=0)
    num_clusters: int = Field(8, gt=0)
    num_categories: int = Field(10, gt=0)
    image_dim: int = Field(32, gt=0)
    text_dim: int = Field(16, gt=0)
    image_noise: float = Field(0.5, ge=0)
    missing_image_rate: float = Field(0.1, ge=0, lt=1)
    strength: float = Field(1.5, ge=0, description="weight of the segment x image-cluster interaction")
    bias: float = -0.5
    seed: int = 0


@DATASETS.register(
    "ctr-synthetic",
    config=CTRSyntheticOptions,
    task="ctr",
    description="seeded click log: the label depends on an image cluster x user segment interaction",
)
def load_ctr_synthetic(options: CTRSyntheticOptions) -> Dataset:
    o = options
    rng = np.random.default_rng(o.seed)
    segment = rng.integers(0, o.num_segments, o.num_users)
    cluster = rng.integers(0, o.num_clusters, o.num_items)
    category = rng.integers(0, o.num_categories, o.num_items)
    centroids = rng.standard_normal((o.num_clusters, o.image_dim)).astype(np.float32)
    image = centroids[cluster] + o.image_noise * rng.standard_normal((o.num_items, o.image_dim)).astype(np.float32)
    has_image = rng.random(o.num_items) >= o.missing_image_rate
    codes = rng.standard_normal((o.num_categories, o.text_dim)).astype(np.float32)
    text = codes[category] + 0.5 * rng.standard_normal((o.num_items, o.text_dim)).astype(np.float32)

    users, items = distinct_pairs(rng, o.num_users, o.num_items, o.num_rows)
    likes = rng.choice(np.array([-1.0, 1.0]), size=(o.num_segments, o.num_clusters))
    logit = (
        o.bias
        + o.strength * likes[segment[users], cluster[items]]
        + 0.3 * rng.standard_normal(o.num_users)[users]
        + 0.3 * rng.standard_normal(o.num_items)[items]
        + 0.5 * rng.standard_normal(o.num_categories)[category[items]]
    )
    labels = (rng.random(len(users)) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)

    frame = pd.DataFrame({"user": users, "item": items, "timestamp": rng.permutation(len(users))})
    dataset = build_dataset(
        "ctr-synthetic",
        frame,
        users=pd.DataFrame(
            {
                "user": np.arange(o.num_users),
                "segment": [f"s{s}" for s in segment],
                "age": rng.integers(18, 70, o.num_users),
            }
        ),
        items=pd.DataFrame(
            {"item": np.arange(o.num_items), "category": [f"c{c}" for c in category], "cluster": cluster}
        ),
        modalities={
            "image": (
                np.arange(o.num_items),
                image * has_image[:, None],
                {"present": has_image, "source": "synthetic image"},
            ),
            "text": (np.arange(o.num_items), text, {"source": "synthetic text: noisy code of items.category"}),
        },
        item_universe=np.arange(o.num_items),
        meta={"source": "synthetic", "options": o.model_dump(), "likes": likes.tolist()},
    )
    dataset.interactions["label"] = labels
    return dataset


def distinct_pairs(
    rng: np.random.Generator, num_users: int, num_items: int, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` distinct uniform (user, item) pairs (at most ``num_users * num_items``), in random order."""
    total = num_users * num_items
    count = min(count, total)
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < count:
        draw = rng.integers(0, total, int((count - len(keys)) * 1.1) + 16, dtype=np.int64)
        keys = np.unique(np.concatenate([keys, draw]))
    keys = rng.permutation(keys)[:count]
    return keys // num_items, keys % num_items
