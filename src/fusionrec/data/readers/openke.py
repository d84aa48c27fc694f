"""OpenKE ``*2id.txt`` knowledge graphs, and MKGformer's folder layout (the same plus entity text).

``train2id.txt`` / ``valid2id.txt`` / ``test2id.txt``: a first line with the count, then
``head tail relation`` integer ids (OpenKE's order: the relation last). ``entity2id.txt`` /
``relation2id.txt``: the count, then ``name<TAB>id``. MKGformer adds ``entity2text.txt``
(``name<TAB>lemma, gloss``) and ``relation2text.txt`` (``name<TAB>words``). A count that does not
match the lines, an id outside the dictionaries, or a repeated triple is one error line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset, build_kg_dataset
from fusionrec.data.readers.triples import SPLITS, read_columns, read_entity_text
from fusionrec.errors import DataError
from fusionrec.registry import READERS

if TYPE_CHECKING:
    from fusionrec.data.config import DataConfig


def _counted(path: Path, names: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(
            f"{path.parent}: no {path.name}; an OpenKE folder has train2id.txt, valid2id.txt, test2id.txt, entity2id.txt, relation2id.txt"
        )
    first = path.read_text(encoding="utf-8").split("\n", 1)[0].strip()
    frame = read_columns(path, names, skip_first=True)
    if not first.isdigit() or int(first) != len(frame):
        raise DataError(f"{path}: the first line says {first!r} rows, the file has {len(frame)}; fix the count line")
    return frame


def _names(path: Path) -> list[str]:
    frame = _counted(path, ["name", "id"])
    ids = pd.to_numeric(frame["id"], errors="coerce").to_numpy()
    if np.isnan(ids).any() or sorted(ids.astype(int).tolist()) != list(range(len(frame))):
        raise DataError(f"{path}: ids must be 0..{len(frame) - 1}, each once")
    return frame["name"].to_numpy()[ids.astype(int).argsort()].tolist()


def read_openke_folder(path: Path, config: DataConfig | None = None, name: str | None = None) -> Dataset:
    entities, relations = _names(path / "entity2id.txt"), _names(path / "relation2id.txt")
    frames = []
    for split in SPLITS:
        file = path / f"{split}2id.txt"
        frame = _counted(file, ["head", "tail", "relation"])
        for column, names in (("head", entities), ("tail", entities), ("relation", relations)):
            ids = pd.to_numeric(frame[column], errors="coerce").to_numpy()
            bad = np.isnan(ids) | (ids < 0) | (ids >= len(names))
            if bad.any():
                row = int(bad.nonzero()[0][0])
                what = "relation" if column == "relation" else "entity"
                raise DataError(
                    f"{file}: line {frame.index[row]} names {what} id {frame[column].iloc[row]!r}, outside the "
                    f"{len(names)} of {what}2id.txt; fix the id or the dictionary"
                )
            frame[column] = np.asarray(names, dtype=object)[ids.astype(int)]
        frame.index = pd.Index([f"{file.name} line {n}" for n in frame.index], name="at")
        frames.append(frame.assign(split=split))
    meta: dict[str, object] = {"source": str(path), "format": "openke"}
    if (path / "relation2text.txt").is_file():
        meta["relation_text"] = dict(read_columns(path / "relation2text.txt", ["relation", "text"]).to_numpy().tolist())
    return build_kg_dataset(
        name or path.name,
        pd.concat(frames),
        entities=entities,
        relations=relations,
        entity_text=read_entity_text(path / "entity2text.txt"),
        meta=meta,
        duplicates=config.duplicates if config is not None else "error",
    )


@READERS.register(
    "openke",
    order=24,
    detects="a folder with train2id.txt and entity2id.txt",
    description="OpenKE *2id.txt knowledge graph; with entity2text.txt / relation2text.txt: MKGformer's layout",
)
class OpenKEReader:
    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_dir() and (path / "train2id.txt").is_file() and (path / "entity2id.txt").is_file()

    @staticmethod
    def read(path: Path, config: DataConfig) -> Dataset:
        return read_openke_folder(path, config)
