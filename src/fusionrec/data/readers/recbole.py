"""RecBole atomic files: ``<name>.inter/.item/.user/.kg/.link`` with ``field:type`` headers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from fusionrec.data.dataset import Dataset, build_dataset
from fusionrec.data.filters import deduplicate
from fusionrec.data.readers.table import ReadReport, check_values, column_list, read_table_file, strip_ids
from fusionrec.errors import DataError
from fusionrec.registry import READERS

if TYPE_CHECKING:
    from fusionrec.data.config import DataConfig

_INTER_FIELDS = {"user_id": "user", "item_id": "item", "rating": "rating", "timestamp": "timestamp"}
_ITEM_RENAMES = {"movie_title": "title", "release_year": "year", "class": "genres"}


def read_atomic(path: Path, report: ReadReport | None = None) -> pd.DataFrame:
    """Read one atomic file; its header fields are ``name:type`` (token, float, token_seq, float_seq).

    With a ``report``, repeated header lines are dropped and the ``*_id`` token fields stripped of
    surrounding whitespace (both counted)."""
    frame = read_table_file(path, sep="\t", report=report)
    bad = [str(c) for c in frame.columns if ":" not in str(c)]
    if bad:
        raise DataError(
            f"{path}: header field(s) {bad[:5]} are not in RecBole's `name:type` form "
            "(e.g. user_id:token); fix the header, or use --format csv for plain tables"
        )
    names = [str(c).split(":")[0] for c in frame.columns]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DataError(f"{path}: field {dup!r} appears twice in the header; rename or drop one")
    frame.columns = names
    if report is not None:
        frame = strip_ids(frame, [n for n in names if n.endswith("_id")], report)
    return frame


def read_recbole(folder: str | Path, name: str | None = None, duplicates: str = "error") -> Dataset:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; a RecBole data set is a folder with <name>.inter")
    if name is None:
        inters = sorted(folder.glob("*.inter"))
        name = inters[0].stem if len(inters) == 1 else folder.name
    inter_path = folder / f"{name}.inter"
    if not inter_path.exists():
        found = sorted(p.name for p in folder.glob("*.inter"))
        raise DataError(f"{folder}: no {name}.inter (found: {found or 'none'}); RecBole folders hold <name>.inter")
    report = ReadReport()
    inter = read_atomic(inter_path, report)
    missing = [f for f in ("user_id", "item_id") if f not in inter.columns]
    if missing:
        raise DataError(
            f"{inter_path}: missing field(s) {[m + ':token' for m in missing]}; fields are {column_list(inter)}"
        )
    inter = inter[[c for c in _INTER_FIELDS if c in inter.columns]].rename(columns=_INTER_FIELDS)
    inter = deduplicate(check_values(inter, str(inter_path), report), duplicates, str(inter_path))

    items = _side_table(folder / f"{name}.item", "item_id", "item", report)
    if items is not None:
        items = items.rename(columns=_ITEM_RENAMES)
    users = _side_table(folder / f"{name}.user", "user_id", "user", report)
    kg = links = None
    if (folder / f"{name}.kg").exists():
        kg = read_atomic(folder / f"{name}.kg", report)
        need = ["head_id", "relation_id", "tail_id"]
        if any(c not in kg.columns for c in need):
            raise DataError(
                f"{folder / f'{name}.kg'}: needs fields head_id:token, relation_id:token, "
                f"tail_id:token; has {column_list(kg)}"
            )
        kg = kg[need].set_axis(["head", "relation", "tail"], axis=1)
    if (folder / f"{name}.link").exists():
        links = read_atomic(folder / f"{name}.link", report)
        if any(c not in links.columns for c in ("item_id", "entity_id")):
            raise DataError(
                f"{folder / f'{name}.link'}: needs fields item_id:token and entity_id:token; has {column_list(links)}"
            )
        links = links.rename(columns={"item_id": "item", "entity_id": "entity"})[["item", "entity"]]
    return build_dataset(
        name,
        inter,
        items=items,
        users=users,
        kg=kg,
        item_entities=links,
        meta={"source": str(folder), "format": "recbole", "cleaning": report.as_meta()},
    )


@READERS.register(
    "recbole",
    order=20,
    detects="a folder whose *.inter header fields are name:type",
    description="RecBole atomic files: <name>.inter (user_id:token, item_id:token, ...) "
    "+ optional .item, .user, .kg, .link",
)
class RecBoleReader:
    @staticmethod
    def detect(path: Path) -> bool:
        if not path.is_dir():
            return False
        inters = sorted(path.glob("*.inter"))
        if not inters:
            return False
        with inters[0].open(encoding="utf-8", errors="replace") as fh:
            header = fh.readline()
        return ":" in header.split("\t")[0]

    @staticmethod
    def read(path: Path, config: DataConfig) -> Dataset:
        return read_recbole(path, duplicates=config.duplicates)


def _side_table(path: Path, id_field: str, key: str, report: ReadReport | None = None) -> pd.DataFrame | None:
    if not path.exists():
        return None
    table = read_atomic(path, report)
    if id_field not in table.columns:
        raise DataError(f"{path}: missing field {id_field + ':token'!r}; fields are {column_list(table)}")
    return table.rename(columns={id_field: key})
