"""The sequential task: time order, split and leakage rules, samplers, side information, resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from fusionrec.data.batches import PAD_ITEM
from fusionrec.data.config import SplitConfig
from fusionrec.data.dataset import TEST, TRAIN, VALID, build_dataset
from fusionrec.data.sequences import user_sequences, view
from fusionrec.data.splits import apply_split
from fusionrec.errors import ConfigError, DataError
from fusionrec.tasks.sequential import SequentialTask
from fusionrec.tasks.sequential.sampler import cloze_mask


def toy(rows, method="loo", num_items=None, items=None, modalities=None, **split):
    """A data set from (user, item, timestamp[, rating]) rows; raw ids = indices."""
    cols = ["user", "item", "timestamp", "rating"][: len(rows[0])]
    frame = pd.DataFrame(rows, columns=cols)
    universe = np.arange(num_items if num_items is not None else frame["item"].max() + 1)
    ds = build_dataset("toy", frame, items=items, modalities=modalities, item_universe=universe)
    return apply_split(ds, SplitConfig(method=method, **split))


# user 0: items 5,3,8,1,9,2 at times 10..60 (rows shuffled); user 1: 4,6,7 ; user 2: 0 only
ROWS = [
    (0, 8, 30),
    (0, 5, 10),
    (1, 6, 200),
    (0, 2, 60),
    (0, 3, 20),
    (2, 0, 5),
    (0, 9, 50),
    (1, 4, 100),
    (0, 1, 40),
    (1, 7, 300),
]


def tokens(batch):
    return batch.items.tolist()


def test_loo_views_valid_input_is_the_training_prefix_test_input_adds_the_valid_item():
    task = SequentialTask(toy(ROWS), max_length=10)
    users = torch.tensor([0, 1])
    valid = task.score_batch(users, split="valid")
    test = task.score_batch(users, split="test")
    assert tokens(valid) == [[5, 3, 8, 1], [PAD_ITEM, PAD_ITEM, PAD_ITEM, 4]]  # left-padded, last = most recent
    assert tokens(test) == [[5, 3, 8, 1, 9], [PAD_ITEM, PAD_ITEM, PAD_ITEM, 4, 6]]
    assert valid.positions.tolist()[1] == [-1, -1, -1, 0]  # distance from the end; -1 at padding
    assert task.targets("valid").toarray()[:2].nonzero()[1].tolist() == [9, 6]
    assert task.targets("test").toarray()[:2].nonzero()[1].tolist() == [2, 7]
    # history to mask = the whole input; targets are never in it
    assert sorted(task.history("test").toarray()[0].nonzero()[0].tolist()) == [1, 3, 5, 8, 9]
    for split in ("valid", "test"):
        assert task.targets(split).multiply(task.history(split)).nnz == 0
    # user 2 has one interaction: training only, never evaluated
    assert task.targets("valid").toarray()[2].sum() == 0 and task.targets("test").toarray()[2].sum() == 0


def test_no_input_ever_reaches_past_its_target_in_time():
    """Leakage rule on a larger random set: every input row is no later than every target row."""
    rng = np.random.default_rng(0)
    n = 2000
    rows = list(zip(rng.integers(0, 60, n), rng.integers(0, 300, n), rng.integers(0, 10**6, n)))
    rows = list({(u, i): (u, i, t) for u, i, t in rows}.values())
    for method in ("loo", "temporal"):
        ds = toy(rows, method=method)
        seq = user_sequences(ds)
        for split in ("valid", "test"):
            ib, ie, tb, te = view(seq, split)
            has = (te > tb) & (ie > ib)
            last_input = seq.timestamps[np.maximum(ie - 1, 0)]
            first_target = seq.timestamps[np.minimum(tb, len(seq.timestamps) - 1)]
            assert (last_input[has] <= first_target[has]).all()
            # inputs hold train rows (+ valid rows when testing) only; targets only the split's rows
            codes = ds.interactions["split"].to_numpy()[seq.rows]
            allowed = {TRAIN} if split == "valid" else {TRAIN, VALID}
            inputs = np.concatenate([np.arange(b, e) for b, e in zip(ib, ie)])
            targets = np.concatenate([np.arange(b, e) for b, e in zip(tb, te)])
            assert set(codes[inputs].tolist()) <= allowed
            assert set(codes[targets].tolist()) == {VALID if split == "valid" else TEST}


def test_temporal_split_has_several_targets_per_user():
    rows = [(0, i, t) for t, i in enumerate([4, 2, 7, 1, 0, 3, 5, 6, 8, 9])]
    task = SequentialTask(toy(rows, method="temporal", ratios=(0.6, 0.2, 0.2)), max_length=20)
    assert tokens(task.score_batch(torch.tensor([0]), split="valid")) == [[4, 2, 7, 1, 0, 3]]
    assert task.targets("valid").toarray()[0].nonzero()[0].tolist() == [5, 6]
    assert task.targets("test").toarray()[0].nonzero()[0].tolist() == [8, 9]


def test_random_split_is_refused_with_the_fix():
    rows = [(0, i, 10 * i) for i in range(10)] + [(1, i, 10 * i) for i in range(10)]
    ds = toy(rows, method="random", seed=1)
    with pytest.raises(DataError, match="method=loo, temporal"):
        SequentialTask(ds)


def test_cold_user_split_holds_out_new_users_whose_earlier_items_are_the_input():
    long_users = [(u, (u * 7 + k) % 30, k) for u in range(4) for k in range(12)]
    short_users = [(u, (u + k) % 30, k) for u in range(4, 10) for k in range(2 + u % 3)]  # 2..4 items
    ds = toy(long_users + short_users, method="cold_user", num_items=30, cold_user_max_interactions=4)
    codes = ds.interactions.groupby("user")["split"].agg(lambda s: set(s))
    assert all(codes[u] == {TRAIN} for u in range(4))
    assert all(len(codes[u]) == 1 and codes[u] != {TRAIN} for u in range(4, 10))  # a whole user held out
    task = SequentialTask(ds, max_length=10)
    assert set(task.sampler.train_users.tolist()) == {0, 1, 2, 3}  # new users never train
    seq = task.sequences
    for split, code in (("valid", VALID), ("test", TEST)):
        users = [u for u in range(4, 10) if codes[u] == {code}]
        targets = task.targets(split).toarray()
        batch = task.score_batch(torch.tensor(users), split=split)
        for row, u in enumerate(users):
            items = seq.items[seq.starts[u] : seq.starts[u + 1]].tolist()  # the user's items in time order
            assert targets[u].nonzero()[0].tolist() == [items[-1]]
            assert [t for t in tokens(batch)[row] if t != PAD_ITEM] == items[:-1]
        assert targets[:4].sum() == 0


def test_cold_user_split_needs_users_in_range():
    rows = [(u, k, k) for u in range(3) for k in range(12)]
    with pytest.raises(DataError, match="cold_user_max_interactions"):
        toy(rows, method="cold_user", cold_user_max_interactions=5)


def test_next_item_sampler_shifts_targets_by_one():
    rows = ROWS + [(1, 9, 150), (1, 3, 160)]  # user 1 now trains on 4, 9, 3
    task = SequentialTask(toy(rows), objective="next", max_length=2, batch_size=10, seed=0)
    (batch,) = list(task.train_batches(1))
    by_user = {int(u): i for i, u in enumerate(batch.users)}
    assert set(by_user) == {0, 1}  # one sample per user with >= 2 training items; user 2 has 1
    r0, r1 = by_user[0], by_user[1]
    # user 0 trains on 5, 3, 8, 1: input = last 2 of [5, 3, 8], targets = the next items
    assert batch.items[r0].tolist() == [3, 8] and batch.targets[r0].tolist() == [8, 1]
    assert batch.items[r1].tolist() == [4, 9] and batch.targets[r1].tolist() == [9, 3]
    assert batch.positions[r0].tolist() == [1, 0]


@pytest.mark.parametrize("objective", ["next", "cloze"])
def test_all_windows_use_every_training_interaction_once_per_epoch(objective):
    rng = np.random.default_rng(7)
    lengths = rng.integers(1, 23, 40)  # several windows of 5 for long users, one or none for short ones
    rows = [(u, int(i), t) for u, n in enumerate(lengths) for t, i in enumerate(rng.choice(60, n, replace=False))]
    ds = toy(rows)
    task = SequentialTask(ds, objective=objective, max_length=5, mask_ratio=1.0, batch_size=7, seed=1, windows="all")
    seq, first = task.sequences, 1 if objective == "next" else 0  # next-item: the first item is never a target
    used = {}
    for batch in task.train_batches(1):
        for row, u in enumerate(batch.users.tolist()):
            got = batch.targets[row][batch.targets[row] >= 0].tolist()
            assert len(got) <= 5
            used.setdefault(u, []).append(got)
    for u in range(seq.num_users):
        train = seq.items[seq.starts[u] : seq.starts[u] + seq.num_train[u]].tolist()
        windows = sorted(used.get(u, []), key=lambda w: train.index(w[0]))  # as many samples as windows
        assert sum(windows, []) == train[first:]  # consecutive, non-overlapping, everything once
    last = SequentialTask(ds, objective=objective, max_length=5, mask_ratio=1.0, batch_size=7, seed=1)
    assert sum(len(b.users) for b in last.train_batches(1)) == len(set(used))  # "last": one sample per user


def test_unknown_windows_are_refused():
    with pytest.raises(ConfigError, match="last or all"):
        SequentialTask(toy(ROWS), windows="every")


def test_cloze_sampler_masks_at_the_rate_and_targets_are_the_hidden_items():
    rng = np.random.default_rng(1)
    rows = [(u, int(i), t) for u in range(200) for t, i in enumerate(rng.choice(100, 40, replace=False))]
    ds = toy(rows)
    task = SequentialTask(ds, objective="cloze", mask_ratio=0.3, max_length=30, batch_size=64, seed=3)
    seq = task.sequences
    masked = real = 0
    for batch in task.train_batches(1):
        m = batch.items == ds.num_items  # the mask token
        assert (m.sum(1) >= 1).all()  # at least one masked slot per sequence
        assert torch.equal(batch.targets >= 0, m)  # targets exactly at masked slots
        for row, u in enumerate(batch.users.tolist()):  # the hidden items are the originals
            original = seq.items[seq.starts[u] : seq.starts[u] + seq.num_train[u]][-30:]
            assert (batch.targets[row][m[row]].numpy() == original[m[row].numpy()]).all()
            assert (batch.items[row][~m[row]].numpy() == original[~m[row].numpy()]).all()
        masked += int(m.sum())
        real += int(batch.mask.sum())
    assert abs(masked / real - 0.3) < 0.02


def test_cloze_mask_forces_one_slot_per_sequence():
    valid = np.array([[False, True, True], [True, True, True], [False, False, False]])
    out = cloze_mask(valid, 1e-9, np.random.default_rng(0))
    assert out.sum(1).tolist() == [1, 1, 0] and not (out & ~valid).any()


def test_scoring_input_for_cloze_models_ends_with_the_mask_token():
    ds = toy(ROWS)
    task = SequentialTask(ds, objective="cloze", max_length=3)
    batch = task.score_batch(torch.tensor([0]), split="test")
    assert tokens(batch) == [[1, 9, ds.num_items]]  # last max_length - 1 items + the slot to predict
    assert batch.positions.tolist() == [[2, 1, 0]]


def test_epochs_are_deterministic_and_differ():
    rng = np.random.default_rng(2)
    rows = [(u, int(i), t) for u in range(50) for t, i in enumerate(rng.choice(60, 12, replace=False))]
    task = SequentialTask(toy(rows), objective="cloze", batch_size=16, seed=5, num_negatives=2)
    a, b, c = list(task.train_batches(2)), list(task.train_batches(2)), list(task.train_batches(3))
    assert all(torch.equal(x.items, y.items) and torch.equal(x.negatives, y.negatives) for x, y in zip(a, b))
    assert not torch.equal(a[0].users, c[0].users)


def test_negatives_avoid_the_users_training_items():
    rng = np.random.default_rng(4)
    rows = [(u, int(i), t) for u in range(30) for t, i in enumerate(rng.choice(20, 15, replace=False))]
    ds = toy(rows)
    task = SequentialTask(ds, objective="next", num_negatives=3, batch_size=30)
    train = ds.matrix("train").toarray()
    for batch in task.train_batches(1):
        assert batch.negatives.shape == (*batch.items.shape, 3)
        for row, u in enumerate(batch.users.tolist()):
            assert train[u, batch.negatives[row].reshape(-1).numpy()].sum() == 0


@pytest.mark.parametrize("shared", [False, True])
def test_negatives_come_from_training_items_unless_the_pool_is_all(shared):
    """Items 20-29 occur only as the users' last (test) item: never a negative under the default pool."""
    rng = np.random.default_rng(5)
    rows = [(u, int(i), t) for u in range(30) for t, i in enumerate(rng.choice(20, 6, replace=False))]
    rows += [(u, 20 + u % 10, 100) for u in range(30)]  # each user's last item: test only
    ds = toy(rows)
    held_out = np.flatnonzero(ds.matrix("train").sum(0).A1 == 0)
    assert set(held_out) >= set(range(20, 30))

    def drawn(pool):
        task = SequentialTask(
            ds, objective="next", num_negatives=5, shared_negatives=shared, batch_size=8, negative_pool=pool
        )
        return np.concatenate([b.negatives.reshape(-1).numpy() for e in (1, 2, 3) for b in task.train_batches(e)])

    assert not np.isin(drawn("train"), held_out).any()
    assert np.isin(drawn("all"), held_out).any()


