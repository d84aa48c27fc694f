"""Generic CSV / TSV / Parquet interaction tables with a column mapping, and careful file reading.

Every reader in this package goes through :func:`read_table_file`, which turns each way a file can be
wrong (missing, empty, binary, not UTF-8, ragged rows, truncated parquet) into one
:class:`~fusionrec.errors.DataError` line naming the file and, where there is one, the line.

Row locations: a frame returned by :func:`read_table_file` is indexed by where each row sits in the
file: ``line N`` for text files (the header is line 1) and ``row N`` (1-based) for Parquet. The
index survives renaming and filtering, so later checks can still name the offending line.

Cleaning, counted in a :class:`ReadReport` that readers store as the manifest's ``meta.cleaning``:
ids with surrounding whitespace (``" 1 "``) are stripped (so they are the id ``"1"``, not another
user), and rows equal to the header (a header repeated inside the table, e.g. from concatenated
CSV files) are dropped.

This module is also the ``csv`` reader (``data.format=csv``): one interaction table per file.
"""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fusionrec.data.dataset import SPLIT_CODES, Dataset, build_dataset, locate_row, show_value
from fusionrec.data.filters import deduplicate
from fusionrec.errors import DataError
from fusionrec.registry import READERS

if TYPE_CHECKING:
    from fusionrec.data.config import DataConfig

CANONICAL = ("user", "item", "rating", "timestamp", "split")
DEFAULT_ALIASES = {
    "user": ("user", "user_id", "userid", "userID", "userId", "reviewerID"),
    "item": ("item", "item_id", "itemid", "itemID", "itemId", "movieId", "asin"),
    "rating": ("rating", "overall", "score"),
    "timestamp": ("timestamp", "time", "unixReviewTime"),
    "split": ("split", "x_label"),
}
TAB_SUFFIXES = (".tsv", ".tab", ".inter", ".item", ".user", ".kg", ".link")
PARQUET_SUFFIXES = (".parquet", ".pq")
_COMPRESSED = (".gz", ".bz2", ".xz", ".zip", ".zst")
_EXPECTED_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


@dataclass
class ReadReport:
    """What a reader cleaned, for the manifest (``meta.cleaning``) and ``fusionrec data info``.

    ``stripped_ids``: id values that had surrounding whitespace (now stripped);
    ``repeated_header_rows``: rows equal to the header line that were dropped, ``first_repeated_header``
    where the first one was (``file line N``).
    """

    stripped_ids: int = 0
    repeated_header_rows: int = 0
    first_repeated_header: str | None = None

    def as_meta(self) -> dict[str, Any]:
        return {
            "stripped_ids": self.stripped_ids,
            "repeated_header_rows": self.repeated_header_rows,
            "first_repeated_header": self.first_repeated_header,
        }


def read_table_file(
    path: Path, sep: str | None = None, *, allow_empty: bool = False, report: ReadReport | None = None, **kwargs: Any
) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet file (text columns as ``str``), turning every failure into a DataError.

    ``sep`` defaults to a tab for ``.tsv`` and RecBole atomic files, a comma for ``.csv``, and is
    sniffed from the header otherwise (tab, comma, semicolon or ``|``). A header without rows is an
    error unless ``allow_empty``. With a ``report``, rows equal to the header (a repeated header
    line) are dropped and counted in it; without one they are kept (and later checks name them).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty; it needs a header line and at least one row")
    suffix = _suffix(path)
    if suffix in PARQUET_SUFFIXES:
        return _drop_repeated_headers(_read_parquet(path), path, report)
    compressed = path.suffix.lower() in _COMPRESSED
    if not compressed:
        _reject_binary(path)
        sep = sep or _sniff_separator(path, suffix)
    else:
        sep = sep or ("\t" if suffix in TAB_SUFFIXES else ",")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path, sep=sep, dtype=str, keep_default_na=False, na_values=[""], index_col=False, **kwargs
            )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: no header line (the file is blank); it needs a header and at least one row") from None
    except pd.errors.ParserError as exc:
        match = _EXPECTED_FIELDS.search(str(exc))
        if match:
            want, line, saw = match.groups()
            raise DataError(
                f"{path}: line {line} has {saw} fields but the header has {want} columns (sep={sep!r}); "
                "remove the extra fields or quote values that contain the separator"
            ) from None
        raise DataError(
            f"{path}: unreadable or truncated ({_first_line(exc)}); check the file and its separator"
        ) from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8 or check that it is really a text table"
        ) from None
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: unreadable or truncated ({_first_line(exc)}); check the file") from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        line, fields, want = _first_ragged_line(path, sep)
        raise DataError(
            f"{path}: line {line} has {fields} fields but the header has {want} columns (sep={sep!r}); "
            "remove the extra fields or quote values that contain the separator"
        )
    _reject_duplicate_columns(frame, path)
    if frame.empty and not allow_empty:
        raise DataError(f"{path}: has a header but no rows")
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="line")
    return _drop_repeated_headers(frame, path, report)


