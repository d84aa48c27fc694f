"""A full-ranking evaluation split by user over data-parallel ranks, joined, equals the whole one."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fusionrec.metrics.full_ranking import evaluate_full_ranking, merge_results, shard_users


@pytest.mark.parametrize("world_size", [2, 3])
def test_shards_joined_equal_the_whole_evaluation(world_size):
    rng = np.random.default_rng(0)
    num_users, num_items = 40, 30
    targets = sp.random(num_users, num_items, density=0.08, random_state=1, format="csr")
    exclude = sp.random(num_users, num_items, density=0.2, random_state=2, format="csr")
    scores = torch.from_numpy(rng.standard_normal((num_users, num_items)).astype(np.float32))

    def scorer(users, items):
        return scores[users] if items is None else scores[users][:, items]

    kwargs = {"ks": (5, 10), "metrics": ("recall", "ndcg", "mrr", "auc"), "user_batch_size": 7}
    with pytest.warns(UserWarning, match="also excluded"):
        whole = evaluate_full_ranking(scorer, targets, exclude, **kwargs)
    parts = []
    for rank in range(world_size):
        with pytest.warns(UserWarning, match="also excluded"):
            parts.append(evaluate_full_ranking(scorer, shard_users(targets, rank, world_size), exclude, **kwargs))
    assert len({len(p.users) for p in parts}) <= 2 and not set(parts[0].users) & set(parts[1].users)
    joined = merge_results(parts)
    assert joined.metrics == pytest.approx(whole.metrics)
    np.testing.assert_array_equal(joined.users, whole.users)
    for name, values in whole.per_user.items():
        np.testing.assert_allclose(joined.per_user[name], values)
    assert joined.num_users_skipped == whole.num_users_skipped
    assert joined.num_targets_excluded == whole.num_targets_excluded
