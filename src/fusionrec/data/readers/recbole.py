"""RecBole atomic files: ``<name>.inter/.item/.user/.kg/.link`` with ``field:type`` headers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fusionrec.data.dataset import Dataset, build_dataset
from fusionrec.data.filters import deduplicate
from fusionrec.data.readers.table import check_values, column_list, read_table_file
from fusionrec.errors import DataError

_INTER_FIELDS = {"user_id": "user", "item_id": "item", "rating": "rating", "timestamp": "timestamp"}
_ITEM_RENAMES = {"movie_title": "title", "release_year": "year", "class": "genres"}


def read_atomic(path: Path) -> pd.DataFrame:
    """Read one atomic file; its header fields are ``name:type`` (token, float, token_seq, float_seq)."""
    frame = read_table_file(path, sep="\t")
    bad = [str(c) for c in frame.columns if ":" not in str(c)]
    if bad:
        raise DataError(f"{path}: header field(s) {bad[:5]} are not in RecBole's `name:type` form "
                        "(e.g. user_id:token); fix the header, or use --format csv for plain tables")
    names = [str(c).split(":")[0] for c in frame.columns]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DataError(f"{path}: field {dup!r} appears twice in the header; rename or drop one")
    frame.columns = names
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
    inter = read_atomic(inter_path)
    missing = [f for f in ("user_id", "item_id") if f not in inter.columns]
    if missing:
        raise DataError(f"{inter_path}: missing field(s) {[m + ':token' for m in missing]}; fields are "
                        f"{column_list(inter)}")
    inter = inter[[c for c in _INTER_FIELDS if c in inter.columns]].rename(columns=_INTER_FIELDS)
    inter = deduplicate(check_values(inter, str(inter_path)), duplicates, str(inter_path))

    items = _side_table(folder / f"{name}.item", "item_id", "item")
    if items is not None:
        items = items.rename(columns=_ITEM_RENAMES)
    users = _side_table(folder / f"{name}.user", "user_id", "user")
    kg = links = None
    if (folder / f"{name}.kg").exists():
        kg = read_atomic(folder / f"{name}.kg")
        need = ["head_id", "relation_id", "tail_id"]
        if any(c not in kg.columns for c in need):
            raise DataError(f"{folder / f'{name}.kg'}: needs fields head_id:token, relation_id:token, "
                            f"tail_id:token; has {column_list(kg)}")
        kg = kg[need].set_axis(["head", "relation", "tail"], axis=1)
    if (folder / f"{name}.link").exists():
        links = read_atomic(folder / f"{name}.link")
        if any(c not in links.columns for c in ("item_id", "entity_id")):
            raise DataError(f"{folder / f'{name}.link'}: needs fields item_id:token and entity_id:token; "
                            f"has {column_list(links)}")
        links = links.rename(columns={"item_id": "item", "entity_id": "entity"})[["item", "entity"]]
    return build_dataset(name, inter, items=items, users=users, kg=kg, item_entities=links,
                         meta={"source": str(folder), "format": "recbole"})


def _side_table(path: Path, id_field: str, key: str) -> pd.DataFrame | None:
    if not path.exists():
        return None
    table = read_atomic(path)
    if id_field not in table.columns:
        raise DataError(f"{path}: missing field {id_field + ':token'!r}; fields are {column_list(table)}")
    return table.rename(columns={id_field: key})
