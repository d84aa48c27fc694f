"""Review JSON: Amazon review data (2014 and 2018 layouts) and Yelp reviews, gzip read transparently.

Both are files of JSON objects, one review each, either JSON Lines or concatenated (pretty-printed)
objects (Amazon Fashion 5-core). A path is such a file, or a folder holding exactly one review file
(and, optionally, an item file: Amazon ``meta*.json[.gz]`` with ``asin``, Yelp ``*business*.json[.gz]``
with ``business_id``).

- Amazon (``amazon-json``): ``reviewerID``, ``asin``, ``overall`` (rating), ``reviewText``, ``summary``,
  ``unixReviewTime``. The 2014 and 2018 layouts share these keys (2018 adds ``verified``, ``style``,
  ``vote``, ``image`` and may omit ``reviewText``). The review text is ``summary. reviewText``.
- Yelp (``yelp-json``): ``user_id``, ``business_id``, ``stars``, ``text``, ``date``.

What is refused, in one line naming the file and line: a line that is not valid JSON (a truncated or
corrupted file), a record without a user, item or rating, a rating that is not a number, and (with
an item file) a review of an item the item file does not list. What is kept and counted: a review
with empty or missing text keeps its rating (it enters no review document); the count is in the
manifest (``meta.cleaning.empty_reviews``) and a warning. Repeated (user, item) pairs follow
``data.duplicates`` (``error`` by default; ``last`` keeps the latest review).
"""

from __future__ import annotations

import gzip
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset, build_dataset
from fusionrec.data.filters import deduplicate
from fusionrec.errors import DataError
from fusionrec.registry import READERS

if TYPE_CHECKING:
    from fusionrec.data.config import DataConfig

SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz")
_PEEK = 1 << 16


class EmptyReviews(UserWarning):
    """Reviews without text were kept (their ratings count; they enter no document)."""


def read_text(path: Path) -> str:
    """The file's text, gunzipped when it starts with the gzip magic bytes."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read it ({exc}); is it a complete UTF-8 (or gzip) file?") from None


def iter_json_records(path: Path, text: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, record)`` for each JSON object of a JSON Lines or concatenated-objects file.

    JSON Lines when the first non-blank line is a whole object; else concatenated objects, read with
    ``JSONDecoder.raw_decode``. Anything that is not a JSON object is one DataError naming its line."""
    text = read_text(path) if text is None else text
    first = next((line for line in text.splitlines() if line.strip()), "")
    if _is_object(first):
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield number, _record(path, number, line)
        return
    decoder = json.JSONDecoder()
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            return
        start_line = text.count("\n", 0, pos) + 1
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: line {exc.lineno}: not valid JSON ({exc.msg}); the file may be truncated"
            ) from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}: line {start_line}: a JSON {type(obj).__name__}, not an object (one review)")
        yield start_line, obj


def _is_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _record(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: line {number} is not valid JSON ({exc.msg} at column {exc.colno}); fix or delete that line"
        ) from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: line {number}: a JSON {type(obj).__name__}, not an object (one review)")
    return obj


