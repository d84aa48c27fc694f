"""Knowledge-graph triples as tab-separated text: the PyKEEN / WN18RR / FB15k-237 layout.

A folder with ``train.txt``, ``valid.txt`` and ``test.txt`` (``.tsv`` also accepted), one
``head<TAB>relation<TAB>tail`` per line, and optionally the dictionaries ``entities.dict`` and
``relations.dict`` (``index<TAB>id``; a triple naming an id outside them is one error line) and
``entity2text.txt`` (``id<TAB>name, description``: the text of each entity; entities without a line
are counted). Ids stay text (WordNet offsets keep their leading zeros).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from fusionrec.data.dataset import Dataset, build_kg_dataset
from fusionrec.errors import DataError
from fusionrec.registry import READERS

if TYPE_CHECKING:
    from fusionrec.data.config import DataConfig

SPLITS = ("train", "valid", "test")


def split_file(folder: Path, split: str) -> Path | None:
    for suffix in (".txt", ".tsv"):
        if (folder / f"{split}{suffix}").is_file():
            return folder / f"{split}{suffix}"
    return None


def read_columns(path: Path, names: list[str], skip_first: bool = False) -> pd.DataFrame:
    """A tab- or whitespace-separated text file as string columns, indexed by line number; a line with
    another number of fields is one DataError line naming it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc.__class__.__name__}: {exc})") from None
    start = 1 if skip_first else 0
    rows, numbers = [], []
    for number, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) != len(names):
            raise DataError(
                f"{path}: line {number} has {len(fields)} field(s), expected {len(names)} ({', '.join(names)})"
            )
        rows.append([f.strip() for f in fields])
        numbers.append(number)
    frame = pd.DataFrame(rows, columns=names, index=pd.Index(numbers, name="line"), dtype=object)
    return frame


def read_dictionary(path: Path, index_first: bool = True) -> list[str] | None:
    """Ids in index order from ``index<TAB>id`` (or ``id<TAB>index``) lines, or None when absent."""
    if not path.is_file():
        return None
    frame = read_columns(path, ["a", "b"])
    index, ids = (frame["a"], frame["b"]) if index_first else (frame["b"], frame["a"])
    order = pd.to_numeric(index, errors="coerce")
    if order.isna().any():
        line = frame.index[int(order.isna().to_numpy().nonzero()[0][0])]
        raise DataError(f"{path}: line {line} has no integer index")
    return ids.to_numpy()[order.to_numpy().argsort(kind="stable")].tolist()


def read_entity_text(path: Path) -> pd.DataFrame | None:
    """``entity``, ``title`` (the text before the first comma) and ``text`` from ``id<TAB>text`` lines."""
    if not path.is_file():
        return None
    frame = read_columns(path, ["entity", "text"])
    frame.index = pd.Index([f"{path.name} line {n}" for n in frame.index], name="at")
    return frame.assign(title=frame["text"].str.split(",", n=1).str[0].str.strip())


def read_triples_folder(path: Path, config: DataConfig | None = None, name: str | None = None) -> Dataset:
    frames = []
    for split in SPLITS:
        file = split_file(path, split)
        if file is None:
            raise DataError(f"{path}: no {split}.txt; a triples folder has train.txt, valid.txt and test.txt")
        frame = read_columns(file, ["head", "relation", "tail"])
        frame.index = pd.Index([f"{file.name} line {n}" for n in frame.index], name="at")
        frames.append(frame.assign(split=split))
    return build_kg_dataset(
        name or path.name,
        pd.concat(frames),
        entities=read_dictionary(path / "entities.dict"),
        relations=read_dictionary(path / "relations.dict"),
        entity_text=read_entity_text(path / "entity2text.txt"),
        meta={"source": str(path), "format": "triples"},
        duplicates=config.duplicates if config is not None else "error",
    )


@READERS.register(
    "triples",
    order=25,
    detects="a folder with train.txt, valid.txt and test.txt (head<TAB>relation<TAB>tail lines)",
    description="knowledge-graph triples (PyKEEN/WN18RR layout) + optional entities.dict, relations.dict, entity2text.txt",
)
class TriplesReader:
    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_dir() and all(split_file(path, s) is not None for s in SPLITS)

    @staticmethod
    def read(path: Path, config: DataConfig) -> Dataset:
        return read_triples_folder(path, config)
