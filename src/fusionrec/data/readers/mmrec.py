"""MMRec folders: ``<name>.inter`` (userID, itemID, [rating], [timestamp], x_label 0/1/2) plus
``image_feat.npy`` / ``text_feat.npy`` whose row ``i`` belongs to item id ``i``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset, build_dataset
from fusionrec.data.filters import deduplicate
from fusionrec.data.readers.table import check_values, read_table_file
from fusionrec.errors import DataError

_FEATURES = {"image_feat.npy": "image", "text_feat.npy": "text"}


def read_mmrec(folder: str | Path, name: str | None = None, duplicates: str = "error") -> Dataset:
    folder = Path(folder)
    inters = sorted(folder.glob("*.inter"))
    if name:
        inters = [p for p in inters if p.stem == name]
    if len(inters) != 1:
        raise DataError(f"{folder}: expected one <name>.inter file, found {[p.name for p in inters] or 'none'}")
    path = inters[0]
    frame = read_table_file(path, sep="\t")
    need = ["userID", "itemID", "x_label"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing MMRec column(s) {missing}; columns are {list(frame.columns)}")
    frame = frame.rename(columns={"userID": "user", "itemID": "item", "x_label": "split"})
    frame = frame[[c for c in ("user", "item", "rating", "timestamp", "split") if c in frame.columns]]
    frame = check_values(frame, str(path))
    for col in ("user", "item", "split"):
        as_int = pd.to_numeric(frame[col], errors="coerce")
        bad = as_int.isna().to_numpy() | (as_int.to_numpy(dtype=float, na_value=-1) < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: row {row + 2} column {col!r} is {frame[col].iloc[row]!r}; MMRec ids and "
                            "x_label are non-negative integers")
        frame[col] = as_int.astype(np.int64)
    if not frame["split"].isin([0, 1, 2]).all():
        row = int(np.flatnonzero(~frame["split"].isin([0, 1, 2]).to_numpy())[0])
        raise DataError(f"{path}: row {row + 2} x_label {frame['split'].iloc[row]} is not 0/1/2 (train/valid/test)")
    frame = deduplicate(frame, duplicates, str(path))

    num_items = int(frame["item"].max()) + 1
    modalities = {}
    rows_seen: dict[str, int] = {}
    for file, modality in _FEATURES.items():
        feat_path = folder / file
        if not feat_path.exists():
            continue
        values = _load_npy(feat_path)
        if values.ndim != 2 or values.shape[0] < num_items:
            raise DataError(f"{feat_path}: shape {values.shape}, but {path.name} uses item ids up to {num_items - 1}; "
                            f"a feature file needs one row per item id (at least {num_items} rows)")
        if rows_seen and values.shape[0] not in rows_seen.values():
            other, rows = next(iter(rows_seen.items()))
            raise DataError(f"{feat_path}: {values.shape[0]} rows but {other} has {rows}; both must have one row per item id")
        rows_seen[file] = values.shape[0]
        num_items = values.shape[0]
        modalities[modality] = (np.arange(values.shape[0]), values, {"source": file})
    return build_dataset(path.stem, frame, modalities=modalities, item_universe=np.arange(num_items),
                         meta={"source": str(folder), "format": "mmrec"})


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: unreadable or truncated .npy ({exc}); extract the features again") from None
