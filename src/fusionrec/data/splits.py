"""Train / valid / test splits, all vectorised (no Python loop over users).

Each function takes the interaction frame and returns an int8 split code per row (0 train,
1 valid, 2 test, -1 dropped). :func:`apply_split` runs the configured one and enforces the
protocol's rules: no (user, item) pair in two splits, every evaluated user has training data
(rows that break it are dropped and counted, or are an error: ``split.cold_users``), and with
``global_time`` every evaluated item has training data too (rows of other items are dropped).
A split never shrinks the catalogue: items seen only in valid/test, only in dropped rows, or in
no interaction at all (MMRec items with features only) stay, because cold-start ranking is about
them; ``meta.split.items_without_train`` counts them. Users left with no row are removed
(``meta.split.removed_users``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from fusionrec.data.config import SplitConfig
from fusionrec.data.dataset import SPLIT_NAMES, TEST, TRAIN, UNSPLIT, VALID, Dataset, locate_row
from fusionrec.data.filters import subset
from fusionrec.data.paths import resolve_shared
from fusionrec.data.readers.table import read_table_file, strip_ids
from fusionrec.errors import DataError

DROPPED = -1
UNASSIGNED = -2  # files split: a row in none of the files (an error)


def apply_split(dataset: Dataset, config: SplitConfig) -> Dataset:
    inter = dataset.interactions
    method = config.method
    if method == "column":
        if (inter["split"].to_numpy() == UNSPLIT).any():
            raise DataError(
                f"{dataset.name}: split.method=column but the data has no split column "
                "(MMRec x_label or a `split` column); choose another split.method"
            )
        codes = inter["split"].to_numpy().astype(np.int8)
    elif method == "random":
        codes = ratio_split(
            inter["user"].to_numpy(), np.random.default_rng(config.seed).random(len(inter)), config.ratios
        )
    elif method == "temporal":
        codes = ratio_split(inter["user"].to_numpy(), _timestamps(dataset, method), config.ratios)
    elif method == "loo":
        codes = leave_one_out(inter["user"].to_numpy(), _timestamps(dataset, method))
    elif method == "global_time":
        codes = global_time_split(_timestamps(dataset, method), config.ratios)
    elif method == "cold_item":
        codes = cold_item_split(inter["item"].to_numpy(), dataset.num_items, config.cold_item_ratio, config.seed)
    elif method == "cold_user":
        codes = cold_user_split(inter["user"].to_numpy(), config.cold_user_max_interactions, config.seed)
    elif method == "files":
        codes = files_split(dataset, config.path)
    else:  # pragma: no cover - the config's Literal forbids it
        raise DataError(f"unknown split method {method!r}")

    users, items = inter["user"].to_numpy(), inter["item"].to_numpy()
    codes, unseen_users, unseen_items = (
        (codes, 0, 0)
        if method == "cold_user"
        else drop_unseen_in_train(users, items, codes, drop_unseen_items=method == "global_time")
    )  # cold_user: unseen users by design
    policy = config.cold_users
    if policy == "auto":
        policy = "error" if method in ("column", "files") else "drop"
    if unseen_users and policy == "error":
        first = int(users[codes == DROPPED][0])
        raise DataError(
            f"{dataset.name}: {unseen_users} valid/test row(s) belong to users with no training "
            f"interaction under split.method={method} (first: user {dataset.user_ids[first]!r}); "
            "fix the split, or set data.split.cold_users=drop to drop those rows"
        )
    dropped = int((codes == DROPPED).sum())
    split_ds = dataclasses.replace(dataset, interactions=inter.assign(split=codes))
    if dropped:  # rows go; every item stays in the catalogue
        split_ds = subset(split_ds, codes != DROPPED, keep_all_items=True)
    check_no_leakage(split_ds)
    kept = split_ds.interactions
    in_train = np.zeros(split_ds.num_items, dtype=bool)
    in_train[kept["item"].to_numpy()[kept["split"].to_numpy() == TRAIN]] = True
    split_ds.meta = {
        **split_ds.meta,
        "split": {
            **config.model_dump(),
            "dropped_rows": dropped,
            "dropped_unseen_users": unseen_users,
            "dropped_unseen_items": unseen_items,
            "removed_users": dataset.num_users - split_ds.num_users,
            "items_without_train": int((~in_train).sum()),
        },
    }
    return split_ds


def ratio_split(users: np.ndarray, order_key: np.ndarray, ratios: tuple[float, float, float]) -> np.ndarray:
    """Per-user split by rank of ``order_key`` (random keys or timestamps), smallest keys train."""
    order = _group_order(users, order_key)
    sorted_users = users[order]
    counts = np.bincount(users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(users)) - starts[sorted_users]
    n = counts[sorted_users]
    n_test = np.floor(n * ratios[2] + 0.5).astype(np.int64)
    n_valid = np.floor(n * ratios[1] + 0.5).astype(np.int64)
    # Every user keeps at least one training interaction; test yields last.
    n_valid = np.minimum(n_valid, np.maximum(n - 1, 0))
    n_test = np.minimum(n_test, np.maximum(n - 1 - n_valid, 0))
    n_train = n - n_valid - n_test
    codes_sorted = np.where(rank < n_train, TRAIN, np.where(rank < n_train + n_valid, VALID, TEST)).astype(np.int8)
    codes = np.empty_like(codes_sorted)
    codes[order] = codes_sorted
    return codes


def leave_one_out(users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Last interaction per user is test, second last valid (users with 2: train + test; 1: train)."""
    order = _group_order(users, timestamps)
    sorted_users = users[order]
    counts = np.bincount(users)
    ends = np.cumsum(counts)
    from_end = ends[sorted_users] - 1 - np.arange(len(users))
    n = counts[sorted_users]
    codes_sorted = np.full(len(users), TRAIN, dtype=np.int8)
    codes_sorted[(from_end == 0) & (n >= 2)] = TEST
    codes_sorted[(from_end == 1) & (n >= 3)] = VALID
    codes = np.empty_like(codes_sorted)
    codes[order] = codes_sorted
    return codes