def test_side_information_in_the_batch_and_hidden_at_masked_slots():
    items = pd.DataFrame({"item": range(10), "year": ["1990", "1995", "", "1990"] + ["2000"] * 6})
    genre = np.eye(10, 3, dtype=np.float32)
    rows = [(0, i, t, 1.0 + (i % 5)) for t, i in enumerate([0, 1, 2, 3, 4, 5])]
    rows += [(1, 6, 0, 3.0), (1, 7, 1000, 4.0), (1, 8, 1001, 5.0)]
    ds = toy(rows, num_items=10, items=items, modalities={"genre": (np.arange(10), genre, {"kind": "categorical"})})
    task = SequentialTask(
        ds,
        objective="cloze",
        max_length=8,
        item_side=("genre", "year"),
        behaviour_side=("position", "rating", "time_gap"),
    )
    batch = task.score_batch(torch.tensor([0, 1]), split="test")
    assert tokens(batch) == [[0, 1, 2, 3, 4, 10], [PAD_ITEM, PAD_ITEM, PAD_ITEM, 6, 7, 10]]
    year = batch.side["year"][0].tolist()
    assert year[0] == year[3] != 0 and year[1] not in (0, year[0]) and year[2] == 0 and year[-1] == 0  # "" missing
    assert batch.side["year"][1, :3].tolist() == [0, 0, 0]  # padding
    assert batch.side["genre"][0, 0].tolist() == [1, 0, 0] and batch.side["genre"][0, -1].abs().sum() == 0
    gaps = batch.side["time_gap"].tolist()
    assert gaps[0][:2] == [1, 3]  # first interaction; a 1 s gap: 2 + floor(log2(1 + 1))
    assert gaps[1][4] == 2 + int(np.log2(1001)) and gaps[1][5] == 0  # the slot to predict reveals nothing
    assert batch.side["rating"][0].tolist() == [1, 2, 3, 4, 5, 0]
    train = next(iter(task.train_batches(1)))
    hidden = train.items == ds.num_items
    for name, value in train.side.items():
        assert (value[hidden] == 0).all(), name


