"""Checks on a whole data set, run after preparation and by ``fusionrec data validate``."""

from __future__ import annotations

import numpy as np

from fusionrec.data.dataset import TRAIN, Dataset
from fusionrec.errors import DataError


def validate_dataset(dataset: Dataset, *, require_split: bool = True) -> None:
    """Raise a DataError on the first problem that would make training or evaluation wrong."""
    name = dataset.name
    if dataset.is_kg_completion:  # triples instead of interactions (the kg task)
        sizes = dataset.kg_split_sizes()
        empty = [split for split, size in sizes.items() if size == 0]
        if empty:
            shown = " / ".join(f"{k} {v:,}" for k, v in sizes.items())
            raise DataError(
                f"{name}: no {empty[0]} triples ({shown}); the kg task trains, selects and tests on all three"
            )
    elif dataset.split_records is not None:  # a family's own records carry the split (news, outfits)
        sizes = dataset.record_split_sizes()
        empty = [split for split, size in sizes.items() if size == 0]
        if empty:
            shown = " / ".join(f"{k} {v:,}" for k, v in sizes.items())
            raise DataError(
                f"{name}: no {empty[0]} rows in table {dataset.split_records!r} ({shown}); "
                "training, selection and test each need some"
            )
    elif dataset.num_interactions == 0:
        raise DataError(f"{name}: no interactions left; check the filters (data.kcore, data.implicit_threshold)")
    for modality_name, modality in dataset.modalities.items():
        if modality.values.shape[0] != dataset.num_items or modality.mask.shape != (dataset.num_items,):
            raise DataError(
                f"{name}: modality {modality_name!r} has {modality.values.shape[0]} rows for "
                f"{dataset.num_items} items; features must be aligned to the item index"
            )
        finite = np.isfinite(modality.values.reshape(dataset.num_items, -1)).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise DataError(
                f"{name}: modality {modality_name!r} has NaN/inf values for item "
                f"{dataset.item_ids[row]!r} (row {row}); fix the features or zero them and mark the item missing"
            )
    if require_split and not dataset.is_kg_completion and dataset.split_records is None:
        if not dataset.is_split:
            raise DataError(f"{name}: interactions are not split; set data.split.method")
        inter = dataset.interactions
        train_users = np.zeros(dataset.num_users, dtype=bool)
        train_users[inter["user"].to_numpy()[inter["split"].to_numpy() == TRAIN]] = True
        held_out = (dataset.meta.get("split") or {}).get("method") == "cold_user"  # new users by design
        if not held_out and not train_users.all():
            user = int(np.flatnonzero(~train_users)[0])
            raise DataError(
                f"{name}: {int((~train_users).sum())} user(s) have no training interaction after the "
                f"split (first: {dataset.user_ids[user]!r}); apply data.kcore=5 or use another split"
            )
        if (inter["split"].to_numpy() == TRAIN).sum() == 0:
            raise DataError(f"{name}: the training split is empty")
        check_splits_not_empty(dataset)


def check_splits_not_empty(dataset: Dataset) -> None:
    """Valid and test must hold interactions: training selects on valid and reports on test, so an
    empty one would end a run without metrics. The message names the split and what to change."""
    sizes = dataset.split_sizes()
    for split in ("valid", "test"):
        if sizes[split]:
            continue
        config = dataset.meta.get("split") or {}
        method = config.get("method", "?")
        share = {"valid": 1, "test": 2}[split]
        ratios = config.get("ratios")
        per_user = (
            f"each user gets round(n x {split} share) of its n interactions, at least one kept for "
            f"training, so raise the {split} share of data.split.ratios (now {_ratios(ratios)}), keep only "
            "users with more interactions (data.kcore=5), or use data.split.method=loo"
        )
        fixes = {
            "random": per_user,
            "temporal": per_user,
            "global_time": f"raise the {split} share of data.split.ratios (now {_ratios(ratios)}): the cut left no "
            f"{split} rows, or only rows of users or items unseen in training",
            "loo": f"leave-one-out gives a {split} item only to users with at least {3 if split == 'valid' else 2} "
            f"interactions: keep such users (data.kcore={3 if split == 'valid' else 2}) or use another "
            "data.split.method",
            "column": f"the source's split column (x_label / split) has no {split} rows (value {share}); fix the "
            "column, or use data.split.method=random, temporal or loo",
            "files": f"the {split} file under data.split.path has no pairs; fill it or use data.split.method=random",
            "cold_item": "raise data.split.cold_item_ratio",
            "cold_user": "raise data.split.cold_user_max_interactions",
        }
        fix = fixes.get(method, "change data.split.method or data.split.ratios")
        shown = " / ".join(f"{k} {v:,}" for k, v in sizes.items())
        raise DataError(f"{dataset.name}: the {split} split is empty ({shown}, split.method={method}); {fix}")


def _ratios(ratios: object) -> str:
    return ",".join(f"{r:g}" for r in ratios) if isinstance(ratios, (list, tuple)) else "?"
