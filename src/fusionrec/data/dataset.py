"""The in-memory canonical data set and its schema.

A :class:`Dataset` holds id-mapped interactions (users ``0..U-1``, items ``0..I-1``), the raw ids
behind those indices, optional item/user tables aligned to the indices, modality features aligned
to the item index with a presence mask, and optional knowledge-graph triples. Every reader and
built-in loader produces one; :mod:`fusionrec.data.store` writes and reads it as a folder.

A knowledge-graph *completion* data set (the ``kg`` task, :func:`build_kg_dataset`) is the same
class read another way: the item index is the entity index (``item_ids`` are the raw entity ids,
``items`` holds each entity's ``title`` and ``text``, modalities are per entity), ``kg`` holds the
triples with a ``split`` column, the relation vocabulary is ``meta["relations"]``, and there are no
interactions (and no users).

A family whose unit of evaluation is not an interaction (news impressions, outfits) keeps its own
record tables in ``tables`` (name -> frame, stored as ``tables/<name>.parquet``). When one of them
carries the split (``meta["split_records"]`` names it, its ``split`` column holds the codes), the
interaction filters and splits of preparation do not apply: the family's reader or builder splits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fusionrec.errors import DataError

TRAIN, VALID, TEST, UNSPLIT = 0, 1, 2, -1
SPLIT_NAMES = {TRAIN: "train", VALID: "valid", TEST: "test"}
SPLIT_CODES = {name: code for code, name in SPLIT_NAMES.items()}

ModalityKind = Literal["dense", "categorical", "regions"]


@dataclass
class Modality:
    """Item features of one modality, row ``i`` belonging to item index ``i``.

    Attributes:
        values: float32 ``(I, D)`` (``dense``/``categorical``) or ``(I, R, D)`` (``regions``).
            Rows of missing items are zeros.
        mask: bool ``(I,)``, True where the item has this modality.
        kind: ``dense`` vectors, ``categorical`` multi-hot codes, or ``regions`` grids.
        source: where the features came from (encoder name, column), for the record.
        labels: names of the columns of a categorical modality (e.g. genre names).
    """

    values: np.ndarray
    mask: np.ndarray
    kind: ModalityKind = "dense"
    source: str = ""
    labels: list[str] | None = None

    def __post_init__(self) -> None:
        self.values = np.ascontiguousarray(self.values, dtype=np.float32)
        self.mask = np.asarray(self.mask, dtype=bool)

    @property
    def dim(self) -> int:
        return int(self.values.shape[-1])

    @property
    def coverage(self) -> float:
        return float(self.mask.mean()) if len(self.mask) else 0.0


@dataclass(frozen=True)
class ModalityInfo:
    dim: int
    kind: str
    coverage: float
    num_regions: int | None = None


@dataclass(frozen=True)
class DatasetSchema:
    """What a model may rely on: sizes, which columns and modalities exist."""

    name: str
    num_users: int
    num_items: int
    has_rating: bool
    has_timestamp: bool
    modalities: dict[str, ModalityInfo]
    has_kg: bool
    item_columns: tuple[str, ...]
    user_columns: tuple[str, ...]

    def require_modalities(self, model: str, names: list[str] | tuple[str, ...]) -> None:
        missing = [n for n in names if n not in self.modalities]
        if missing:
            have = ", ".join(self.modalities) or "none"
            raise DataError(
                f"{model} needs modalities {list(names)}, data set {self.name!r} has: {have} "
                f"(add features with `fusionrec features extract`, or set model.modalities)"
            )


@dataclass
class Dataset:
    """An id-mapped interaction data set with aligned side information.

    ``interactions`` has int32 columns ``user``, ``item``, an int8 ``split`` (0 train, 1 valid,
    2 test, -1 not split yet) and optionally ``rating`` (float32) and ``timestamp`` (int64).
    """

    name: str
    interactions: pd.DataFrame
    user_ids: np.ndarray
    item_ids: np.ndarray
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    modalities: dict[str, Modality] = field(default_factory=dict)
    kg: pd.DataFrame | None = None
    item_entities: pd.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_interactions(self) -> int:
        return len(self.interactions)

    @property
    def is_split(self) -> bool:
        return bool(len(self.interactions)) and bool((self.interactions["split"] >= 0).all())

    @property
    def is_kg_completion(self) -> bool:
        """True for a knowledge-graph completion data set: split triples over the entity (= item) index."""
        return self.kg is not None and "split" in self.kg.columns

    def kg_split_sizes(self) -> dict[str, int]:
        """Triples per split of a knowledge-graph completion data set."""
        counts = self.kg["split"].value_counts() if self.kg is not None and "split" in self.kg else {}
        return {name: int(counts.get(code, 0)) for code, name in SPLIT_NAMES.items()}

    @property
    def split_records(self) -> str | None:
        """The family record table that carries the split (``meta["split_records"]``), if any."""
        name = self.meta.get("split_records")
        if name is None:
            return None
        table = self.tables.get(name)
        if table is None or "split" not in table.columns:
            raise DataError(
                f"{self.name}: meta split_records names table {name!r}, which is "
                f"{'missing' if table is None else 'without a split column'} (tables: {sorted(self.tables) or 'none'})"
            )
        return str(name)

    def record_split_sizes(self) -> dict[str, int]:
        """Rows per split of the record table named by :attr:`split_records`."""
        name = self.split_records
        counts = self.tables[name]["split"].value_counts() if name is not None else {}
        return {split: int(counts.get(code, 0)) for code, split in SPLIT_NAMES.items()}

    @property
    def schema(self) -> DatasetSchema:
        return DatasetSchema(
            name=self.name,
            num_users=self.num_users,
            num_items=self.num_items,
            has_rating="rating" in self.interactions,
            has_timestamp="timestamp" in self.interactions,
            modalities={
                name: ModalityInfo(m.dim, m.kind, m.coverage, int(m.values.shape[1]) if m.kind == "regions" else None)
                for name, m in self.modalities.items()
            },
            has_kg=self.kg is not None,
            item_columns=tuple(self.items.columns) if self.items is not None else (),
            user_columns=tuple(self.users.columns) if self.users is not None else (),
        )

    def split_frame(self, split: str) -> pd.DataFrame:
        code = SPLIT_CODES[split]
        return self.interactions[self.interactions["split"].to_numpy() == code]

    def matrix(self, *splits: str) -> sp.csr_matrix:
        """Binary user x item CSR matrix of the interactions in ``splits``."""
        codes = [SPLIT_CODES[s] for s in splits]
        frame = self.interactions[self.interactions["split"].isin(codes)]
        return pairs_to_csr(frame["user"].to_numpy(), frame["item"].to_numpy(), self.num_users, self.num_items)

    def split_sizes(self) -> dict[str, int]:
        counts = self.interactions["split"].value_counts()
        return {name: int(counts.get(code, 0)) for code, name in SPLIT_NAMES.items()}

    def item_titles(self) -> list[str] | None:
        if self.items is not None and "title" in self.items:
            return self.items["title"].astype(str).tolist()
        return None

    def summary(self) -> dict[str, Any]:
        inter = self.interactions
        return {
            "name": self.name,
            "users": self.num_users,
            "items": self.num_items,
            "interactions": self.num_interactions,
            "density": self.num_interactions / max(1, self.num_users * self.num_items),
            "rating": "rating" in inter,
            "timestamp": "timestamp" in inter,
            "modalities": {
                n: {"kind": m.kind, "dim": m.dim, "shape": list(m.values.shape), "coverage": round(m.coverage, 4)}
                for n, m in self.modalities.items()
            },
            "kg_triples": 0 if self.kg is None else len(self.kg),
            "kg_linked_items": 0 if self.item_entities is None else len(self.item_entities),
            "tables": {table_name: len(table) for table_name, table in self.tables.items()},
            "split": self.kg_split_sizes()
            if self.is_kg_completion
            else self.record_split_sizes()
            if self.split_records is not None
            else self.split_sizes()
            if self.is_split
            else None,
        }


def pairs_to_csr(users: np.ndarray, items: np.ndarray, num_users: int, num_items: int) -> sp.csr_matrix:
    data = np.ones(len(users), dtype=np.float32)
    mat = sp.csr_matrix((data, (users, items)), shape=(num_users, num_items))
    mat.sum_duplicates()
    mat.data[:] = 1.0
    return mat


def build_dataset(
    name: str,
    interactions: pd.DataFrame,
    *,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    modalities: dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]] | None = None,
    kg: pd.DataFrame | None = None,
    item_entities: pd.DataFrame | None = None,
    item_universe: np.ndarray | None = None,
    meta: dict[str, Any] | None = None,
) -> Dataset:
    """Map raw ids to indices and align every side table to them.

    Args:
        interactions: raw ``user`` and ``item`` ids (any hashable, kept as strings) plus optional
            ``rating``, ``timestamp``, ``split`` (codes or names).
        items / users: tables with a raw ``item`` / ``user`` id column.
        modalities: name -> (raw item ids, values with one row per id, options for :class:`Modality`).
        kg: ``head``, ``relation``, ``tail`` triples; item_entities: raw ``item`` -> ``entity``.
        item_universe: raw item ids to index even without interactions (default: items interacted with).
    """
    missing = [c for c in ("user", "item") if c not in interactions.columns]
    if missing:
        raise DataError(f"{name}: interactions lack the column(s) {missing}; columns are {list(interactions.columns)}")
    user_ids, user_codes = _index_ids(interactions["user"])
    if item_universe is None:
        item_ids, item_codes = _index_ids(interactions["item"])
    else:
        universe = np.asarray(item_universe)
        raw_items = interactions["item"].to_numpy()
        if (
            np.issubdtype(universe.dtype, np.integer)
            and np.issubdtype(raw_items.dtype, np.integer)
            and (len(universe) == 0 or universe.min() >= 0)
        ):
            uniq = np.sort(universe)
            uniq = uniq[np.concatenate([[True], uniq[1:] != uniq[:-1]])] if len(uniq) else uniq
            item_ids = uniq.astype(str).astype(object)
            pos = np.minimum(np.searchsorted(uniq, raw_items), max(len(uniq) - 1, 0))
            item_codes = np.where(uniq[pos] == raw_items, pos, -1) if len(uniq) else np.full(len(raw_items), -1)
        else:
            item_ids = _sorted_ids(pd.Series(universe.astype(str)))
            item_codes = pd.Index(item_ids).get_indexer(interactions["item"].astype(str))
        if (item_codes < 0).any():
            bad = interactions["item"].iloc[int(np.flatnonzero(item_codes < 0)[0])]
            raise DataError(
                f"{name}: interaction item {bad!r} is not in the item table; add it there or drop its interactions"
            )
    user_index = pd.Index(user_ids)
    item_index = pd.Index(item_ids)
    out = pd.DataFrame({"user": user_codes.astype(np.int32), "item": item_codes.astype(np.int32)})
    if "rating" in interactions:
        out["rating"] = _numeric(interactions["rating"], name, "rating").astype(np.float32)
    if "timestamp" in interactions:
        out["timestamp"] = _numeric(interactions["timestamp"], name, "timestamp").astype(np.int64)
    out["split"] = _split_codes(interactions["split"], name) if "split" in interactions else np.int8(UNSPLIT)

    return Dataset(
        name=name,
        interactions=out,
        user_ids=user_ids,
        item_ids=item_ids,
        items=_align_table(items, "item", item_index),
        users=_align_table(users, "user", user_index),
        modalities={
            m_name: _align_modality(m_name, ids, values, opts, item_index)
            for m_name, (ids, values, opts) in (modalities or {}).items()
        },
        kg=kg.reset_index(drop=True) if kg is not None else None,
        item_entities=_map_entities(item_entities, item_index),
        meta=dict(meta or {}),
    )


def build_kg_dataset(
    name: str,
    triples: pd.DataFrame,
    *,
    entities: Sequence[str] | None = None,
    relations: Sequence[str] | None = None,
    entity_text: pd.DataFrame | None = None,
    modalities: dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]] | None = None,
    meta: dict[str, Any] | None = None,
    duplicates: str = "error",
) -> Dataset:
    """A knowledge-graph completion data set: split triples over one entity index.

    Args:
        triples: raw ``head``, ``relation``, ``tail`` ids (kept as text, stripped) and ``split``
            (codes or names), one row per triple.
        entities / relations: the dictionaries (every id any triple may name, in index order);
            default: the ids the triples use, sorted. A triple naming an id outside a given
            dictionary is one DataError line.
        entity_text: ``entity``, ``title`` and ``text`` columns (descriptions); entities it does not
            name get empty text (counted in ``meta["entities_without_text"]``); rows naming an id
            outside the dictionary are one DataError line.
        modalities: name -> (raw entity ids, values, options), as in :func:`build_dataset`.

    A triple that occurs twice is one DataError line naming both rows and their splits (a triple
    in two splits leaks a held-out fact into training), unless ``duplicates`` is ``first`` (keep the
    first row: train before valid before test when the splits are concatenated in that order) or
    ``last``; the rows dropped are counted in ``meta["duplicate_triples"]``.
    """
    missing = [c for c in ("head", "relation", "tail", "split") if c not in triples.columns]
    if missing:
        raise DataError(f"{name}: triples lack the column(s) {missing}; columns are {list(triples.columns)}")
    frame = pd.DataFrame({c: triples[c].astype(str).str.strip() for c in ("head", "relation", "tail")})
    frame.index = triples.index
    frame["split"] = _split_codes(triples["split"], f"{name} triples")
    entity_ids = _dictionary(frame[["head", "tail"]].to_numpy().ravel(), entities)
    relation_ids = _dictionary(frame["relation"].to_numpy(), relations)
    entity_index, relation_index = pd.Index(entity_ids), pd.Index(relation_ids)
    for column, index, what in (("head", entity_index, "entity"), ("tail", entity_index, "entity")):
        _refuse_unknown(frame, column, index, what, name)
    _refuse_unknown(frame, "relation", relation_index, "relation", name)
    repeated = frame.duplicated(["head", "relation", "tail"], keep=False).to_numpy()
    dropped = 0
    if repeated.any() and duplicates in ("first", "last"):
        keep = ~frame.duplicated(["head", "relation", "tail"], keep=duplicates).to_numpy()
        dropped, frame = int((~keep).sum()), frame[keep]
    elif repeated.any():
        rows = np.flatnonzero(repeated)
        first = frame.iloc[rows[0]]
        same = rows[(frame.iloc[rows][["head", "relation", "tail"]] == first[["head", "relation", "tail"]]).all(1)]
        splits = " and ".join(f"{locate_row(frame, int(r))} ({SPLIT_NAMES[int(frame['split'].iloc[r])]})" for r in same)
        raise DataError(
            f"{name}: the triple ({first['head']}, {first['relation']}, {first['tail']}) occurs twice: {splits}; "
            f"{int(frame.duplicated(['head', 'relation', 'tail']).sum())} repeated triple(s) in all; drop the repeats "
            "(a triple in two splits leaks a held-out fact into training)"
        )
    items = pd.DataFrame({"item": entity_ids, "title": entity_ids, "text": ""})
    without_text = len(entity_ids)
    if entity_text is not None:
        text = entity_text.assign(entity=entity_text["entity"].astype(str).str.strip())
        _refuse_unknown(text, "entity", entity_index, "entity", name)
        rows = entity_index.get_indexer(text["entity"])
        items.loc[rows, "title"] = text["title"].astype(str).to_numpy()
        items.loc[rows, "text"] = text["text"].astype(str).to_numpy()
        without_text = len(entity_ids) - len(np.unique(rows))
    no_interactions = pd.DataFrame(
        {"user": np.zeros(0, np.int32), "item": np.zeros(0, np.int32), "split": np.zeros(0, np.int8)}
    )
    return Dataset(
        name=name,
        interactions=no_interactions,
        user_ids=np.zeros(0, dtype=object),
        item_ids=entity_ids,
        items=items,
        modalities={
            m_name: _align_modality(m_name, ids, values, opts, entity_index)
            for m_name, (ids, values, opts) in (modalities or {}).items()
        },
        kg=frame.reset_index(drop=True),
        meta={
            **(meta or {}),
            "split": {"method": "column"},  # the split comes with the triples
            "relations": [str(r) for r in relation_ids],
            "entities_without_text": int(without_text),
            "duplicate_triples": dropped,
        },
    )


def _dictionary(used: np.ndarray, given: Sequence[str] | None) -> np.ndarray:
    if given is None:
        return np.asarray(sorted(set(used.tolist())), dtype=object)
    ids = np.asarray([str(v).strip() for v in given], dtype=object)
    dup = pd.Index(ids).duplicated()
    if dup.any():
        raise DataError(f"the dictionary names {ids[int(np.flatnonzero(dup)[0])]!r} twice; give each id one index")
    return ids


def _refuse_unknown(frame: pd.DataFrame, column: str, index: pd.Index, what: str, source: str) -> None:
    unknown = index.get_indexer(frame[column]) < 0
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise DataError(
            f"{source}: {locate_row(frame, row)} names the {what} {show_value(frame[column].iloc[row])}, which is not "
            f"in the {what} dictionary ({int(unknown.sum())} such row(s)); add it there or drop the row"
        )


def _index_ids(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Distinct raw ids (as ``str``, in natural order) and the index of each row's id.

    Non-negative integer columns take a fast path (no string conversion); anything else is compared as text.
    """
    values = raw.to_numpy()
    if np.issubdtype(values.dtype, np.integer) and len(values) and values.min() >= 0:
        top = int(values.max())
        if top < max(4 * len(values), 1 << 20):  # dense ids: a presence table, no sort or hash
            present = np.zeros(top + 1, dtype=bool)
            present[values] = True
            uniq = np.flatnonzero(present)
            rank = np.cumsum(present, dtype=np.int64) - 1
            return uniq.astype(str).astype(object), rank[values]
        codes, uniq = pd.factorize(values, sort=True)
        return np.asarray(uniq).astype(str).astype(object), codes
    text = raw.astype(str)
    ids = _sorted_ids(text)
    return ids, pd.Index(ids).get_indexer(text)


