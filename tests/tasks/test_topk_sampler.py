"""PairSampler: negatives are never training positives, come from the chosen pool, and an epoch is a
function of (seed, epoch) only, split disjointly across data-parallel ranks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fusionrec.errors import DataError
from fusionrec.tasks.topk.sampler import PairSampler


def random_train(num_users=50, num_items=40, density=0.3, unused_items=(3, 17, 39), seed=0):
    rng = np.random.default_rng(seed)
    dense = rng.random((num_users, num_items)) < density
    dense[:, list(unused_items)] = False  # items that exist but never occur in training (cold items)
    return sp.csr_matrix(dense.astype(np.float32))


def all_batches(sampler, epoch):
    batches = list(sampler.epoch(epoch))
    return (
        torch.cat([b.users for b in batches]).numpy(),
        torch.cat([b.pos_items for b in batches]).numpy(),
        torch.cat([b.neg_items for b in batches]).numpy(),
    )


def test_every_training_pair_once_and_negatives_never_positives():
    train = random_train()
    users, pos, neg = all_batches(PairSampler(train, batch_size=64, num_negatives=4, seed=1), epoch=3)
    assert sorted(zip(users, pos)) == sorted(zip(*train.nonzero()))
    assert neg.shape == (train.nnz, 4)
    dense = train.toarray() > 0
    assert not dense[np.repeat(users, 4), neg.reshape(-1)].any()


def test_train_pool_never_draws_items_absent_from_training_but_all_pool_does():
    train = random_train()
    _, _, neg = all_batches(PairSampler(train, 128, num_negatives=8, seed=0), epoch=1)
    assert not np.isin(neg, [3, 17, 39]).any()
    _, _, neg_all = all_batches(PairSampler(train, 128, num_negatives=8, seed=0, negative_pool="all"), epoch=1)
    assert np.isin(neg_all, [3, 17, 39]).any()
    with pytest.raises(DataError, match="negative_pool"):
        PairSampler(train, 128, negative_pool="popular")


def test_epoch_is_a_function_of_seed_and_epoch_and_ranks_are_disjoint():
    train = random_train()
    a = all_batches(PairSampler(train, 32, 2, seed=5), epoch=2)
    b = all_batches(PairSampler(train, 32, 2, seed=5), epoch=2)
    c = all_batches(PairSampler(train, 32, 2, seed=5), epoch=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[2], c[2])
    shards = [all_batches(PairSampler(train, 32, 1, seed=5, rank=r, world_size=2), epoch=2) for r in range(2)]
    keys = [set(zip(u, i)) for u, i, _ in shards]
    assert len(shards[0][0]) == len(shards[1][0]) and not keys[0] & keys[1]


def test_a_user_who_interacted_with_every_candidate_item_is_an_error():
    train = random_train(num_users=3, num_items=5, density=0.0, unused_items=())
    train = train.tolil()
    train[0, :] = 1
    with pytest.raises(DataError, match="user index 0"):
        PairSampler(train.tocsr(), 4)
