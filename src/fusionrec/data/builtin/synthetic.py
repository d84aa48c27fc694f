"""A seeded synthetic data set with planted structure, for tests and scale benchmarks.

Latent item factors are drawn around ``num_clusters`` cluster centroids; each user's latent factor
gives a softmax preference over the clusters (sharper for a lower ``temperature``). A user's
interactions are drawn by picking a cluster from that preference, then an item of the cluster with
a Zipf-like popularity skew. The ``visual`` and ``text`` modalities are noisy linear projections
of the item factors, each missing for a ``missing_rate`` share of items (independently).

The planted truth is kept: ``items.cluster`` is each item's cluster, so tests can check that the
structure is real (users concentrate on few clusters; features of co-consumed items are closer).

Sizes: each user gets a heavy-tailed (log-normal) activity share of ``num_interactions``, at least
one, at most ``num_items``. Draws repeat pairs, so after the first draw the missing interactions are
topped up in vectorised rounds (from the fourth round on, a growing share of a top-up draw is
uniform over all items, so users who exhausted their clusters can still be filled); the final
count is ``num_interactions`` (capped at ``num_users * num_items``), or a hair below when the
rounds run out.
Memory is O(num_interactions + num_users * num_clusters): 10^7 interactions need about 2 GB.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from fusionrec.config import StrictConfig
from fusionrec.data.dataset import Dataset, Modality, build_dataset
from fusionrec.registry import DATASETS

MAX_ROUNDS = 16
_CHUNK = 1 << 18


class SyntheticOptions(StrictConfig):
    num_users: int = Field(1000, gt=1)
    num_items: int = Field(500, gt=1)
    num_interactions: int = Field(20000, gt=0)
    latent_dim: int = Field(16, gt=0)
    num_clusters: int = Field(20, gt=0)
    temperature: float = Field(0.5, gt=0)
    visual_dim: int = Field(32, gt=0)
    text_dim: int = Field(24, gt=0)
    noise: float = Field(0.5, ge=0)
    missing_rate: float = Field(0.1, ge=0, lt=1)
    seed: int = 0


@DATASETS.register(
    "synthetic",
    config=SyntheticOptions,
    task="top-k, sequential",
    description="seeded generator: latent factors plant the interactions and two noisy modalities",
)
def load_synthetic(options: SyntheticOptions) -> Dataset:
    o = options
    rng = np.random.default_rng(o.seed)
    users_f = rng.standard_normal((o.num_users, o.latent_dim)).astype(np.float32)
    centroids = rng.standard_normal((o.num_clusters, o.latent_dim)).astype(np.float32)
    cluster_of_item = rng.integers(0, o.num_clusters, o.num_items)
    items_f = centroids[cluster_of_item] + 0.3 * rng.standard_normal((o.num_items, o.latent_dim)).astype(np.float32)

    sampler = _Sampler(users_f, centroids, cluster_of_item, o.temperature)
    targets = _allocate(rng, o.num_users, o.num_items, o.num_interactions)
    users, items = _generate(rng, sampler, targets, o.num_items)

    frame = pd.DataFrame({"user": users, "item": items, "timestamp": rng.permutation(len(users))})
    modalities = {
        name: _noisy_projection(items_f, dim, o.noise, o.missing_rate, rng, name)
        for name, dim in (("visual", o.visual_dim), ("text", o.text_dim))
    }
    item_table = pd.DataFrame({"item": np.arange(o.num_items), "cluster": cluster_of_item.astype(np.int32)})
    dataset = build_dataset(
        "synthetic",
        frame,
        items=item_table,
        item_universe=np.arange(o.num_items),
        meta={"source": "synthetic", "options": o.model_dump()},
    )
    assert dataset.items is not None  # built from item_table above
    dataset.items = dataset.items.astype({"cluster": np.int32})
    order = dataset.item_ids.astype(np.int64)  # raw id -> original item number (the identity here)
    dataset.modalities = {
        name: Modality(m.values[order], m.mask[order], "dense", m.source) for name, m in modalities.items()
    }
    return dataset


class _Sampler:
    """Draws items for a batch of users: a cluster from the user's preference, then a popular-skewed item."""

    def __init__(self, users_f: np.ndarray, centroids: np.ndarray, cluster_of_item: np.ndarray, temperature: float):
        num_clusters = len(centroids)
        logits = users_f @ centroids.T / (np.sqrt(users_f.shape[1]) * temperature)  # (U, C)
        pref = np.exp(logits - logits.max(axis=1, keepdims=True))
        cdf = np.cumsum(pref / pref.sum(axis=1, keepdims=True), axis=1)
        cdf[:, -1] = np.inf
        self.cdf = cdf.astype(np.float32)  # (U, C)
        self.num_clusters = num_clusters
        self.by_cluster = np.argsort(cluster_of_item, kind="stable")
        self.sizes = np.bincount(cluster_of_item, minlength=num_clusters)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.fallback = int(np.argmax(self.sizes))

    def draw(self, rng: np.random.Generator, users: np.ndarray, explore: float = 0.0) -> np.ndarray:
        """One item per entry of ``users``; an ``explore`` share is uniform over all items instead."""
        uniform01 = rng.random(len(users), dtype=np.float32)
        clusters = np.empty(len(users), dtype=np.int64)
        for start in range(0, len(users), _CHUNK):  # bounded (chunk, C) temporaries
            stop = start + _CHUNK
            clusters[start:stop] = (self.cdf[users[start:stop]] <= uniform01[start:stop, None]).sum(axis=1)
        clusters = np.minimum(clusters, self.num_clusters - 1)
        clusters = np.where(self.sizes[clusters] > 0, clusters, self.fallback)
        offset = np.floor(self.sizes[clusters] * rng.random(len(users)) ** 2).astype(np.int64)  # popularity skew
        items = self.by_cluster[self.starts[clusters] + offset]
        if explore > 0:
            uniform = rng.random(len(users)) < explore
            items[uniform] = rng.integers(0, len(self.by_cluster), int(uniform.sum()))
        return items


