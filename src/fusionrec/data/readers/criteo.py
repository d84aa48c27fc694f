"""The Criteo display-advertising layout (``data.format=criteo``): tab-separated, no header, 40 columns
per line: ``label`` (0/1), 13 integer features ``I1``..``I13`` (empty when missing) and 26 hashed
categorical features ``C1``..``C26`` (hex, empty when missing).

Criteo has no user or item column. By default every row gets the user ``all`` (so GAUC equals AUC
and a random split is a global one) and its own item (its line number); ``data.columns.user=C1``
(or any column) makes that column the user id, ``data.columns.item=C3`` the item id (the pair must
then be unique per row, see ``data.duplicates``). All 40 columns stay interaction columns for
``task.fields`` (e.g. ``I1: {kind: numeric, transform: log, fill_missing: 0}``, ``C1: {}``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from fusionrec.data.dataset import Dataset
from fusionrec.data.readers.ctr_table import read_ctr_frame
from fusionrec.data.readers.table import ReadReport, read_table_file
from fusionrec.errors import DataError
from fusionrec.registry import READERS

if TYPE_CHECKING:
    from fusionrec.data.config import DataConfig

COLUMNS = ["label", *(f"I{i}" for i in range(1, 14)), *(f"C{i}" for i in range(1, 27))]


@READERS.register(
    "criteo",
    order=85,
    detects="a file whose first line has 40 tab-separated fields, the first 0 or 1",
    description="Criteo layout: label, I1-I13, C1-C26, tab-separated, no header",
)
class CriteoReader:
    @staticmethod
    def detect(path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() in (".gz", ".bz2", ".xz", ".zip", ".parquet", ".pq"):
            return False
        try:
            with path.open(encoding="utf-8") as handle:
                first = handle.readline().rstrip("\r\n").split("\t")
        except (OSError, UnicodeDecodeError):
            return False
        return len(first) == len(COLUMNS) and first[0] in ("0", "1")

    @staticmethod
    def read(path: Path, config: DataConfig) -> Dataset:
        report = ReadReport()
        frame = read_table_file(path, "\t", header=None, names=COLUMNS, report=report)
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="line")  # no header: data starts on line 1
        fields = frame.iloc[:, len(COLUMNS) :] if frame.shape[1] > len(COLUMNS) else None
        if fields is not None and fields.notna().any().any():
            raise DataError(f"{path}: lines have more than {len(COLUMNS)} tab-separated fields; not the Criteo layout")
        mapping = dict(config.columns)
        unknown = [f"data.columns.{k}={v}" for k, v in mapping.items() if v not in COLUMNS]
        if unknown:
            raise DataError(f"{path}: {unknown[0]} names no Criteo column; use label, I1-I13 or C1-C26")
        frame = frame.assign(
            user=frame[mapping.pop("user")] if "user" in mapping else "all",
            item=frame[mapping.pop("item")] if "item" in mapping else frame.index.astype(str),
        )
        if mapping:
            raise DataError(f"data.columns {sorted(mapping)}: the Criteo reader maps only user and item")
        no_mapping = config.model_copy(update={"columns": {}})
        return read_ctr_frame(frame, no_mapping, str(path), report, path.name.split(".")[0], "criteo")
