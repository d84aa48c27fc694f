"""MIND news logs (``behaviors.tsv`` + ``news.tsv``) and the news data set every news source becomes.

``behaviors.tsv`` (no header): impression id, user id, time (``11/15/2019 8:55:22 AM`` or Unix
seconds), clicked history (space-separated news ids, oldest first), impressions (``N1-1 N2-0``:
news id, dash, 0/1 click label). ``news.tsv`` (no header): news id, category, subcategory, title,
abstract, url, title entities, abstract entities (the last four optional). Optional images: a
folder ``images/`` with ``<news id>.jpg`` / ``.png`` (``items.image_path``; `fusionrec features
extract DATA -m image --regions` encodes them, counting and naming files that cannot be decoded), or
a feature file ``image_features.npy`` ((N, D) or (N, R, D)) with ``image_ids.txt`` (one news id per
line): the modality ``image`` or ``image_regions``.

The data set (:func:`build_news_dataset`): items are the news (index ``I`` is left for padding by
the task), the record table ``impressions`` (``meta["split_records"]``) holds one row per
impression with list columns ``history``, ``candidates``, ``labels`` of news indices, and the
interactions are the clicks (for ``recommend``, statistics and the shared tooling). History or
candidate ids missing from the news table are dropped from their lists, counted in
``meta["missing_news"]`` and reported in a warning, never silently. The split is time-ordered: one
global cut at the ``ratios`` quantiles of impression time (ties stay on one side), unless a builder
gives its own.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fusionrec.data.dataset import SPLIT_CODES, Dataset, _align_modality
from fusionrec.errors import DataError
from fusionrec.registry import READERS

if TYPE_CHECKING:
    from fusionrec.data.config import DataConfig

IMPRESSIONS = "impressions"
NEWS_COLUMNS = ["item", "category", "subcategory", "title", "abstract", "url", "title_entities", "abstract_entities"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_TOKEN = re.compile(r"^(.+)-([01])$")


class MissingNews(UserWarning):
    """History or candidate ids that the news table lacks were dropped (counted in meta)."""


def time_split(times: np.ndarray, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> np.ndarray:
    """Split codes of impressions at times ``times``: one global cut at the ratio quantiles; impressions
    at the same time share a split (the later one), so no test impression precedes a training one."""
    ordered = np.sort(times)
    n = len(ordered)
    total = sum(ratios)
    cut_valid = ordered[min(n - 1, int(n * ratios[0] / total))] if n else 0
    cut_test = ordered[min(n - 1, int(n * (ratios[0] + ratios[1]) / total))] if n else 0
    codes = np.full(n, SPLIT_CODES["train"], dtype=np.int8)
    codes[times >= cut_valid] = SPLIT_CODES["valid"]
    codes[times >= cut_test] = SPLIT_CODES["test"]
    return codes


def _flatten(lists: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(v) for v in lists), dtype=np.int64, count=len(lists))
    parts = [np.asarray(v) for v in lists if len(v)]
    flat = np.concatenate(parts) if parts else np.zeros(0, object)
    return flat, lengths


def _codes(raw: np.ndarray, item_index: pd.Index, dense_ids: bool) -> np.ndarray:
    """News index of each raw id (-1: not in the news table). Integer ids over news ids ``0..I-1`` (the
    synthetic generator) take a fast path without strings."""
    if not len(raw):
        return np.zeros(0, np.int64)
    if dense_ids and np.issubdtype(raw.dtype, np.integer):
        return np.where((raw >= 0) & (raw < len(item_index)), raw, -1).astype(np.int64)
    return item_index.get_indexer(raw.astype(str))


def _regroup(
    values: np.ndarray, keep: np.ndarray, lengths: np.ndarray, dtype: Any
) -> tuple[list[np.ndarray], np.ndarray]:
    rows = np.repeat(np.arange(len(lengths)), lengths)
    kept_lengths = np.bincount(rows[keep], minlength=len(lengths)).astype(np.int64)
    parts = np.split(values[keep].astype(dtype), np.cumsum(kept_lengths)[:-1]) if len(lengths) else []
    return parts, kept_lengths


def build_news_dataset(
    name: str,
    behaviors: pd.DataFrame,
    news: pd.DataFrame,
    *,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    modalities: dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]] | None = None,
    meta: dict[str, Any] | None = None,
) -> Dataset:
    """The news data set of impressions ``behaviors`` over the news table ``news``.

    Args:
        behaviors: ``impression`` (id), ``user`` (raw id), ``time`` (int64), ``history`` and
            ``candidates`` (lists of raw news ids), ``labels`` (lists of 0/1), optional ``split``
            (codes or names; default: :func:`time_split` by ``ratios``).
        news: ``item`` (raw news id) and any columns (``title``, ``category``, ``image_path``, ...).
        modalities: name -> (raw news ids, values, options), as in ``build_dataset``.
    """
    news = news.copy()
    news["item"] = news["item"].astype(str).str.strip()
    duplicated = int(news["item"].duplicated().sum())
    news = news.drop_duplicates("item", keep="first").reset_index(drop=True)
    item_ids = news["item"].to_numpy(dtype=object)
    item_index = pd.Index(item_ids)
    behaviors = behaviors.reset_index(drop=True)

    dense_ids = bool((item_ids == np.arange(len(item_ids)).astype(str)).all())
    hist_raw, hist_len = _flatten(behaviors["history"])
    hist_codes = _codes(hist_raw, item_index, dense_ids)
    cand_raw, cand_len = _flatten(behaviors["candidates"])
    cand_codes = _codes(cand_raw, item_index, dense_ids)
    label_flat, _ = _flatten(behaviors["labels"])
    label_flat = label_flat.astype(np.int64)
    if len(label_flat) != len(cand_raw):
        raise DataError(f"{name}: impressions have {len(cand_raw)} candidates but {len(label_flat)} labels")
    missing_history, missing_candidates = hist_codes < 0, cand_codes < 0
    history, _ = _regroup(hist_codes, ~missing_history, hist_len, np.int32)
    candidates, kept = _regroup(cand_codes, ~missing_candidates, cand_len, np.int32)
    labels, _ = _regroup(label_flat, ~missing_candidates, cand_len, np.int8)
    missing = {
        "history_entries": int(missing_history.sum()),
        "history_ids": int(len(np.unique(hist_raw[missing_history].astype(str)))),
        "candidate_entries": int(missing_candidates.sum()),
        "candidate_ids": int(len(np.unique(cand_raw[missing_candidates].astype(str)))),
    }
    if missing["history_entries"] or missing["candidate_entries"]:
        first = (hist_raw[missing_history] if missing_history.any() else cand_raw[missing_candidates])[0]
        warnings.warn(
            f"{name}: {missing['history_entries']:,} history and {missing['candidate_entries']:,} candidate entries "
            f"name news missing from the news table ({missing['history_ids']:,} + {missing['candidate_ids']:,} distinct "
            f"ids, e.g. {first!r}); they were dropped from their lists (counted in meta.missing_news)",
            MissingNews,
            stacklevel=2,
        )
    clicks = np.array([int(v.sum()) for v in labels], dtype=np.int64)
    shown = np.asarray(kept)
    user_raw = behaviors["user"].astype(str).str.strip()
    user_ids = np.asarray(sorted(pd.unique(user_raw)), dtype=object)
    users = pd.Index(user_ids).get_indexer(user_raw).astype(np.int32)
    times = pd.to_numeric(behaviors["time"], errors="coerce").to_numpy()
    if np.isnan(times.astype(np.float64)).any():
        raise DataError(
            f"{name}: impression {behaviors['impression'].iloc[int(np.flatnonzero(np.isnan(times.astype(float)))[0])]!r} has no valid time"
        )
    times = times.astype(np.int64)
    if "split" in behaviors:
        from fusionrec.data.dataset import _split_codes

        split = _split_codes(behaviors["split"], f"{name} impressions")
        split_meta: dict[str, Any] = {"method": "given by the source"}
    else:
        split = time_split(times, ratios)
        split_meta = {"method": "global_time", "ratios": list(ratios)}
    table = pd.DataFrame(
        {
            "impression": behaviors["impression"].astype(str).to_numpy(),
            "user": users,
            "time": times,
            "history": history,
            "candidates": candidates,
            "labels": labels,
            "split": split.astype(np.int8),
        }
    )
    click_rows = np.repeat(np.arange(len(table)), [int(v.sum()) for v in labels])
    click_items = (
        np.concatenate([c[lab > 0] for c, lab in zip(candidates, labels)]) if len(click_rows) else np.zeros(0, np.int32)
    )
    interactions = pd.DataFrame(
        {
            "user": users[click_rows].astype(np.int32),
            "item": click_items.astype(np.int32),
            "timestamp": times[click_rows],
            "split": split[click_rows].astype(np.int8),
        }
    )
    leaks = count_history_leaks(table)
    return Dataset(
        name=name,
        interactions=interactions,
        user_ids=user_ids,
        item_ids=item_ids,
        items=news,
        modalities={
            m_name: _align_modality(m_name, ids, values, dict(opts), item_index)
            for m_name, (ids, values, opts) in (modalities or {}).items()
        },
        meta={
            **(meta or {}),
            "split_records": IMPRESSIONS,
            "split": split_meta,
            "missing_news": missing,
            "duplicate_news": duplicated,
            "impressions_without_click": int((clicks == 0).sum()),
            "impressions_without_non_click": int(((shown - clicks) == 0).sum()),
            "history_leaks": leaks,
        },
        tables={IMPRESSIONS: table},
    )


def count_history_leaks(table: pd.DataFrame) -> int:
    """History entries that look ahead. A user's earliest impression's history is taken as the pre-period
    (MIND's histories are the clicks before the logged period); any other history entry must be in that
    pre-period history or clicked by the user in an impression strictly before the one it belongs to. A
    log built from earlier clicks only has 0."""
    if not len(table):
        return 0
    hist_len = np.fromiter((len(h) for h in table["history"]), np.int64, len(table))
    if not hist_len.sum():
        return 0
    users, times = table["user"].to_numpy(), table["time"].to_numpy()
    history = pd.DataFrame(
        {
            "row": np.repeat(np.arange(len(table)), hist_len),
            "user": np.repeat(users, hist_len),
            "item": np.concatenate([np.asarray(h) for h in table["history"] if len(h)]).astype(np.int64),
            "time": np.repeat(times, hist_len),
        }
    )
    first_row = pd.Series(times).groupby(users).idxmin()  # each user's earliest impression (table row)
    pre_period = history[history["row"].isin(first_row.to_numpy())][["user", "item"]].drop_duplicates()
    clicked = [np.asarray(c)[np.asarray(lab) > 0] for c, lab in zip(table["candidates"], table["labels"])]
    click_len = np.fromiter((len(c) for c in clicked), np.int64, len(clicked))
    first_click = (
        pd.DataFrame(
            {
                "user": np.repeat(users, click_len),
                "item": np.concatenate([c for c in clicked if len(c)]).astype(np.int64)
                if click_len.sum()
                else np.zeros(0, np.int64),
                "first_click": np.repeat(times, click_len),
            }
        )
        .groupby(["user", "item"], as_index=False)["first_click"]
        .min()
    )
    later = history[~history["row"].isin(first_row.to_numpy())]
    later = later.merge(pre_period.assign(pre=True), on=["user", "item"], how="left")
    later = later.merge(first_click, on=["user", "item"], how="left")
    legit = later["pre"].fillna(False).astype(bool).to_numpy() | (
        later["first_click"].to_numpy(dtype=np.float64) < later["time"].to_numpy()
    )
    return int((~legit).sum())


# ------------------------------------------------------------------------------ the MIND files
def _read_tsv(path: Path, min_columns: int, what: str) -> list[list[str]]:
    rows = []
    with open(path, encoding="utf-8", newline="") as fh:
        for number, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < min_columns:
                raise DataError(
                    f"{path} line {number}: {len(fields)} tab-separated field(s), a {what} line has at least "
                    f"{min_columns}; fix or drop the line"
                )
            rows.append([*fields, str(number)])
    return rows


def parse_time(values: pd.Series, path: Path, lines: pd.Series) -> np.ndarray:
    """MIND's ``%m/%d/%Y %I:%M:%S %p`` (or Unix seconds) -> int64 seconds; a bad value is one error line."""
    numeric = pd.to_numeric(values, errors="coerce")
    parsed = pd.to_datetime(values.where(numeric.isna()), format="%m/%d/%Y %I:%M:%S %p", errors="coerce")
    seconds = (parsed - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    out = numeric.astype("float64").fillna(seconds.astype("float64"))
    bad = out.isna().to_numpy()
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path} line {lines.iloc[at]}: time {values.iloc[at]!r} is neither MM/DD/YYYY HH:MM:SS AM/PM nor Unix seconds"
        )
    return out.to_numpy().astype(np.int64)


