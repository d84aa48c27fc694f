"""Prepared fusionrec folders (``manifest.json`` + the canonical files, see docs/data.md).

:func:`fusionrec.data.prepare.prepare` uses such a folder as it is (it is already split and
validated); reading one here gives back the data set it holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fusionrec.data.dataset import Dataset
from fusionrec.data.store import MANIFEST, load_dataset_dir
from fusionrec.registry import READERS

if TYPE_CHECKING:
    from fusionrec.data.config import DataConfig


@READERS.register(
    "fusionrec",
    order=10,
    detects=f"a folder with {MANIFEST}",
    description="a folder prepared by fusionrec (manifest.json, interactions.parquet, features/)",
)
class FusionrecReader:
    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_dir() and (path / MANIFEST).is_file()

    @staticmethod
    def read(path: Path, config: DataConfig) -> Dataset:
        return load_dataset_dir(path)
