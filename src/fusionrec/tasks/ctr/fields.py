"""The ``task.fields`` section and its fitting: every statistic (vocabularies, buckets, means and
standard deviations, content standardisation) comes from the TRAINING rows only.

A field reads one column of one table of the canonical folder:

- ``source``: ``user_id`` / ``item_id`` (the ids), ``user`` / ``item`` (a column of the side tables),
  ``interaction`` (a column of the interaction rows, e.g. a Criteo ``C1``, an hour), ``modality``
  (an item feature matrix of the folder: a global vector, or region tokens with a presence mask);
- ``kind``: ``categorical`` (one value), ``multi`` (a ``sep``-joined set, e.g. genres), ``tokens``
  (words of a text, in order, e.g. a title), ``numeric`` (``normalize``, ``log`` then normalise,
  or ``bucketize`` into training quantiles), ``vector`` / ``regions`` (modality fields).

Values never seen in training rows get code 0 (unknown), so nothing about held-out rows shapes the
inputs: an item's genres or a user's occupation seen only in validation rows are unknown, and a
numeric field is normalised with the training rows' mean and deviation. Numeric NaN/inf are refused
(``fill_missing`` gives empty cells a value).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from fusionrec.config import StrictConfig
from fusionrec.data.dataset import Dataset, show_value
from fusionrec.errors import DataError
from fusionrec.models.ctr.common import FieldInfo

Source = Literal["user_id", "item_id", "user", "item", "interaction", "modality"]
Kind = Literal["categorical", "multi", "tokens", "numeric", "vector", "regions"]
_WORD = re.compile(r"[0-9a-z]+(?:'[a-z]+)?")


class FieldSpec(StrictConfig):
    """One field of ``task.fields`` (its key is the field's name)."""

    source: Source = "interaction"
    column: str | None = Field(None, description="the column (or modality) read; default: the field's name")
    kind: Kind | None = Field(None, description="default: categorical; for a modality its own kind (vector/regions)")
    sep: str = Field("|", min_length=1, description="separator of a multi-valued field")
    max_length: int = Field(8, gt=0, description="values kept of a multi / tokens field (first ones)")
    transform: Literal["normalize", "log", "bucketize"] = "normalize"
    num_buckets: int = Field(10, ge=2, description="quantile buckets of a bucketized numeric field")
    min_count: int = Field(1, ge=1, description="values seen fewer times in training rows are unknown (code 0)")
    prefix: int | None = Field(None, gt=0, description="keep the first N characters (e.g. a zip-code prefix)")
    fill_missing: float | None = Field(None, description="numeric: value of empty cells (default: refuse them)")

    @model_validator(mode="after")
    def _kind_fits_source(self) -> FieldSpec:
        content = self.kind in ("vector", "regions")
        if self.source == "modality" and self.kind is not None and not content:
            raise ValueError(f"a modality field is a vector or regions, not {self.kind}")
        if self.source != "modality" and content:
            raise ValueError(f"kind {self.kind} needs source: modality")
        if self.source in ("user_id", "item_id") and self.kind not in (None, "categorical"):
            raise ValueError(f"source {self.source} is categorical, not {self.kind}")
        return self


DEFAULT_FIELDS = {"user": FieldSpec(source="user_id"), "item": FieldSpec(source="item_id")}


@dataclass
class EncodedField:
    """A fitted field: ``values`` indexed by ``by`` (``user``, ``item`` or ``row``: the interaction row).

    categorical: int64 (N,); sequence: int64 (N, L); numeric: float32 (N,); content: float32 (I, Dm)
    or (I, R, Dm) with ``mask`` bool (I,)."""

    info: FieldInfo
    by: Literal["user", "item", "row"]
    values: np.ndarray
    mask: np.ndarray | None = None


def fit_fields(dataset: Dataset, specs: dict[str, FieldSpec], train_rows: np.ndarray) -> list[EncodedField]:
    """Encode every field for every row, with statistics from ``train_rows`` (interaction row positions)."""
    inter = dataset.interactions
    row_index = {
        "user": inter["user"].to_numpy()[train_rows],
        "item": inter["item"].to_numpy()[train_rows],
        "row": train_rows,
    }
    return [_fit_one(dataset, name, spec, row_index) for name, spec in specs.items()]


def _fit_one(dataset: Dataset, name: str, spec: FieldSpec, train_index: dict[str, np.ndarray]) -> EncodedField:
    column = spec.column or name
    if spec.source == "modality":
        return _content(dataset, name, column, spec, train_index["item"])
    by, raw = _raw_values(dataset, name, column, spec)
    in_train = train_index[by]
    kind = spec.kind or "categorical"
    if kind == "numeric":
        return _numeric(name, raw, spec, in_train, by, dataset.name)
    if kind in ("multi", "tokens"):
        return _sequence(name, raw, spec, in_train, by, ordered=kind == "tokens")
    return _categorical(name, raw, spec, in_train, by)


def _raw_values(dataset: Dataset, name: str, column: str, spec: FieldSpec) -> tuple[Any, pd.Series]:
    """(what the values are indexed by, the raw values) of a non-content field."""
    if spec.source == "user_id":
        return "user", pd.Series(np.asarray(dataset.user_ids).astype(str))
    if spec.source == "item_id":
        return "item", pd.Series(np.asarray(dataset.item_ids).astype(str))
    if spec.source == "interaction":
        table, by, what = dataset.interactions, "row", "the interaction rows"
    else:
        table = dataset.users if spec.source == "user" else dataset.items
        by, what = spec.source, f"the {spec.source}s table"
    if table is None or column not in table.columns:
        have = ", ".join(str(c) for c in table.columns) if table is not None else "no such table"
        raise DataError(
            f"{dataset.name}: task.fields.{name} reads column {column!r} of {what}, which the data set lacks "
            f"(have: {have})"
        )
    return by, table[column].reset_index(drop=True)


def _as_text(raw: pd.Series, spec: FieldSpec) -> pd.Series:
    text = raw.astype(object).where(raw.notna(), "").astype(str).str.strip()
    return text.str[: spec.prefix] if spec.prefix else text


def _vocabulary(train_values: pd.Series, min_count: int) -> pd.Index:
    """Values seen at least ``min_count`` times in training rows, most frequent first (code = position + 1)."""
    counts = train_values.value_counts(sort=False)
    counts = counts[counts >= min_count]
    order = np.lexsort((counts.index.astype(str), -counts.to_numpy()))
    return pd.Index(counts.index[order])


def _categorical(name: str, raw: pd.Series, spec: FieldSpec, in_train: np.ndarray, by: Any) -> EncodedField:
    text = _as_text(raw, spec)
    vocab = _vocabulary(text.iloc[in_train], spec.min_count)
    codes = vocab.get_indexer(text) + 1  # unknown -> 0
    info = FieldInfo(name, "categorical", vocab_size=len(vocab) + 1, labels=("<unknown>", *map(str, vocab)))
    return EncodedField(info, by, codes.astype(np.int64))


def _split_values(text: pd.Series, spec: FieldSpec, ordered: bool) -> pd.Series:
    if ordered:
        return text.str.lower().str.findall(_WORD)
    return text.str.split(spec.sep).map(lambda parts: [p.strip() for p in parts if p.strip()])


def _sequence(name: str, raw: pd.Series, spec: FieldSpec, in_train: np.ndarray, by: Any, ordered: bool) -> EncodedField:
    lists = _split_values(_as_text(raw, spec), spec, ordered).map(lambda v: v[: spec.max_length])
    flat = lists.explode()  # one row per value, index = the entry it belongs to
    flat = flat[flat.notna()]
    train_counts = np.bincount(in_train, minlength=len(lists)) if len(in_train) else np.zeros(len(lists), int)
    weights = train_counts[flat.index.to_numpy()]
    train_flat = flat[weights > 0].repeat(weights[weights > 0]) if len(flat) else flat
    vocab = _vocabulary(train_flat.astype(str), spec.min_count)
    codes = np.zeros((len(lists), spec.max_length), dtype=np.int64)
    if len(flat):
        entry = flat.index.to_numpy()
        position = flat.groupby(level=0).cumcount().to_numpy()
        codes[entry, position] = vocab.get_indexer(flat.astype(str)) + 1
    if ordered:  # unknown words are dropped, the known ones move up (a title keeps its order)
        codes = _compact(codes)
    info = FieldInfo(
        name,
        "sequence",
        vocab_size=len(vocab) + 1,
        length=spec.max_length,
        ordered=ordered,
        labels=("<pad>", *map(str, vocab)),
    )
    return EncodedField(info, by, codes)


def _compact(codes: np.ndarray) -> np.ndarray:
    """Each row's non-zero codes moved to the front, in order. Shapes: (N, L) -> (N, L)."""
    order = np.argsort(codes == 0, axis=1, kind="stable")
    return np.take_along_axis(codes, order, axis=1)


def _numeric(name: str, raw: pd.Series, spec: FieldSpec, in_train: np.ndarray, by: Any, data: str) -> EncodedField:
    text = raw.astype(object).where(raw.notna(), "").astype(str).str.strip()
    empty = (text == "").to_numpy()
    values = pd.to_numeric(text.where(~empty, "0"), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if spec.fill_missing is not None:
        values[empty] = spec.fill_missing
    bad = ~np.isfinite(values) | (empty & (spec.fill_missing is None))
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        where = {"row": "interaction row", "user": "user", "item": "item"}[by]
        shown = "empty" if empty[at] else show_value(raw.iloc[at])
        raise DataError(
            f"{data}: task.fields.{name} is numeric, and {where} {at} has {shown}, not a finite number "
            f"({int(bad.sum())} such value(s)); fix the data, or set task.fields.{name}.fill_missing"
        )
    if spec.transform == "bucketize":
        train = values[in_train]
        quantiles = np.linspace(0, 1, spec.num_buckets + 1)[1:-1]
        edges = np.unique(np.quantile(train, quantiles)) if len(train) else np.zeros(0)
        codes = np.searchsorted(edges, values, side="right") + 1
        labels = _bucket_labels(edges)
        return EncodedField(FieldInfo(name, "categorical", vocab_size=len(edges) + 2, labels=labels), by, codes)
    if spec.transform == "log":
        values = np.sign(values) * np.log1p(np.abs(values))
    train = values[in_train]
    mean = float(train.mean()) if len(train) else 0.0
    std = float(train.std()) if len(train) else 1.0
    scaled = (values - mean) / (std if std > 0 else 1.0)
    return EncodedField(FieldInfo(name, "numeric"), by, scaled.astype(np.float32))


def _bucket_labels(edges: np.ndarray) -> tuple[str, ...]:
    bounds = [-np.inf, *edges.tolist(), np.inf]
    return ("<unknown>", *(f"[{lo:g}, {hi:g})" for lo, hi in zip(bounds, bounds[1:])))


def _content(dataset: Dataset, name: str, column: str, spec: FieldSpec, train_items: np.ndarray) -> EncodedField:
    modality = dataset.modalities.get(column)
    if modality is None:
        have = ", ".join(dataset.modalities) or "none"
        raise DataError(
            f"{dataset.name}: task.fields.{name} reads modality {column!r}, which the data set lacks (have: {have}); "
            "extract it with `fusionrec features extract`"
        )
    values = modality.values
    kind = spec.kind or ("regions" if modality.kind == "regions" else "vector")
    if kind == "regions" and values.ndim != 3:
        raise DataError(f"{dataset.name}: task.fields.{name}: modality {column!r} has no regions; use kind: vector")
    if kind == "vector" and values.ndim == 3:
        values = values.mean(1)  # the global vector of a region grid
    # standardise each dim with the training rows' items that have the feature
    seen = train_items[modality.mask[train_items]]
    flat = values[seen].reshape(-1, values.shape[-1]) if len(seen) else values.reshape(-1, values.shape[-1])
    mean, std = flat.mean(0), flat.std(0)
    scaled = (values - mean) / np.where(std > 0, std, 1.0)
    scaled = (scaled * modality.mask.reshape((-1,) + (1,) * (values.ndim - 1))).astype(np.float32)
    info = FieldInfo(
        name, "content", dim=int(values.shape[-1]), num_regions=int(values.shape[1]) if kind == "regions" else 0
    )
    return EncodedField(info, "item", scaled, modality.mask.copy())
