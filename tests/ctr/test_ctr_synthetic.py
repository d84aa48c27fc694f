"""The synthetic click log: distinct rows of the size asked for, and a label that depends on the
interaction of the user's segment with the item's image cluster (not on either alone)."""

from __future__ import annotations

import numpy as np

from fusionrec.data import load_dataset
from fusionrec.data.builtin.ctr_synthetic import distinct_pairs


def test_distinct_pairs_are_distinct_and_counted():
    users, items = distinct_pairs(np.random.default_rng(0), 50, 40, 1900)
    keys = users * 40 + items
    assert len(keys) == 1900 and len(np.unique(keys)) == 1900
    assert users.max() < 50 and items.max() < 40
    assert len(distinct_pairs(np.random.default_rng(0), 5, 4, 100)[0]) == 20  # capped at every pair


def test_the_label_is_a_segment_by_image_cluster_interaction():
    dataset = load_dataset(
        "ctr-synthetic", options={"num_users": 400, "num_items": 600, "num_rows": 40000, "strength": 2.0}
    )
    inter = dataset.interactions
    segment = dataset.users["segment"].str[1:].astype(int).to_numpy()[inter["user"].to_numpy()]
    cluster = dataset.items["cluster"].astype(int).to_numpy()[inter["item"].to_numpy()]
    likes = np.asarray(dataset.meta["likes"])  # (segments, clusters) of +-1
    label = inter["label"].to_numpy().astype(float)
    liked = likes[segment, cluster] > 0
    assert label[liked].mean() - label[~liked].mean() > 0.3  # the planted interaction drives clicks
    # an additive model (segment + cluster effects) cannot fit it: some cluster is liked by one segment
    # and disliked by another, and its click rate follows the segment
    flips = [c for c in range(likes.shape[1]) if len(set(likes[:, c])) == 2]
    assert flips
    c = flips[0]
    rate = {s: label[(cluster == c) & (segment == s)].mean() for s in range(likes.shape[0])}
    fans = [rate[s] for s in rate if likes[s, c] > 0]
    others = [rate[s] for s in rate if likes[s, c] < 0]
    assert min(fans) > max(others)
    image = dataset.modalities["image"]
    assert 0.8 < image.mask.mean() < 1.0 and (image.values[~image.mask] == 0).all()