def test_unknown_side_information_lists_the_choices():
    with pytest.raises(ConfigError, match="choose from"):
        SequentialTask(toy(ROWS), item_side=("genre",))
    with pytest.raises(ConfigError, match="rating"):
        SequentialTask(toy(ROWS), behaviour_side=("rating",))


class _HistoryScorer(nn.Module):
    """Scores the items of the input sequence ``sign`` x 10 above (or below) every other item."""

    def __init__(self, num_items, sign):
        super().__init__()
        self.num_items, self.sign = num_items, sign
        self.anchor = nn.Parameter(torch.zeros(1))

    def score(self, batch):
        scores = -torch.arange(self.num_items, dtype=torch.float32).expand(len(batch), -1).clone() / self.num_items
        rows = batch.items.clamp(0, self.num_items - 1)
        scores.scatter_(1, rows, (self.sign * 10.0) * batch.mask.float())
        return scores if batch.candidates is None else scores[:, batch.candidates]


def test_mask_history_removes_history_items_from_the_candidates():
    rng = np.random.default_rng(5)
    rows = [(u, int(i), t) for u in range(40) for t, i in enumerate(rng.choice(50, 10, replace=False))]
    ds = toy(rows)
    masked = SequentialTask(ds, ks=(5,), metrics=("ndcg", "hit_rate", "mrr"))
    unmasked = SequentialTask(ds, ks=(5,), metrics=("ndcg", "hit_rate", "mrr"), mask_history=False)
    high, low = _HistoryScorer(ds.num_items, 1), _HistoryScorer(ds.num_items, -1)
    assert masked.evaluate(high, "test").metrics == masked.evaluate(low, "test").metrics
    assert unmasked.evaluate(high, "test").metrics["mrr"] < unmasked.evaluate(low, "test").metrics["mrr"]
    assert "not masked" in unmasked.protocol and "masked" in masked.protocol


