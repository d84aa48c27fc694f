"""Generic CSV / TSV / Parquet interaction tables with a column mapping, and careful file reading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset, build_dataset
from fusionrec.data.filters import deduplicate
from fusionrec.errors import DataError

CANONICAL = ("user", "item", "rating", "timestamp", "split")
DEFAULT_ALIASES = {
    "user": ("user", "user_id", "userid", "userID", "userId", "reviewerID"),
    "item": ("item", "item_id", "itemid", "itemID", "itemId", "movieId", "asin"),
    "rating": ("rating", "overall", "score"),
    "timestamp": ("timestamp", "time", "unixReviewTime"),
    "split": ("split", "x_label"),
}


def read_table_file(path: Path, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet file as strings, turning every failure into a DataError naming the file."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        if path.suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            sep = kwargs.pop("sep", None) or ("\t" if path.suffix in (".tsv", ".inter", ".item", ".user", ".kg", ".link") else ",")
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""], **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise DataError(f"{path}: unreadable or truncated ({first}); check the file and its separator") from None
    if frame.empty:
        raise DataError(f"{path}: has a header but no rows")
    return frame


def map_columns(frame: pd.DataFrame, mapping: dict[str, str], source: str) -> pd.DataFrame:
    """Rename user columns to the canonical names; unknown mapping keys and missing columns fail clearly."""
    unknown = set(mapping) - set(CANONICAL)
    if unknown:
        raise DataError(f"{source}: unknown column mapping key(s) {sorted(unknown)}; valid keys: {', '.join(CANONICAL)}")
    rename: dict[str, str] = {}
    for canon in CANONICAL:
        if canon in mapping:
            if mapping[canon] not in frame.columns:
                raise DataError(f"{source}: mapped column {mapping[canon]!r} (for {canon}) not found; columns are "
                                f"{list(frame.columns)}")
            rename[mapping[canon]] = canon
        else:
            hit = next((c for c in DEFAULT_ALIASES[canon] if c in frame.columns), None)
            if hit is not None:
                rename[hit] = canon
    for need in ("user", "item"):
        if need not in rename.values():
            raise DataError(f"{source}: no {need} column among {list(frame.columns)}; name it {need!r} or set "
                            f"data.columns.{need}=<column>")
    return frame.rename(columns=rename)[[c for c in CANONICAL if c in rename.values()]]


def check_values(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check ids are present and numeric columns parse; name the first bad row (1-based, header = row 1)."""
    for col in ("user", "item"):
        missing = frame[col].isna().to_numpy()
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise DataError(f"{source}: row {row + 2} has an empty {col} id; fill or drop it")
    for col in ("rating", "timestamp"):
        if col in frame:
            parsed = pd.to_numeric(frame[col], errors="coerce")
            bad = parsed.isna().to_numpy() | ~np.isfinite(parsed.to_numpy(dtype=float, na_value=np.nan))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(f"{source}: row {row + 2} column {col!r} is {frame[col].iloc[row]!r}, not a number")
            frame = frame.assign(**{col: parsed})
    return frame


def read_table(path: str | Path, columns: dict[str, str] | None = None, duplicates: str = "error",
               name: str | None = None) -> Dataset:
    path = Path(path)
    frame = check_values(map_columns(read_table_file(path), columns or {}, str(path)), str(path))
    frame = deduplicate(frame, duplicates, str(path))
    return build_dataset(name or path.stem, frame, meta={"source": str(path), "format": "csv"})
