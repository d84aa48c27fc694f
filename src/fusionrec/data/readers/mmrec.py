"""MMRec folders: ``<name>.inter`` (userID, itemID, [rating], [timestamp], x_label 0/1/2) plus
``image_feat.npy`` / ``text_feat.npy`` whose row ``i`` belongs to item id ``i``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fusionrec.data.dataset import Dataset, build_dataset, locate_row, show_value
from fusionrec.data.filters import deduplicate
from fusionrec.data.io import read_npy
from fusionrec.data.readers.table import ReadReport, check_values, column_list, read_table_file, strip_ids
from fusionrec.errors import DataError
from fusionrec.registry import READERS

if TYPE_CHECKING:
    from fusionrec.data.config import DataConfig

_FEATURES = {"image_feat.npy": "image", "text_feat.npy": "text"}


def read_mmrec(folder: str | Path, name: str | None = None, duplicates: str = "error") -> Dataset:
    """Read an MMRec folder. Ids must be non-negative integers; feature row ``i`` is item id ``i``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; an MMRec data set is a folder with <name>.inter and *_feat.npy")
    inters = sorted(folder.glob("*.inter"))
    if name:
        inters = [p for p in inters if p.stem == name]
    if len(inters) != 1:
        raise DataError(
            f"{folder}: expected one <name>.inter file, found {[p.name for p in inters] or 'none'}"
            + ("; pass the data set name to choose one" if len(inters) > 1 else "")
        )
    path = inters[0]
    report = ReadReport()
    frame = read_table_file(path, sep="\t", report=report)
    need = ["userID", "itemID", "x_label"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing MMRec column(s) {missing}; columns are {column_list(frame)} "
            "(MMRec .inter files are tab-separated with userID, itemID, x_label)"
        )
    frame = frame.rename(columns={"userID": "user", "itemID": "item", "x_label": "split"})
    frame = frame[[c for c in ("user", "item", "rating", "timestamp", "split") if c in frame.columns]]
    frame = strip_ids(frame, ("user", "item"), report)
    for col, label in (("user", "userID"), ("item", "itemID"), ("split", "x_label")):
        text = frame[col].astype(str).str.strip()
        ok = text.str.fullmatch(r"[0-9]+").to_numpy()
        if not ok.all():
            row = int(np.flatnonzero(~ok)[0])
            raise DataError(
                f"{path}: {locate_row(frame, row)} {label} is {show_value(frame[col].iloc[row])}; MMRec ids and "
                "x_label are non-negative integers (map raw ids to 0..N-1 first, or use --format csv)"
            )
        frame[col] = text.astype(np.int64)
    bad = ~frame["split"].isin([0, 1, 2]).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: {locate_row(frame, row)} x_label is {frame['split'].iloc[row]}; use 0 (train), "
            "1 (valid) or 2 (test)"
        )
    frame = check_values(frame, str(path), report)
    frame = deduplicate(frame, duplicates, str(path))

    num_items = int(frame["item"].max()) + 1
    modalities = {}
    rows_seen: dict[str, int] = {}
    for file, modality in _FEATURES.items():
        feat_path = folder / file
        if not feat_path.exists():
            continue
        values = read_npy(feat_path, fix="extract the features again")
        if values.ndim != 2 or values.shape[0] == 0:
            raise DataError(
                f"{feat_path}: shape {values.shape}; MMRec features are a 2-D (items, dim) array with "
                "one row per item id"
            )
        if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
            raise DataError(f"{feat_path}: dtype {values.dtype} is not real numbers; save float32 features")
        if values.shape[0] < num_items:
            row = int(np.flatnonzero(frame["item"].to_numpy() >= values.shape[0])[0])
            raise DataError(
                f"{path}: {locate_row(frame, row)} itemID {frame['item'].iloc[row]} has no row in "
                f"{file} ({values.shape[0]} rows, item ids 0..{values.shape[0] - 1}); every itemID "
                "must index a feature row: drop unknown items or regenerate the features"
            )
        if rows_seen:
            other, rows = next(iter(rows_seen.items()))
            if values.shape[0] != rows:
                raise DataError(
                    f"{feat_path}: {values.shape[0]} rows but {other} has {rows}; both need exactly one row per item id"
                )
        finite = np.isfinite(values).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise DataError(
                f"{feat_path}: row {row} (item id {row}) has NaN/inf values ({int((~finite).sum())} bad rows "
                "in all); fix the features, or replace the row with zeros"
            )
        rows_seen[file] = values.shape[0]
        modalities[modality] = (np.arange(values.shape[0]), values, {"source": file})
    if rows_seen:
        num_items = next(iter(rows_seen.values()))
    return build_dataset(
        path.stem,
        frame,
        modalities=modalities,
        item_universe=np.arange(num_items),
        meta={"source": str(folder), "format": "mmrec", "cleaning": report.as_meta()},
    )


@READERS.register(
    "mmrec",
    order=30,
    detects="a folder with a *.inter file (not RecBole's name:type header)",
    description="MMRec folder: <name>.inter (userID, itemID, x_label) + image_feat.npy / text_feat.npy",
)
class MMRecReader:
    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_dir() and any(path.glob("*.inter"))

    @staticmethod
    def read(path: Path, config: DataConfig) -> Dataset:
        return read_mmrec(path, duplicates=config.duplicates)