TINY = [
    "data.options.num_users=80",
    "data.options.num_items=60",
    "data.options.num_interactions=2000",
    "data.split.method=loo",
    "model.hidden_dim=16",
    "model.max_length=12",
    "train.batch_size=16",
    "train.lr=0.005",
]


@pytest.mark.parametrize("model", ["sasrec", "bert4rec"])
def test_resume_continues_exactly(tmp_path, model):
    from fusionrec.api import train

    full = train(model, "synthetic", overrides=[*TINY, "train.epochs=3"], run_dir=tmp_path / "full", progress=False)
    part = train(model, "synthetic", overrides=[*TINY, "train.epochs=1"], run_dir=tmp_path / "part", progress=False)
    resumed = train(resume=part.run_dir, overrides=["train.epochs=3"], progress=False)
    assert [h["loss"] for h in resumed.record["history"]] == [h["loss"] for h in full.record["history"]]
    assert resumed.test_metrics == full.test_metrics
    assert resumed.record["task"] == "sequential" and "next-item" in resumed.record["evaluation"]["protocol"]


def test_top_k_task_refuses_unmasked_history(tmp_path):
    from fusionrec.api import train

    with pytest.raises(ConfigError, match="mask_history"):
        train(
            "bpr",
            "synthetic",
            overrides=[
                "data.options.num_users=20",
                "data.options.num_items=20",
                "data.options.num_interactions=200",
                "task.mask_history=false",
            ],
            run_dir=tmp_path / "r",
            progress=False,
        )


