"""``news-synthetic``: a seeded MIND-format impression log with images and a planted visual signal.

Every news has a topic (its title draws half its words from the topic's words, half from common
words) and a visual cluster (its image is a grid of ``num_regions`` noise regions, one of which, at a
random place, carries the cluster's centroid). Every user prefers one topic and one cluster; a shown
news is clicked with probability

    σ(bias + visual_strength [cluster = user's cluster] + text_strength [topic = user's topic])

(at least one click per impression: the candidate with the highest logit when none was drawn). As in
MIND, each user's clicked history is a fixed pre-period sample drawn with the same preferences, never
a click of the logged impressions, so no history can look ahead. Impressions are spread over
``days`` and split by one global time cut (80/10/10). The truth is kept (``items.topic``,
``items.cluster``, ``items.planted_region``, ``users.topic``, ``users.cluster``): only the image
tells the cluster, so a text-only model can learn the topic part of the signal but not the visual one.

Modalities: ``image_regions`` (I, R, D) and ``image`` (I, D), the regions' mean; a
``missing_image_rate`` share of news has no image (masked).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from fusionrec.config import StrictConfig
from fusionrec.data.dataset import Dataset
from fusionrec.data.readers.mind import build_news_dataset
from fusionrec.registry import DATASETS


class NewsSyntheticOptions(StrictConfig):
    num_users: int = Field(1000, gt=1)
    num_news: int = Field(2000, gt=10)
    num_impressions: int = Field(10_000, gt=9)
    candidates: int = Field(10, gt=1, description="news shown per impression")
    history_length: int = Field(20, gt=0, description="pre-period clicks per user")
    num_topics: int = Field(8, gt=0)
    num_clusters: int = Field(8, gt=0)
    title_length: int = Field(8, gt=1)
    words_per_topic: int = Field(30, gt=0)
    num_regions: int = Field(9, gt=0, description="image regions (a square number gives a grid heat map)")
    region_dim: int = Field(16, gt=0)
    image_noise: float = Field(0.5, ge=0)
    missing_image_rate: float = Field(0.1, ge=0, lt=1)
    visual_strength: float = Field(2.5, ge=0)
    text_strength: float = Field(1.0, ge=0)
    bias: float = -2.0
    days: int = Field(14, gt=0)
    seed: int = 0


def _titles(rng: np.random.Generator, topic: np.ndarray, o: NewsSyntheticOptions) -> list[str]:
    n, half = len(topic), o.title_length // 2
    topical = rng.integers(0, o.words_per_topic, (n, half))
    common = rng.integers(0, 4 * o.words_per_topic, (n, o.title_length - half))
    words = np.concatenate(
        [
            np.char.add(np.char.add(np.char.add("t", topic.astype(str))[:, None], "w"), topical.astype(str)),
            np.char.add("c", common.astype(str)),
        ],
        axis=1,
    )
    order = rng.permuted(np.tile(np.arange(o.title_length), (n, 1)), axis=1)
    return [" ".join(row) for row in np.take_along_axis(words, order, axis=1)]


@DATASETS.register(
    "news-synthetic",
    config=NewsSyntheticOptions,
    task="news",
    description="seeded MIND-format impressions with title words and image regions; clicks depend on a "
    "visual cluster only the image reveals and a topic the title reveals",
)
def load_news_synthetic(options: NewsSyntheticOptions) -> Dataset:
    o = options
    rng = np.random.default_rng(o.seed)
    topic = rng.integers(0, o.num_topics, o.num_news)
    cluster = rng.integers(0, o.num_clusters, o.num_news)
    planted = rng.integers(0, o.num_regions, o.num_news)
    centroids = 2.0 * rng.standard_normal((o.num_clusters, o.region_dim)).astype(np.float32)
    regions = o.image_noise * rng.standard_normal((o.num_news, o.num_regions, o.region_dim)).astype(np.float32)
    regions[np.arange(o.num_news), planted] += centroids[cluster]
    has_image = rng.random(o.num_news) >= o.missing_image_rate
    regions *= has_image[:, None, None]
    user_topic = rng.integers(0, o.num_topics, o.num_users)
    user_cluster = rng.integers(0, o.num_clusters, o.num_users)

    def logits(users: np.ndarray, news: np.ndarray) -> np.ndarray:
        return (
            o.bias
            + o.visual_strength * (cluster[news] == user_cluster[users][..., None])
            + o.text_strength * (topic[news] == user_topic[users][..., None])
        )

    # pre-period histories: candidates drawn at random, kept with the click probability
    pool = rng.integers(0, o.num_news, (o.num_users, 8 * o.history_length))
    keep = rng.random(pool.shape) < 1.0 / (1.0 + np.exp(-(logits(np.arange(o.num_users), pool) + 2.0)))
    order = np.argsort(~keep, axis=1, kind="stable")[:, : o.history_length]
    histories = np.take_along_axis(pool, order, axis=1)  # accepted first, then random fill

    users = rng.integers(0, o.num_users, o.num_impressions)
    times = np.sort(rng.integers(0, o.days * 86_400, o.num_impressions)) + 1_573_776_000  # from 2019-11-15
    shown = rng.integers(0, o.num_news, (o.num_impressions, o.candidates))
    logit = logits(users, shown)
    clicks = rng.random(shown.shape) < 1.0 / (1.0 + np.exp(-logit))
    none = ~clicks.any(1)
    clicks[np.flatnonzero(none), logit[none].argmax(1)] = True
    behaviors = pd.DataFrame(
        {
            "impression": np.arange(1, o.num_impressions + 1).astype(str),
            "user": np.char.add("U", users.astype(str)),
            "time": times,
            "history": list(histories[users]),
            "candidates": list(shown),
            "labels": list(clicks.astype(np.int8)),
        }
    )
    news = pd.DataFrame(
        {
            "item": np.arange(o.num_news).astype(str),
            "category": np.char.add("topic", topic.astype(str)),
            "subcategory": np.char.add("cluster", cluster.astype(str)),
            "title": _titles(rng, topic, o),
            "topic": topic,
            "cluster": cluster,
            "planted_region": planted,
        }
    )
    ids = np.arange(o.num_news).astype(str)
    dataset = build_news_dataset(
        "news-synthetic",
        behaviors,
        news,
        modalities={
            "image_regions": (ids, regions, {"kind": "regions", "present": has_image, "source": "synthetic regions"}),
            "image": (ids, regions.mean(1), {"present": has_image, "source": "synthetic: mean of the regions"}),
        },
        meta={"source": "synthetic", "options": o.model_dump()},
    )
    dataset.users = pd.DataFrame(
        {
            "user": dataset.user_ids,
            "topic": user_topic[_raw_users(dataset)],
            "cluster": user_cluster[_raw_users(dataset)],
        }
    )
    return dataset


def _raw_users(dataset: Dataset) -> np.ndarray:
    return np.asarray([int(u[1:]) for u in dataset.user_ids])