def read_behaviors(path: Path) -> pd.DataFrame:
    rows = _read_tsv(path, 5, "behaviors")
    frame = pd.DataFrame(
        [r[:5] + [r[-1]] for r in rows], columns=["impression", "user", "time", "history", "shown", "line"]
    )
    histories, candidates, labels = [], [], []
    for history, shown, line in zip(frame["history"], frame["shown"], frame["line"]):
        histories.append(history.split())
        ids, marks = [], []
        for token in shown.split():
            match = _TOKEN.match(token)
            if match is None:
                raise DataError(
                    f"{path} line {line}: impression token {token!r} is not NEWS_ID-LABEL with label 0 or 1 "
                    "(e.g. N1234-1); fix or drop the line"
                )
            ids.append(match.group(1))
            marks.append(int(match.group(2)))
        candidates.append(ids)
        labels.append(marks)
    frame["time"] = parse_time(frame["time"], path, frame["line"])
    return frame.assign(history=histories, candidates=candidates, labels=labels).drop(columns=["shown", "line"])


def read_news(path: Path) -> pd.DataFrame:
    rows = _read_tsv(path, 4, "news")
    width = len(NEWS_COLUMNS)
    frame = pd.DataFrame([(r[:-1] + [""] * width)[:width] for r in rows], columns=NEWS_COLUMNS)
    images = path.parent / "images"
    if images.is_dir():
        found = {p.stem: str(p) for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        frame["image_path"] = frame["item"].map(found).astype(object)
    return frame


def image_feature_file(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
    feats, ids_file = folder / "image_features.npy", folder / "image_ids.txt"
    if not feats.exists():
        return {}
    if not ids_file.exists():
        raise DataError(f"{feats}: needs {ids_file.name} next to it (one news id per line, in row order)")
    values = np.load(feats)
    ids = np.asarray([line.strip() for line in ids_file.read_text(encoding="utf-8").splitlines() if line.strip()])
    if len(ids) != len(values):
        raise DataError(f"{feats}: {len(values)} rows but {ids_file.name} names {len(ids)} news; give one id per row")
    kind = "regions" if values.ndim == 3 else "dense"
    return {"image_regions" if kind == "regions" else "image": (ids, values, {"kind": kind, "source": str(feats)})}


def read_mind_folder(path: Path, config: DataConfig | None = None, name: str | None = None) -> Dataset:
    behaviors = read_behaviors(path / "behaviors.tsv")
    news = read_news(path / "news.tsv")
    ratios = (
        tuple(config.split.ratios) if config is not None and getattr(config.split, "ratios", None) else (0.8, 0.1, 0.1)
    )
    return build_news_dataset(
        name or path.name,
        behaviors,
        news,
        ratios=ratios,  # type: ignore[arg-type]
        modalities=image_feature_file(path),
        meta={"source": str(path), "format": "mind"},
    )


@READERS.register(
    "mind",
    order=22,
    detects="a folder with behaviors.tsv and news.tsv",
    description="MIND news impressions: behaviors.tsv + news.tsv (+ images/ or image_features.npy); task news",
)
class MINDReader:
    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_dir() and (path / "behaviors.tsv").is_file() and (path / "news.tsv").is_file()

    @staticmethod
    def read(path: Path, config: DataConfig) -> Dataset:
        return read_mind_folder(path, config)