def strip_ids(frame: pd.DataFrame, columns: tuple[str, ...] | list[str], report: ReadReport | None) -> pd.DataFrame:
    """Strip surrounding whitespace from the text id ``columns`` (``" 1 "`` is the id ``"1"``), counting
    the values changed in ``report``."""
    changes = {}
    for col in columns:
        if col not in frame:
            continue
        values = frame[col]
        if not (values.dtype == object or isinstance(values.dtype, pd.StringDtype)):
            continue
        changed = _padded(values)
        if changed.any():
            text = values.astype(object)
            changes[col] = text.where(~changed, text[changed].astype(str).str.strip())
            if report is not None:
                report.stripped_ids += int(changed.sum())
    return frame.assign(**changes) if changes else frame


def map_columns(frame: pd.DataFrame, mapping: dict[str, str], source: str) -> pd.DataFrame:
    """Rename user columns to the canonical names; unknown mapping keys and missing columns fail clearly.

    Columns that map to nothing are ignored (a table may carry more than fusionrec needs).
    """
    unknown = set(mapping) - set(CANONICAL)
    if unknown:
        raise DataError(
            f"{source}: unknown column mapping key(s) {sorted(unknown)}; valid keys: {', '.join(CANONICAL)}"
        )
    rename: dict[str, str] = {}
    for canon in CANONICAL:
        if canon in mapping:
            if mapping[canon] not in frame.columns:
                raise DataError(
                    f"{source}: mapped column {mapping[canon]!r} (data.columns.{canon}) not found; "
                    f"columns are {column_list(frame)}"
                )
            rename[mapping[canon]] = canon
        else:
            hit = next((c for c in DEFAULT_ALIASES[canon] if c in frame.columns and c not in rename), None)
            if hit is not None:
                rename[hit] = canon
    for need in ("user", "item"):
        if need not in rename.values():
            raise DataError(
                f"{source}: no {need} column among {column_list(frame)}; name it {need!r} or set "
                f"data.columns.{need}=<column>"
            )
    return frame.rename(columns=rename)[[c for c in CANONICAL if c in rename.values()]]


def check_values(frame: pd.DataFrame, source: str, report: ReadReport | None = None) -> pd.DataFrame:
    """Strip whitespace around ids (counted in ``report``), check ids are present, numeric columns
    parse to finite numbers and split values are known.

    Errors name the line (or Parquet row) of the first bad value.
    """
    frame = strip_ids(frame, ("user", "item"), report)
    for col in ("user", "item"):
        values = frame[col]
        missing = values.isna().to_numpy()
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            missing = missing | values.eq("").fillna(False).to_numpy(dtype=bool)  # ids are stripped above
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise DataError(f"{source}: {locate_row(frame, row)} has an empty {col} id; fill or drop that row")
    for col in ("rating", "timestamp"):
        if col in frame:
            parsed = pd.to_numeric(frame[col], errors="coerce")
            bad = ~np.isfinite(parsed.to_numpy(dtype=float, na_value=np.nan))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"{source}: {locate_row(frame, row)} column {col!r} is {show_value(frame[col].iloc[row])}, "
                    "not a finite number; fix or drop that row"
                )
            frame = frame.assign(**{col: parsed})
    if "split" in frame:
        raw = frame["split"].astype(str).str.strip().str.lower()
        known = raw.isin(list(SPLIT_CODES) + ["0", "1", "2", "0.0", "1.0", "2.0"]).to_numpy()
        if not known.all():
            row = int(np.flatnonzero(~known)[0])
            raise DataError(
                f"{source}: {locate_row(frame, row)} split is {show_value(frame['split'].iloc[row])}; "
                "use 0/1/2 or train/valid/test"
            )
    return frame


def read_table(
    path: str | Path, columns: dict[str, str] | None = None, duplicates: str = "error", name: str | None = None
) -> Dataset:
    """Read a generic interaction table: ``user``, ``item`` and optional ``rating``, ``timestamp``,
    ``split`` columns (common aliases such as ``userId``/``movieId`` are recognised; ``columns``
    maps canonical names to yours, e.g. ``{"user": "customer", "item": "sku"}``)."""
    path = Path(path)
    report = ReadReport()
    frame = map_columns(read_table_file(path, report=report), columns or {}, str(path))
    frame = deduplicate(check_values(frame, str(path), report), duplicates, str(path))
    return build_dataset(
        name or _stem(path), frame, meta={"source": str(path), "format": "csv", "cleaning": report.as_meta()}
    )


