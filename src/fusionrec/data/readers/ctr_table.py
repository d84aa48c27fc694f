"""CTR logs: a CSV / TSV / Parquet table of labelled rows, every column kept (``data.format=ctr``).

One row per impression: ``user`` and ``item`` ids (found by name, or mapped with ``data.columns``),
optional ``timestamp`` / ``rating``, and any other columns (the ``label``, context fields, item or
user attributes) kept as interaction columns, which the ``ctr`` task's ``task.fields`` then read
(``source: interaction``). Item features come from ``.npy`` files named in ``data.modalities``
(``image: image_feat.npy``, relative to the table's folder): one row per item, in the data set's item
order (the item ids sorted as ``fusionrec data info`` lists them); an all-zero row marks an item
without that feature, which is then masked (never used as a real zero vector).

A (user, item) pair may occur once per split only (the canonical folder's split rule); repeated
impressions of a pair are refused unless ``data.duplicates=first`` or ``last`` keeps one.
Detection: a CSV / TSV / Parquet file with a ``label`` column (``data.format=ctr`` reads any other).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset, Modality, build_dataset, locate_row, show_value
from fusionrec.data.filters import deduplicate
from fusionrec.data.io import read_npy
from fusionrec.data.readers.table import (
    DEFAULT_ALIASES,
    PARQUET_SUFFIXES,
    ReadReport,
    check_values,
    column_list,
    read_table_file,
)
from fusionrec.errors import DataError
from fusionrec.registry import READERS

if TYPE_CHECKING:
    from fusionrec.data.config import DataConfig

_NON_FINITE = ("nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity")


def header_names(path: Path) -> list[str]:
    """The column names of a table file, read cheaply (the first line, or the Parquet schema); [] if unreadable."""
    suffix = "".join(path.suffixes[-2:]).lower()
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if path.suffix.lower() in (".gz", ".bz2", ".xz", ".zip", ".zst"):
            return []
        with path.open(encoding="utf-8") as handle:
            first = handle.readline().strip()
    except Exception:  # noqa: BLE001  # detection never fails: an unreadable file is just not ours
        return []
    sep = "\t" if "\t" in first or suffix.endswith((".tsv", ".tab")) else ","
    return [name.strip().strip('"') for name in first.split(sep)]


def canonical_names(frame: pd.DataFrame, mapping: dict[str, str], source: str) -> dict[str, str]:
    """``{original column: canonical name}`` for user, item, timestamp and rating (mapped or by alias)."""
    found: dict[str, str] = {}
    for canon in ("user", "item", "timestamp", "rating"):
        if canon in mapping:
            if mapping[canon] not in frame.columns:
                raise DataError(
                    f"{source}: mapped column {mapping[canon]!r} (data.columns.{canon}) not found; "
                    f"columns are {column_list(frame)}"
                )
            found[mapping[canon]] = canon
            continue
        alias = next((c for c in DEFAULT_ALIASES[canon] if c in frame.columns and c not in found), None)
        if alias is not None:
            found[alias] = canon
        elif canon in ("user", "item"):
            raise DataError(
                f"{source}: no {canon} column (looked for {', '.join(DEFAULT_ALIASES[canon])}); "
                f"columns are {column_list(frame)}; set data.columns.{canon}=<column>"
            )
    return found


def read_ctr_frame(
    frame: pd.DataFrame, config: DataConfig, source: str, report: ReadReport, name: str, fmt: str = "ctr"
) -> Dataset:
    """A Dataset from a raw frame of labelled rows: canonical columns renamed, the others kept."""
    frame = frame.rename(columns=canonical_names(frame, dict(config.columns), source))
    frame = deduplicate(check_values(frame, source, report), config.duplicates, source)
    extras = [c for c in frame.columns if c not in ("user", "item", "timestamp", "rating", "split")]
    for column in extras:
        refuse_non_finite(frame, column, source)
    if "label" in frame:
        refuse_non_binary(frame["label"], source)
    dataset = build_dataset(
        name,
        frame.drop(columns=extras),
        meta={"source": source, "format": fmt, "cleaning": report.as_meta()},
    )
    for column in extras:
        dataset.interactions[column] = frame[column].to_numpy()
    return dataset


def refuse_non_finite(frame: pd.DataFrame, column: str, source: str) -> None:
    """A numeric column (every non-empty cell a number) must not hold NaN or inf: one line naming the row."""
    cells = frame[column]
    filled = cells.notna().to_numpy()
    parsed = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    numbers = np.isfinite(parsed) | np.isin(cells.astype(str).str.strip().str.lower(), _NON_FINITE)
    if not filled.any() or not numbers[filled].all():
        return  # a text column (or an empty one)
    bad = filled & ~np.isfinite(parsed)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: {locate_row(frame, row)} column {column!r} is {show_value(cells.iloc[row])}, not a finite "
            "number; fix or drop that row (leave a missing value empty)"
        )


def refuse_non_binary(labels: pd.Series, source: str) -> None:
    """Click labels are 0 or 1."""
    parsed = pd.to_numeric(labels, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isin(parsed, (0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: {locate_row(labels, row)} label is {show_value(labels.iloc[row])} "
            f"({int(bad.sum())} row(s) not 0/1); labels must be 0 or 1"
        )


def attach_feature_files(dataset: Dataset, files: dict[str, str], folder: Path) -> Dataset:
    """Item features from ``.npy`` files, one row per item in item-index order; all-zero rows are missing."""
    for modality, file in files.items():
        path = Path(file) if Path(file).is_absolute() else folder / file
        values = read_npy(path, fix="save one float32 row per item, in item-id order")
        if values.ndim not in (2, 3) or values.shape[0] != dataset.num_items:
            raise DataError(
                f"{path}: {values.shape[0] if values.ndim else 0} feature rows, but the log has {dataset.num_items} "
                f"distinct items; {modality} features need exactly one row per item, in item-id order"
            )
        values = values.astype(np.float32)
        finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise DataError(f"{path}: row {row} (item {dataset.item_ids[row]}) has NaN/inf; fix it or zero the row")
        present = np.abs(values.reshape(len(values), -1)).sum(axis=1) > 0
        dataset.modalities[modality] = Modality(values, present, "regions" if values.ndim == 3 else "dense", str(path))
    return dataset


@READERS.register(
    "ctr",
    order=88,
    detects="a CSV / TSV / Parquet file with a label column",
    description="a CSV / TSV / Parquet click log: user, item, a label and any field columns, all kept; "
    "item features from .npy files named in data.modalities",
)
class CTRTableReader:
    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_file() and "label" in header_names(path)

    @staticmethod
    def read(path: Path, config: DataConfig) -> Dataset:
        report = ReadReport()
        frame = read_table_file(path, report=report)
        dataset = read_ctr_frame(frame, config, str(path), report, path.name.split(".")[0])
        return attach_feature_files(dataset, dict(config.modalities), path.parent)