def test_top_k_task_refuses_sequence_windows(tmp_path):
    from fusionrec.api import train

    with pytest.raises(ConfigError, match="sequence_windows"):
        train(
            "bpr",
            "synthetic",
            overrides=[
                "data.options.num_users=20",
                "data.options.num_items=20",
                "data.options.num_interactions=200",
                "task.sequence_windows=all",
            ],
            run_dir=tmp_path / "r",
            progress=False,
        )


def test_valid_users_samples_validation_users_only():
    rng = np.random.default_rng(2)
    ds = toy([(u, int(i), t) for u in range(40) for t, i in enumerate(rng.choice(50, 8, replace=False))])
    task = SequentialTask(ds, ks=(5,), metrics=("ndcg",), valid_users=10, seed=3)
    model = _HistoryScorer(ds.num_items, 1)
    valid = task.evaluate(model, "valid")
    assert valid.num_users_evaluated == 10 and np.array_equal(valid.users, task.evaluate(model, "valid").users)
    assert task.evaluate(model, "test").num_users_evaluated == 40
    everyone = SequentialTask(ds, ks=(5,), metrics=("ndcg",)).evaluate(model, "valid")
    np.testing.assert_array_equal(
        valid.per_user["ndcg@5"], everyone.per_user["ndcg@5"][np.isin(everyone.users, valid.users)]
    )