def first_record(path: Path) -> dict[str, Any] | None:
    """The first JSON object of a (possibly gzipped) file from its first 64 KiB, or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
        opener: Any = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            text = fh.read(_PEEK).decode("utf-8", errors="ignore")
        obj, _ = json.JSONDecoder().raw_decode(text.lstrip())
    except (OSError, EOFError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def review_files(path: Path) -> list[Path]:
    """``path`` itself, or the JSON files directly inside the folder ``path``."""
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(SUFFIXES))
    return []


def _detects(path: Path, keys: tuple[str, ...]) -> bool:
    for file in review_files(path)[:8]:
        if file.name.lower().endswith(SUFFIXES):
            record = first_record(file)
            if record is not None and all(k in record for k in keys):
                return True
    return False


def _pick(path: Path, keys: tuple[str, ...], item_keys: tuple[str, ...], what: str) -> tuple[Path, Path | None]:
    """The review file (records with ``keys``) and the optional item file (``item_keys``) under ``path``."""
    reviews, items = [], []
    for file in review_files(path):
        record = first_record(file) or {}
        if all(k in record for k in keys):
            reviews.append(file)
        elif all(k in record for k in item_keys):
            items.append(file)
    if len(reviews) != 1:
        found = ", ".join(p.name for p in reviews) or "none"
        raise DataError(f"{path}: needs exactly one {what} review file (records with {', '.join(keys)}); found {found}")
    if len(items) > 1:
        raise DataError(f"{path}: more than one item file ({', '.join(p.name for p in items)}); keep one")
    return reviews[0], (items[0] if items else None)


def _frame(
    path: Path, records: list[tuple[int, dict[str, Any]]], fields: dict[str, str], text_of: Any, time_of: Any
) -> pd.DataFrame:
    """Interactions (user, item, rating, timestamp, review) indexed by file line, required fields checked."""
    for number, record in records:
        for key in (fields["user"], fields["item"], fields["rating"]):
            value = record.get(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise DataError(f"{path}: line {number}: the review has no {key!r}; fix or delete that line")
    frame = pd.DataFrame(
        {
            "user": [str(r[fields["user"]]).strip() for _, r in records],
            "item": [str(r[fields["item"]]).strip() for _, r in records],
            "rating": pd.to_numeric(
                pd.Series([r[fields["rating"]] for _, r in records], dtype=object), errors="coerce"
            ).to_numpy(),
            "timestamp": [time_of(r) for _, r in records],
            "review": [text_of(r) for _, r in records],
        },
        index=pd.Index([n for n, _ in records], name="line"),
    )
    bad = ~np.isfinite(frame["rating"].to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        line = int(frame.index[np.flatnonzero(bad)[0]])
        value = dict(records)[line][fields["rating"]]
        raise DataError(f"{path}: line {line}: {fields['rating']} is {value!r}, not a number; fix or delete that line")
    return frame


def _check_items(path: Path, frame: pd.DataFrame, known: set[str], item_file: Path) -> None:
    unknown = ~frame["item"].isin(known).to_numpy()
    if unknown.any():
        line = int(frame.index[np.flatnonzero(unknown)[0]])
        raise DataError(
            f"{path}: line {line}: a review of item {frame['item'].iloc[int(np.flatnonzero(unknown)[0])]!r}, "
            f"which the item file {item_file.name} does not list ({int(unknown.sum())} such reviews); "
            "add the item there or drop its reviews"
        )


def finish(
    name: str, frame: pd.DataFrame, items: pd.DataFrame | None, duplicates: str, source: str, layout: str
) -> Dataset:
    """Deduplicate, build the data set and attach the review column; empty reviews are counted."""
    frame = deduplicate(frame, duplicates, source)
    empty = int((frame["review"].str.strip() == "").sum())
    if empty:
        warnings.warn(
            f"{source}: {empty} review(s) have no text; they keep their rating and enter no review document",
            EmptyReviews,
            stacklevel=3,
        )
    dataset = build_dataset(
        name,
        frame[["user", "item", "rating", "timestamp"]].reset_index(drop=True),
        items=items,
        meta={"source": source, "format": layout, "cleaning": {"empty_reviews": empty}},
    )
    dataset.interactions["review"] = frame["review"].to_numpy()
    return dataset


# ------------------------------------------------------------------------------------------- Amazon
AMAZON_KEYS = ("reviewerID", "asin", "overall")


def amazon_text(record: dict[str, Any]) -> str:
    summary = str(record.get("summary") or "").strip()
    body = str(record.get("reviewText") or "").strip()
    return f"{summary}. {body}" if summary and body else summary or body


def read_amazon(path: Path, name: str, duplicates: str = "error", item_file: Path | None = None) -> Dataset:
    """An Amazon review file (2014 or 2018 layout; JSON Lines or concatenated objects; gzip or not)."""
    records = list(iter_json_records(path))
    if not records:
        raise DataError(f"{path}: no reviews in the file")
    layout = "amazon-2018" if any(k in records[0][1] for k in ("verified", "style", "vote")) else "amazon-2014"
    frame = _frame(
        path,
        records,
        {"user": "reviewerID", "item": "asin", "rating": "overall"},
        amazon_text,
        lambda r: int(r.get("unixReviewTime") or 0),
    )
    items = None
    if item_file is not None:
        meta = [r for _, r in iter_json_records(item_file)]
        items = pd.DataFrame({"item": [str(r.get("asin", "")) for r in meta], "title": [r.get("title") for r in meta]})
        _check_items(path, frame, set(items["item"]), item_file)
    return finish(name, frame, items, duplicates, str(path), layout)


@READERS.register(
    "amazon-json",
    order=60,
    detects="a .json[.gz] file (or a folder with one) of Amazon reviews: reviewerID, asin, overall",
    description="Amazon review data 2014/2018 (JSON Lines or concatenated objects, gzip), optional meta*.json",
)
class AmazonJsonReader:
    @staticmethod
    def detect(path: Path) -> bool:
        return _detects(path, AMAZON_KEYS)

    @staticmethod
    def read(path: Path, config: DataConfig) -> Dataset:
        reviews, items = _pick(path, AMAZON_KEYS, ("asin",), "Amazon")
        return read_amazon(reviews, path.name.split(".")[0], config.duplicates, items)


# --------------------------------------------------------------------------------------------- Yelp
YELP_KEYS = ("user_id", "business_id", "stars")


def yelp_time(record: dict[str, Any]) -> int:
    stamp = pd.to_datetime(record.get("date"), errors="coerce")
    return 0 if pd.isna(stamp) else int(stamp.value // 10**9)


def read_yelp(path: Path, name: str, duplicates: str = "error", item_file: Path | None = None) -> Dataset:
    """A Yelp review file (JSON Lines of user_id, business_id, stars, text, date; gzip or not)."""
    records = list(iter_json_records(path))
    if not records:
        raise DataError(f"{path}: no reviews in the file")
    frame = _frame(
        path,
        records,
        {"user": "user_id", "item": "business_id", "rating": "stars"},
        lambda r: str(r.get("text") or "").strip(),
        yelp_time,
    )
    items = None
    if item_file is not None:
        meta = [r for _, r in iter_json_records(item_file)]
        items = pd.DataFrame({"item": [str(r["business_id"]) for r in meta], "title": [r.get("name") for r in meta]})
        _check_items(path, frame, set(items["item"]), item_file)
    return finish(name, frame, items, duplicates, str(path), "yelp")


@READERS.register(
    "yelp-json",
    order=61,
    detects="a .json[.gz] file (or a folder with one) of Yelp reviews: user_id, business_id, stars",
    description="Yelp Open Dataset reviews (JSON Lines, gzip), optional business file",
)
class YelpJsonReader:
    @staticmethod
    def detect(path: Path) -> bool:
        return _detects(path, YELP_KEYS)

    @staticmethod
    def read(path: Path, config: DataConfig) -> Dataset:
        reviews, items = _pick(path, YELP_KEYS, ("business_id",), "Yelp")
        return read_yelp(reviews, path.name.split(".")[0], config.duplicates, items)
