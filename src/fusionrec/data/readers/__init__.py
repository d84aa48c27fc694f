"""Readers turn files in a user's format into a :class:`~fusionrec.data.dataset.Dataset`.

Each format is one module of this package that registers a reader in ``READERS``::

    @READERS.register("myformat", order=50, detects="a folder with data.jsonl", description="...")
    class MyFormatReader:
        @staticmethod
        def detect(path: Path) -> bool: ...          # cheap: look at names and a header line
        @staticmethod
        def read(path: Path, config: DataConfig) -> Dataset: ...

and nothing else: every module of this package is imported here. ``data.format`` accepts ``auto`` or any registered name;
``auto`` asks the readers' ``detect`` in ascending ``order`` and uses the first that says yes:
``fusionrec`` (10: manifest.json), ``recbole`` (20: ``*.inter`` with ``name:type`` header),
``mmrec`` (30: any other ``*.inter``), ``csv`` (90: a file).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING

from fusionrec.data.readers.mmrec import read_mmrec
from fusionrec.data.readers.recbole import read_recbole
from fusionrec.data.readers.table import ReadReport, read_table, read_table_file
from fusionrec.errors import ConfigError, DataError
from fusionrec.registry import READERS

if TYPE_CHECKING:
    from fusionrec.data.config import DataConfig
    from fusionrec.data.dataset import Dataset

for _module in pkgutil.iter_modules(__path__):  # each module registers its reader
    importlib.import_module(f"{__name__}.{_module.name}")


def readers_in_order() -> list:
    """Registered readers in the order ``auto`` tries them."""
    return sorted(READERS, key=lambda e: (e.meta.get("order", 50), e.name))


def format_names() -> list[str]:
    """Valid values of ``data.format``: ``auto`` and every registered reader."""
    return ["auto", *READERS.names()]


def check_format(name: str) -> str:
    if name != "auto" and name not in READERS:
        raise ConfigError(f"unknown data.format {name!r}; choose one of: {', '.join(format_names())}")
    return name


def detect_format(path: str | Path) -> str:
    """The first registered reader (by ``order``) whose ``detect`` recognises ``path``."""
    path = Path(path)
    for entry in readers_in_order():
        if entry.obj.detect(path):
            return entry.name
    tried = "; ".join(f"{e.name}: {e.meta.get('detects', '?')}" for e in readers_in_order())
    raise DataError(
        f"{path}: cannot tell the format (tried {tried}); pass data.format (--format) with one of "
        f"{', '.join(READERS.names())}"
    )


def read_path(path: str | Path, config: DataConfig) -> Dataset:
    """Read ``path`` with the reader ``config.format`` names (``auto``: detected)."""
    path = Path(path)
    fmt = check_format(config.format)
    if fmt == "auto":
        fmt = detect_format(path)
    return READERS.get(fmt).read(path, config)


__all__ = [
    "read_mmrec",
    "read_recbole",
    "read_table",
    "read_table_file",
    "ReadReport",
    "detect_format",
    "read_path",
    "format_names",
    "check_format",
    "readers_in_order",
]