def _sorted_ids(raw: pd.Series) -> np.ndarray:
    """Distinct raw ids in natural order: numerically when every id is a non-negative integer
    written without leading zeros (so it round-trips through ``int``), else as text."""
    ids = pd.unique(raw.astype(str).to_numpy()).astype(object)
    as_text = pd.Series(ids, dtype=object)
    if len(ids) and bool(as_text.str.fullmatch(r"0|[1-9][0-9]{0,17}").all()):
        order = np.argsort(as_text.astype(np.int64).to_numpy(), kind="stable")
    else:
        order = np.argsort(ids.astype(str), kind="stable")
    return np.asarray(ids[order], dtype=object)


def _numeric(column: pd.Series, source: str, what: str) -> np.ndarray:
    parsed = pd.to_numeric(column, errors="coerce")
    values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: {locate_row(column, row)} {what} is {show_value(column.iloc[row])}, "
            "not a finite number; fix or drop that row"
        )
    if what == "timestamp" and np.issubdtype(parsed.dtype, np.integer):
        return parsed.to_numpy()
    return values


def show_value(value: Any) -> str:
    """A cell value for an error message: ``'abc'``, ``3.5``, ``inf`` (no numpy reprs)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def locate_row(frame: pd.Series | pd.DataFrame, position: int) -> str:
    """``line N`` / ``row N`` of the original file for the row at ``position`` (see readers.table)."""
    label = frame.index[position]
    if frame.index.name == "at":  # labels that already say where, e.g. "train.txt line 3" (kg triples)
        return str(label)
    kind = frame.index.name if frame.index.name in ("line", "row") else "row"
    return f"{kind} {label}"


def _split_codes(column: pd.Series, source: str = "split column") -> np.ndarray:
    if column.dtype == object or isinstance(column.dtype, pd.StringDtype):
        codes = column.map(lambda v: SPLIT_CODES.get(str(v).strip().lower(), v))
        parsed = pd.to_numeric(codes, errors="coerce")
    else:
        parsed = column
    values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isin(values, [TRAIN, VALID, TEST])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: {locate_row(column, row)} split is {show_value(column.iloc[row])}; "
            "use 0/1/2 or train/valid/test"
        )
    return values.astype(np.int8)


def _align_table(table: pd.DataFrame | None, key: str, index: pd.Index) -> pd.DataFrame | None:
    if table is None:
        return None
    table = table.copy()
    table[key] = table[key].astype(str)
    table = table.drop_duplicates(key, keep="first").set_index(key)
    aligned = table.reindex(index)
    aligned.index.name = key
    return aligned.reset_index()


def _align_modality(name: str, ids: np.ndarray, values: np.ndarray, opts: dict[str, Any], index: pd.Index) -> Modality:
    ids = np.asarray(ids).astype(str)
    values = np.asarray(values, dtype=np.float32)
    if len(ids) != len(values):
        raise DataError(f"modality {name!r}: {len(values)} feature rows for {len(ids)} item ids")
    dup = pd.Index(ids).duplicated()
    if dup.any():
        first = show_value(ids[int(np.flatnonzero(dup)[0])])
        raise DataError(f"modality {name!r}: item id {first} has two feature rows; give each item one row")
    rows = index.get_indexer(ids)
    keep = rows >= 0
    if len(ids) and len(index) and not keep.any():
        raise DataError(
            f"modality {name!r}: none of its {len(ids)} feature ids match an item id (feature id "
            f"{show_value(ids[0])}, item id {show_value(index[0])}); the features belong to other data "
            "or use other ids"
        )
    aligned = np.zeros((len(index),) + values.shape[1:], dtype=np.float32)
    aligned[rows[keep]] = values[keep]
    mask = np.zeros(len(index), dtype=bool)
    present = opts.pop("present", None)
    mask[rows[keep]] = True if present is None else np.asarray(present, dtype=bool)[keep]
    return Modality(aligned, mask, **opts)


def _map_entities(links: pd.DataFrame | None, index: pd.Index) -> pd.DataFrame | None:
    if links is None:
        return None
    rows = index.get_indexer(links["item"].astype(str))
    keep = rows >= 0
    return pd.DataFrame({"item": rows[keep].astype(np.int32), "entity": links["entity"].astype(str).to_numpy()[keep]})
