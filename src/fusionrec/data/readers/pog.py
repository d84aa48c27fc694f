"""POG / Alibaba iFashion CSVs (``wenyuer/POG``): outfits, user clicks with the outfit clicked, item table.

- ``outfit_data.txt``: ``outfit_id,item_id;item_id;...``
- ``user_data.txt``: ``user_id,item_id;item_id;...,outfit_id`` (the user's clicked items, then an outfit)
- ``item_data.txt``: ``item_id,cate_id,pic_url,title``

Outfits are split at random (70/10/20, seed 0); a user record takes the split of its outfit. The data set is
the canonical outfit form (:mod:`fusionrec.data.readers.polyvore`); categories are the ``cate_id`` values;
the records go to ``tables["histories"]`` (``user``, ``history``, ``outfit`` row, ``split``). Clicked items
that are in no outfit (so not in the item index) are dropped, as are records whose outfit was dropped; both
counted in ``meta["cleaning"]`` with the outfit cleaning (duplicates, ids missing from the item table,
outfits under two items). Picture URLs are kept in ``items.pic_url``; local images ``images/<item_id>.jpg``
become ``image_path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset
from fusionrec.data.readers.polyvore import _images, build_outfit_dataset, split_outfits
from fusionrec.errors import DataError
from fusionrec.registry import READERS

if TYPE_CHECKING:
    from fusionrec.data.config import DataConfig

FILES = ("outfit_data.txt", "user_data.txt", "item_data.txt")


def _lines(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise DataError(f"{path.parent}: no {path.name}; a POG folder has {', '.join(FILES)} (user_data optional)")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            rows.append([part.strip() for part in line.split(",")])
            if len(rows[-1]) < 2:
                raise DataError(f"{path}: line {number} has no comma-separated fields: {line[:60]!r}")
    return rows


def read_pog_folder(path: Path, name: str | None = None, seed: int = 0) -> Dataset:
    items_rows = _lines(path / "item_data.txt")
    items = pd.DataFrame(
        [(r[0], r[1], r[2] if len(r) > 2 else "", ",".join(r[3:]) if len(r) > 3 else "") for r in items_rows],
        columns=["item", "category", "pic_url", "title"],
    )
    outfits = [(r[0], [i for i in r[1].split(";") if i]) for r in _lines(path / "outfit_data.txt")]
    dataset = build_outfit_dataset(
        name or path.name,
        outfits,
        _images(path, items),
        split_outfits(len(outfits), (0.7, 0.1, 0.2), seed),
        question_seed=seed,
        meta={
            "source": str(path),
            "format": "pog",
            "split": {"method": "random by outfit", "ratios": [0.7, 0.1, 0.2], "seed": seed},
        },
    )
    users = path / "user_data.txt"
    if users.is_file():
        cleaning = dataset.meta["cleaning"]
        index = pd.Index(dataset.item_ids)
        outfit_rows = pd.Index(dataset.tables["outfits"]["outfit"].astype(str))
        splits = dataset.tables["outfits"]["split"].to_numpy()
        records = []
        for r in _lines(users):
            if len(r) < 3:
                raise DataError(f"{users}: a record is user_id,item;item;...,outfit_id; got {','.join(r)[:60]!r}")
            clicks = index.get_indexer([i for i in r[1].split(";") if i])
            cleaning["clicks_outside_outfits"] = cleaning.get("clicks_outside_outfits", 0) + int((clicks < 0).sum())
            row = outfit_rows.get_indexer([r[2]])[0]
            if row < 0 or not (clicks >= 0).any():
                cleaning["user_records_dropped"] = cleaning.get("user_records_dropped", 0) + 1
                continue
            records.append((r[0], clicks[clicks >= 0].tolist(), int(row), int(splits[row])))
        dataset.tables["histories"] = pd.DataFrame(records, columns=["user", "history", "outfit", "split"]).astype(
            {"split": np.int8, "outfit": np.int64}
        )
    return dataset


@READERS.register(
    "pog",
    order=27,
    detects="a folder with outfit_data.txt and item_data.txt",
    description="POG / iFashion CSVs: outfit_data, user_data, item_data (outfit task)",
)
class POGReader:
    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_dir() and (path / "outfit_data.txt").is_file() and (path / "item_data.txt").is_file()

    @staticmethod
    def read(path: Path, config: DataConfig) -> Dataset:
        return read_pog_folder(path)