@READERS.register(
    "csv",
    order=90,
    detects="a file",
    description="one CSV / TSV / Parquet interaction table (.csv, .tsv, .parquet, also compressed); "
    "columns found by name or mapped with data.columns",
)
class TableReader:
    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_file()

    @staticmethod
    def read(path: Path, config: DataConfig) -> Dataset:
        return read_table(path, config.columns, config.duplicates)


def column_list(frame: pd.DataFrame, limit: int = 12) -> str:
    """The frame's columns for a message, shortened so a garbage header cannot flood the terminal."""
    names = [str(c)[:40] for c in frame.columns[:limit]]
    more = f" ... ({len(frame.columns)} in all)" if len(frame.columns) > limit else ""
    return f"{names}{more}"


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, EOFError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(
            f"{path}: unreadable or truncated Parquet ({_first_line(exc)}); "
            "write the file again (pandas.DataFrame.to_parquet)"
        ) from None
    if frame.empty:
        raise DataError(f"{path}: Parquet file has no rows")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    for col in frame.columns:  # ids and labels are compared as text, like CSV columns
        if frame[col].dtype == object or isinstance(frame[col].dtype, pd.StringDtype):
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return frame


def _padded(values: pd.Series) -> np.ndarray:
    """bool per value: a string with leading or trailing whitespace (vectorised in Arrow when it can)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover - pyarrow comes with the Parquet support
        pa = None
    if pa is not None:
        try:
            arr = pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
            return pc.fill_null(pc.not_equal(arr, pc.utf8_trim_whitespace(arr)), False).to_numpy(zero_copy_only=False)
        except (pa.ArrowException, TypeError, ValueError):
            pass  # not all strings (mixed types): compare in Python below
    text = values.astype(object)
    as_str = text.where(text.notna(), "").astype(str)
    return (as_str.str.strip().to_numpy(dtype=object) != as_str.to_numpy(dtype=object)) & text.notna().to_numpy()


def _drop_repeated_headers(frame: pd.DataFrame, path: Path, report: ReadReport | None) -> pd.DataFrame:
    """Drop rows whose every cell equals its column's name (a header line repeated in the table)."""
    if report is None or frame.empty or not len(frame.columns):
        return frame
    names = [str(c) for c in frame.columns]  # a repeated header line has the header's exact text
    first = frame.iloc[:, 0]
    if not (first.dtype == object or isinstance(first.dtype, pd.StringDtype)):
        return frame
    rows = np.flatnonzero(first.to_numpy(dtype=object) == names[0])
    if not len(rows):
        return frame
    same = np.ones(len(rows), dtype=bool)
    for j in range(1, len(names)):
        same &= frame.iloc[rows, j].to_numpy(dtype=object) == names[j]
    rows = rows[same]
    if not len(rows):
        return frame
    if report.repeated_header_rows == 0:
        report.first_repeated_header = f"{path.name} {locate_row(frame, int(rows[0]))}"
    report.repeated_header_rows += len(rows)
    keep = np.ones(len(frame), dtype=bool)
    keep[rows] = False
    frame = frame[keep]
    if frame.empty:
        raise DataError(f"{path}: every row repeats the header line; the file has no data rows")
    return frame


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _stem(path: Path) -> str:
    name = path.name
    for suffix in reversed(path.suffixes):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    return name or path.stem


def _reject_binary(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if head.startswith(b"PAR1"):
        raise DataError(f"{path}: is a Parquet file; give it a .parquet suffix")
    if head.startswith((b"\x1f\x8b", b"PK\x03\x04", b"BZh", b"\xfd7zXZ")):
        raise DataError(f"{path}: is a compressed archive; decompress it, or name it .csv.gz / .csv.zip")
    if b"\x00" in head:
        raise DataError(f"{path}: binary data (NUL bytes), not a text table; check that this is the right file")


def _sniff_separator(path: Path, suffix: str) -> str:
    default = "\t" if suffix in TAB_SUFFIXES else ","
    with open(path, "rb") as fh:
        header = fh.readline().decode("utf-8", errors="replace")
    if default in header:
        return default
    counts = {s: header.count(s) for s in ("\t", ",", ";", "|")}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else default


def _first_ragged_line(path: Path, sep: str) -> tuple[int, int, int]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter=sep)
        want = len(next(reader))
        for row in reader:
            if len(row) > want:
                return reader.line_num, len(row), want
    return 2, want + 1, want  # pragma: no cover - pandas and csv disagree; name the first data line


def _reject_duplicate_columns(frame: pd.DataFrame, path: Path) -> None:
    names = set(map(str, frame.columns))
    for col in map(str, frame.columns):
        base, dot, num = col.rpartition(".")
        if dot and num.isdigit() and base in names:
            raise DataError(f"{path}: column {base!r} appears more than once in the header; rename or drop one")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
