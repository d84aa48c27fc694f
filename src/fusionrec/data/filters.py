"""Interaction filters: implicit conversion, de-duplication and k-core."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset, locate_row, show_value
from fusionrec.errors import DataError


def to_implicit(dataset: Dataset, threshold: float | None) -> Dataset:
    """Keep interactions with ``rating >= threshold`` (all of them when ``threshold`` is None)."""
    if threshold is None:
        return dataset
    if "rating" not in dataset.interactions:
        raise DataError(f"{dataset.name}: implicit threshold {threshold} needs a rating column, the data has none")
    keep = dataset.interactions["rating"].to_numpy() >= threshold
    return subset(dataset, keep)


def deduplicate(frame: pd.DataFrame, policy: str, source: str) -> pd.DataFrame:
    """Handle repeated (user, item) pairs: ``error`` (default), ``first`` or ``last`` (by timestamp if any)."""
    dup = frame.duplicated(["user", "item"], keep=False)
    if not dup.any():
        return frame
    if policy == "error":
        first = frame.duplicated(["user", "item"], keep="first").to_numpy()
        pos = int(np.flatnonzero(first)[0])
        pair = frame.iloc[pos]
        same = np.flatnonzero(((frame["user"] == pair["user"]) & (frame["item"] == pair["item"])).to_numpy())
        raise DataError(
            f"{source}: {locate_row(frame, pos)} repeats the (user {show_value(pair['user'])}, item "
            f"{show_value(pair['item'])}) pair of {locate_row(frame, int(same[0]))} ({int(first.sum())} repeated "
            "rows in all); set data.duplicates=first or last to keep one of each"
        )
    if "timestamp" in frame:
        frame = frame.sort_values("timestamp", kind="stable")
    return frame.drop_duplicates(["user", "item"], keep=policy).sort_index()


def k_core(dataset: Dataset, user_k: int, item_k: int) -> Dataset:
    """Iteratively drop users with < ``user_k`` and items with < ``item_k`` interactions."""
    if user_k <= 1 and item_k <= 1:
        return dataset
    users = dataset.interactions["user"].to_numpy()
    items = dataset.interactions["item"].to_numpy()
    keep = np.ones(len(users), dtype=bool)
    while True:
        user_deg = np.bincount(users[keep], minlength=dataset.num_users)
        item_deg = np.bincount(items[keep], minlength=dataset.num_items)
        new_keep = keep & (user_deg[users] >= user_k) & (item_deg[items] >= item_k)
        if new_keep.sum() == keep.sum():
            break
        keep = new_keep
    if not keep.any():
        raise DataError(f"{dataset.name}: no interaction survives a {user_k}/{item_k}-core; lower data.kcore")
    return subset(dataset, keep)


def subset(dataset: Dataset, keep: np.ndarray, *, keep_all_items: bool = False) -> Dataset:
    """Keep the interactions where ``keep`` is True and re-index users and items densely."""
    inter = dataset.interactions[keep]
    used_users = np.flatnonzero(np.bincount(inter["user"].to_numpy(), minlength=dataset.num_users))
    used_items = (
        np.arange(dataset.num_items)
        if keep_all_items
        else np.flatnonzero(np.bincount(inter["item"].to_numpy(), minlength=dataset.num_items))
    )
    user_map = np.full(dataset.num_users, -1, dtype=np.int32)
    user_map[used_users] = np.arange(len(used_users), dtype=np.int32)
    item_map = np.full(dataset.num_items, -1, dtype=np.int32)
    item_map[used_items] = np.arange(len(used_items), dtype=np.int32)
    inter = inter.assign(user=user_map[inter["user"].to_numpy()], item=item_map[inter["item"].to_numpy()])
    entities = dataset.item_entities
    if entities is not None:
        mapped = item_map[entities["item"].to_numpy()]
        entities = pd.DataFrame({"item": mapped[mapped >= 0], "entity": entities["entity"].to_numpy()[mapped >= 0]})
    return type(dataset)(
        name=dataset.name,
        interactions=inter.reset_index(drop=True),
        user_ids=dataset.user_ids[used_users],
        item_ids=dataset.item_ids[used_items],
        items=None if dataset.items is None else dataset.items.iloc[used_items].reset_index(drop=True),
        users=None if dataset.users is None else dataset.users.iloc[used_users].reset_index(drop=True),
        modalities={
            name: type(m)(m.values[used_items], m.mask[used_items], m.kind, m.source, m.labels)
            for name, m in dataset.modalities.items()
        },
        kg=dataset.kg,
        item_entities=entities,
        meta=dict(dataset.meta),
    )
