"""Checks on a whole data set, run after preparation and by ``fusionrec data validate``."""

from __future__ import annotations

import numpy as np

from fusionrec.data.dataset import TRAIN, Dataset
from fusionrec.errors import DataError


def validate_dataset(dataset: Dataset, *, require_split: bool = True) -> None:
    """Raise a DataError on the first problem that would make training or evaluation wrong."""
    name = dataset.name
    if dataset.num_interactions == 0:
        raise DataError(f"{name}: no interactions left; check the filters (data.kcore, data.implicit_threshold)")
    for modality_name, modality in dataset.modalities.items():
        if modality.values.shape[0] != dataset.num_items or modality.mask.shape != (dataset.num_items,):
            raise DataError(f"{name}: modality {modality_name!r} has {modality.values.shape[0]} rows for "
                            f"{dataset.num_items} items; features must be aligned to the item index")
        finite = np.isfinite(modality.values.reshape(dataset.num_items, -1)).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise DataError(f"{name}: modality {modality_name!r} has NaN/inf values for item "
                            f"{dataset.item_ids[row]!r} (row {row}); fix the features or zero them and mark the item missing")
    if require_split:
        if not dataset.is_split:
            raise DataError(f"{name}: interactions are not split; set data.split.method")
        inter = dataset.interactions
        train_users = np.zeros(dataset.num_users, dtype=bool)
        train_users[inter["user"].to_numpy()[inter["split"].to_numpy() == TRAIN]] = True
        held_out = (dataset.meta.get("split") or {}).get("method") == "cold_user"  # new users by design
        if not held_out and not train_users.all():
            user = int(np.flatnonzero(~train_users)[0])
            raise DataError(f"{name}: {int((~train_users).sum())} user(s) have no training interaction after the "
                            f"split (first: {dataset.user_ids[user]!r}); apply data.kcore=5 or use another split")
        if (inter["split"].to_numpy() == TRAIN).sum() == 0:
            raise DataError(f"{name}: the training split is empty")
