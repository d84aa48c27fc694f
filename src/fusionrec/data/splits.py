"""Train / valid / test splits, all vectorised (no Python loop over users).

Each function takes the interaction frame and returns an int8 split code per row (0 train,
1 valid, 2 test, -1 dropped). :func:`apply_split` runs the configured one and enforces the
protocol's rules: no (user, item) pair in two splits, every evaluated user has training data.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from fusionrec.data.config import SplitConfig
from fusionrec.data.dataset import TEST, TRAIN, UNSPLIT, VALID, Dataset
from fusionrec.data.filters import subset
from fusionrec.errors import DataError

DROPPED = -1


def apply_split(dataset: Dataset, config: SplitConfig) -> Dataset:
    inter = dataset.interactions
    method = config.method
    if method == "column":
        if (inter["split"].to_numpy() == UNSPLIT).any():
            raise DataError(f"{dataset.name}: split.method=column but the data has no split column "
                            "(MMRec x_label or a `split` column); choose another split.method")
        codes = inter["split"].to_numpy().astype(np.int8)
    elif method == "random":
        codes = ratio_split(inter["user"].to_numpy(), np.random.default_rng(config.seed).random(len(inter)), config.ratios)
    elif method == "temporal":
        codes = ratio_split(inter["user"].to_numpy(), _timestamps(dataset, method), config.ratios)
    elif method == "loo":
        codes = leave_one_out(inter["user"].to_numpy(), _timestamps(dataset, method))
    elif method == "global_time":
        codes = global_time_split(_timestamps(dataset, method), config.ratios)
    elif method == "cold_item":
        codes = cold_item_split(inter["item"].to_numpy(), dataset.num_items, config.cold_item_ratio, config.seed)
    elif method == "files":
        codes = files_split(dataset, config.path)
    else:  # pragma: no cover - the config's Literal forbids it
        raise DataError(f"unknown split method {method!r}")

    codes = drop_unseen_in_train(inter["user"].to_numpy(), inter["item"].to_numpy(), codes,
                                 drop_unseen_items=method in ("global_time",))
    dropped = int((codes == DROPPED).sum())
    split_ds = dataclasses.replace(dataset, interactions=inter.assign(split=codes))
    if dropped:
        split_ds = subset(split_ds, codes != DROPPED, keep_all_items=method == "cold_item")
    check_no_leakage(split_ds)
    split_ds.meta = {**split_ds.meta, "split": {**config.model_dump(), "dropped_rows": dropped}}
    return split_ds


def ratio_split(users: np.ndarray, order_key: np.ndarray, ratios: tuple[float, float, float]) -> np.ndarray:
    """Per-user split by rank of ``order_key`` (random keys or timestamps), smallest keys train."""
    order = np.lexsort((order_key, users))
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
    order = np.lexsort((np.arange(len(users)), timestamps, users))
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
    """One cut for everybody: the oldest ``ratios[0]`` of interactions train, then valid, then test."""
    order = np.argsort(timestamps, kind="stable")
    n = len(timestamps)
    n_train = int(round(n * ratios[0]))
    n_valid = int(round(n * ratios[1]))
    codes = np.full(n, TEST, dtype=np.int8)
    codes[order[:n_train]] = TRAIN
    codes[order[n_train:n_train + n_valid]] = VALID
    return codes


def cold_item_split(items: np.ndarray, num_items: int, ratio: float, seed: int) -> np.ndarray:
    """Hold out ``ratio`` of the items entirely: half for validation, half for test."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(num_items)
    num_cold = max(2, int(round(num_items * ratio)))
    item_code = np.full(num_items, TRAIN, dtype=np.int8)
    item_code[perm[: num_cold // 2]] = VALID
    item_code[perm[num_cold // 2: num_cold]] = TEST
    return item_code[items]


def files_split(dataset: Dataset, path: str | None) -> np.ndarray:
    """Assign splits from ``train``/``valid``/``test`` files of raw (user, item) pairs in ``path``."""
    if not path:
        raise DataError("split.method=files needs split.path, a folder with train/valid/test files")
    folder = Path(path)
    inter = dataset.interactions
    keys = pd.Index(_pair_keys(dataset.user_ids[inter["user"].to_numpy()], dataset.item_ids[inter["item"].to_numpy()]))
    codes = np.full(len(inter), DROPPED, dtype=np.int8)
    for code, stem in ((TRAIN, "train"), (VALID, "valid"), (TEST, "test")):
        file = _find_split_file(folder, stem)
        frame = pd.read_csv(file, sep=None, engine="python", dtype=str)
        cols = [c for c in frame.columns]
        ucol = next((c for c in cols if c.split(":")[0] in ("user_id", "user", "userId")), None)
        icol = next((c for c in cols if c.split(":")[0] in ("item_id", "item", "movieId", "itemId")), None)
        if ucol is None or icol is None:
            raise DataError(f"{file}: needs a user column (user_id) and an item column (item_id); has {cols}")
        rows = keys.get_indexer(_pair_keys(frame[ucol].to_numpy(), frame[icol].to_numpy()))
        if (rows < 0).any():
            bad = int(np.flatnonzero(rows < 0)[0])
            raise DataError(f"{file}: row {bad + 2} ({frame[ucol].iloc[bad]}, {frame[icol].iloc[bad]}) is not an "
                            f"interaction of {dataset.name}; the split files must come from the same data")
        if (codes[rows] != DROPPED).any():
            raise DataError(f"{file}: some pairs are already assigned to another split file (leakage)")
        codes[rows] = code
    return codes


def drop_unseen_in_train(users: np.ndarray, items: np.ndarray, codes: np.ndarray, *, drop_unseen_items: bool) -> np.ndarray:
    """Mark valid/test rows of users (and optionally items) without training interactions as dropped."""
    codes = codes.copy()
    train = codes == TRAIN
    seen_users = np.zeros(users.max() + 1 if len(users) else 0, dtype=bool)
    seen_users[users[train]] = True
    evaluated = (codes == VALID) | (codes == TEST)
    codes[evaluated & ~seen_users[users]] = DROPPED
    if drop_unseen_items:
        seen_items = np.zeros(items.max() + 1 if len(items) else 0, dtype=bool)
        seen_items[items[train]] = True
        codes[evaluated & ~seen_items[items]] = DROPPED
    return codes


def check_no_leakage(dataset: Dataset) -> None:
    inter = dataset.interactions
    dup = inter.duplicated(["user", "item"], keep=False)
    if dup.any():
        clash = inter[dup].groupby(["user", "item"])["split"].nunique()
        if (clash > 1).any():
            u, i = clash[clash > 1].index[0]
            raise DataError(f"{dataset.name}: pair (user {dataset.user_ids[u]}, item {dataset.item_ids[i]}) is in "
                            "two splits; remove the repeated interaction or set data.duplicates=last")


def _timestamps(dataset: Dataset, method: str) -> np.ndarray:
    if "timestamp" not in dataset.interactions:
        raise DataError(f"{dataset.name}: split.method={method} needs timestamps and the data has none; "
                        "use split.method=random")
    return dataset.interactions["timestamp"].to_numpy()


def _pair_keys(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    return np.char.add(np.char.add(users.astype(str), "\x1f"), items.astype(str))


def _find_split_file(folder: Path, stem: str) -> Path:
    for suffix in (".tsv", ".csv", ".txt", ".inter", ""):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder}: no {stem}.tsv / {stem}.csv split file; the folder needs train, valid and test files")