def global_time_split(timestamps: np.ndarray, ratios: tuple[float, float, float]) -> np.ndarray:
    """One cut for everybody: the oldest ``ratios[0]`` of interactions train, then valid, then test.

    The cuts are timestamps, so interactions with equal timestamps always share a split (a tie at
    a boundary goes to the earlier split); the sizes are therefore close to, not exactly, the ratios.
    """
    n = len(timestamps)
    ordered = np.sort(timestamps, kind="stable")
    n_train = min(max(1, int(round(n * ratios[0]))), n)
    n_valid = int(round(n * ratios[1]))
    train_cut = ordered[n_train - 1]
    valid_cut = ordered[min(n_train + n_valid, n) - 1]
    codes = np.full(n, TEST, dtype=np.int8)
    codes[timestamps <= valid_cut] = VALID
    codes[timestamps <= train_cut] = TRAIN
    return codes


def cold_item_split(items: np.ndarray, num_items: int, ratio: float, seed: int) -> np.ndarray:
    """Hold out ``ratio`` of the items entirely: half for validation, half for test."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(num_items)
    num_cold = max(2, int(round(num_items * ratio)))
    item_code = np.full(num_items, TRAIN, dtype=np.int8)
    item_code[perm[: num_cold // 2]] = VALID
    item_code[perm[num_cold // 2 : num_cold]] = TEST
    return item_code[items]


def cold_user_split(users: np.ndarray, max_interactions: int, seed: int) -> np.ndarray:
    """Hold out users with 2..``max_interactions`` interactions entirely: half valid, half test."""
    counts = np.bincount(users)
    cold = np.flatnonzero((counts >= 2) & (counts <= max_interactions))
    if len(cold) < 2:
        raise DataError(
            f"split.method=cold_user: {len(cold)} user(s) have 2 to {max_interactions} interactions "
            f"(users have {counts[counts > 0].min()} to {counts.max()}); raise "
            "data.split.cold_user_max_interactions"
        )
    cold = np.random.default_rng(seed).permutation(cold)
    user_code = np.full(len(counts), TRAIN, dtype=np.int8)
    user_code[cold[: len(cold) // 2]] = VALID
    user_code[cold[len(cold) // 2 :]] = TEST
    return user_code[users]


def files_split(dataset: Dataset, path: str | None) -> np.ndarray:
    """Assign splits from ``train``/``valid``/``test`` files of raw (user, item) pairs in ``path``.

    Every file pair must be an interaction of the data, no pair may be in two files, and every
    interaction must be in one file (the files define the split exactly).
    """
    if not path:
        raise DataError("split.method=files needs data.split.path, a folder with train/valid/test files")
    folder = resolve_shared(path, "data.split.path")
    if not folder.is_dir():
        raise DataError(f"{folder}: split folder not found (data.split.path); it needs train, valid and test files")
    inter = dataset.interactions
    keys = pd.Index(_pair_keys(dataset.user_ids[inter["user"].to_numpy()], dataset.item_ids[inter["item"].to_numpy()]))
    if not keys.is_unique:
        raise DataError(
            f"{dataset.name}: the data repeats (user, item) pairs, so split files cannot assign them; "
            "set data.duplicates=first or last"
        )
    codes = np.full(len(inter), UNASSIGNED, dtype=np.int8)
    for code, stem in ((TRAIN, "train"), (VALID, "valid"), (TEST, "test")):
        file = _find_split_file(folder, stem)
        frame = read_table_file(file, allow_empty=True)  # e.g. no validation pairs
        cols = list(frame.columns)
        ucol = next((c for c in cols if str(c).split(":")[0] in _USER_COLS), None)
        icol = next((c for c in cols if str(c).split(":")[0] in _ITEM_COLS), None)
        if ucol is None or icol is None:
            raise DataError(
                f"{file}: needs a user column ({', '.join(_USER_COLS)}) and an item column "
                f"({', '.join(_ITEM_COLS)}); has {cols[:12]}"
            )
        frame = strip_ids(frame, (ucol, icol), None)  # the data's ids are stripped too
        rows = keys.get_indexer(_pair_keys(frame[ucol].to_numpy(), frame[icol].to_numpy()))
        if (rows < 0).any():
            bad = int(np.flatnonzero(rows < 0)[0])
            raise DataError(
                f"{file}: {locate_row(frame, bad)} (user {frame[ucol].iloc[bad]}, item "
                f"{frame[icol].iloc[bad]}) is not an interaction of {dataset.name} "
                f"({int((rows < 0).sum())} such rows); the split files must come from the same data "
                "and filters"
            )
        clash = (codes[rows] != UNASSIGNED) & (codes[rows] != code)
        if clash.any():
            bad = int(np.flatnonzero(clash)[0])
            raise DataError(
                f"{file}: {locate_row(frame, bad)} (user {frame[ucol].iloc[bad]}, item "
                f"{frame[icol].iloc[bad]}) is already in the {SPLIT_NAMES[int(codes[rows[bad]])]} "
                "file; a pair may be in only one split file"
            )
        codes[rows] = code
    if (codes == UNASSIGNED).any():
        first = int(np.flatnonzero(codes == UNASSIGNED)[0])
        raise DataError(
            f"{folder}: {int((codes == UNASSIGNED).sum())} interaction(s) of {dataset.name} are in none of "
            f"the split files (first: user {dataset.user_ids[inter['user'].iloc[first]]}, item "
            f"{dataset.item_ids[inter['item'].iloc[first]]}); the files must cover the data exactly "
            "(check data.kcore and data.implicit_threshold)"
        )
    return codes


def drop_unseen_in_train(
    users: np.ndarray, items: np.ndarray, codes: np.ndarray, *, drop_unseen_items: bool
) -> tuple[np.ndarray, int, int]:
    """Mark valid/test rows of users (and optionally items) without training interactions as dropped.

    Returns the new codes, the number of rows dropped for an unseen user, and the number dropped
    (of the rest) for an unseen item.
    """
    codes = codes.copy()
    train = codes == TRAIN
    seen_users = np.zeros(users.max() + 1 if len(users) else 0, dtype=bool)
    seen_users[users[train]] = True
    evaluated = (codes == VALID) | (codes == TEST)
    cold_user = evaluated & ~seen_users[users]
    codes[cold_user] = DROPPED
    cold_item_rows = 0
    if drop_unseen_items:
        seen_items = np.zeros(items.max() + 1 if len(items) else 0, dtype=bool)
        seen_items[items[train]] = True
        cold_item = evaluated & ~cold_user & ~seen_items[items]
        codes[cold_item] = DROPPED
        cold_item_rows = int(cold_item.sum())
    return codes, int(cold_user.sum()), cold_item_rows


def check_no_leakage(dataset: Dataset) -> None:
    """No (user, item) pair may be in two splits."""
    inter = dataset.interactions
    keys = inter["user"].to_numpy().astype(np.int64) * max(dataset.num_items, 1) + inter["item"].to_numpy()
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    same = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    if not len(same):
        return
    codes = inter["split"].to_numpy()[order]
    clash = same[codes[same] != codes[same + 1]]
    if len(clash):
        u, i = divmod(int(sorted_keys[clash[0]]), max(dataset.num_items, 1))
        raise DataError(
            f"{dataset.name}: pair (user {dataset.user_ids[u]}, item {dataset.item_ids[i]}) is in "
            "two splits; remove the repeated interaction or set data.duplicates=last"
        )


def _group_order(users: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Row order grouped by user, ascending ``key`` within a user, ties in row order (like a stable
    ``lexsort((key, users))``, with two plain sorts instead)."""
    by_key = np.argsort(key, kind="stable")
    rank = np.empty(len(key), dtype=np.int64)
    rank[by_key] = np.arange(len(key))
    return np.argsort(users.astype(np.int64) * max(len(key), 1) + rank)


def _timestamps(dataset: Dataset, method: str) -> np.ndarray:
    if "timestamp" not in dataset.interactions:
        raise DataError(
            f"{dataset.name}: split.method={method} needs timestamps and the data has none; use split.method=random"
        )
    return dataset.interactions["timestamp"].to_numpy()


_USER_COLS = ("user_id", "user", "userId", "userID")
_ITEM_COLS = ("item_id", "item", "itemId", "itemID", "movieId")


def _pair_keys(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    return np.char.add(np.char.add(users.astype(str), "\x1f"), items.astype(str))


def _find_split_file(folder: Path, stem: str) -> Path:
    for suffix in (".tsv", ".csv", ".txt", ".inter", ""):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder}: no {stem}.tsv / {stem}.csv split file; the folder needs train, valid and test files")