def _allocate(rng: np.random.Generator, num_users: int, num_items: int, total: int) -> np.ndarray:
    """Interactions per user: heavy-tailed shares of ``total``, each in [1, num_items], summing to ``total``
    (or to ``num_users * num_items`` when that is smaller)."""
    total = min(total, num_users * num_items)
    if total < num_users:  # fewer interactions than users: a random subset gets one each
        targets = np.zeros(num_users, dtype=np.int64)
        targets[rng.choice(num_users, total, replace=False)] = 1
        return targets
    weights = rng.lognormal(0.0, 1.0, num_users)
    targets = np.ones(num_users, dtype=np.int64)
    for _ in range(100):  # distribute what is left to users below the cap, proportionally to activity
        left = total - int(targets.sum())
        open_ = targets < num_items
        if left <= 0 or not open_.any():
            break
        share = weights * open_ / (weights * open_).sum() * left
        add = np.floor(share).astype(np.int64)
        rest = left - int(add.sum())  # largest remainders get one more, so the shares sum to `left`
        add[np.argsort(-(share - add), kind="stable")[:rest]] += 1
        targets = np.minimum(targets + add, num_items)  # capped users' excess goes round again
    return targets


def _generate(
    rng: np.random.Generator, sampler: _Sampler, targets: np.ndarray, num_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw distinct (user, item) pairs until every user has its target count (or rounds run out)."""
    have_keys = np.empty(0, dtype=np.int64)  # sorted user * num_items + item
    need = targets.copy()
    for round_ in range(MAX_ROUNDS):
        if need.sum() == 0:
            break
        # Ask for more than needed: repeats are dropped, the surplus trimmed per user below.
        factor = 1.0 if round_ == 0 else min(2.0**round_, 64.0)
        ask = np.where(need > 0, np.ceil(need * factor).astype(np.int64) + (round_ > 0), 0)
        users = np.repeat(np.arange(len(need), dtype=np.int64), ask)
        # Users who exhausted their favourite clusters after a few rounds also draw uniformly.
        explore = min(1.0, 0.25 * max(0, round_ - 2))
        keys = users * num_items + sampler.draw(rng, users, explore)
        del users
        keys.sort()
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys  # distinct
        if len(have_keys):
            pos = np.minimum(np.searchsorted(have_keys, keys), len(have_keys) - 1)
            keys = keys[have_keys[pos] != keys]  # not drawn in an earlier round
        if round_ > 0:  # random order before trimming, so the kept surplus is not biased to low item ids
            keys = keys[rng.permutation(len(keys))]
            keys = keys[np.argsort(keys // num_items, kind="stable")]
        key_users = keys // num_items
        counts = np.bincount(key_users, minlength=len(need))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.arange(len(keys)) - starts[key_users]
        keys = keys[rank < need[key_users]]
        need -= np.bincount(keys // num_items, minlength=len(need))
        have_keys = np.sort(np.concatenate([have_keys, keys])) if len(have_keys) else keys  # disjoint
    return have_keys // num_items, have_keys % num_items


def _noisy_projection(
    factors: np.ndarray, dim: int, noise: float, missing: float, rng: np.random.Generator, name: str
) -> Modality:
    proj = rng.standard_normal((factors.shape[1], dim)).astype(np.float32) / np.sqrt(factors.shape[1])
    values = factors @ proj + noise * rng.standard_normal((len(factors), dim)).astype(np.float32)
    present = rng.random(len(factors)) >= missing
    return Modality(values * present[:, None], present, "dense", f"synthetic {name}: noisy projection of item factors")
