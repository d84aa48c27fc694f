"""The reader registry (``READERS``) and the meta-test that every reader and data set has a test.

This file deliberately names no reader or data set: the meta-test looks for each registered name
in the *other* test files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fusionrec.config import validate
from fusionrec.data import (
    DataConfig,
    builtin,  # noqa: F401  (fills DATASETS)
    load_dataset,
)
from fusionrec.data.dataset import Dataset, build_dataset
from fusionrec.data.readers import detect_format, format_names, readers_in_order
from fusionrec.errors import ConfigError, DataError
from fusionrec.registry import DATASETS, READERS

TESTS = Path(__file__).resolve().parents[1]


def _mentions(name: str) -> list[str]:
    """Test files (other than this one) that name ``name`` as a string or a ``key=name`` value."""
    pattern = re.compile(rf"""(["']){re.escape(name)}\1|={re.escape(name)}\b""")
    return [
        str(p.relative_to(TESTS))
        for p in TESTS.rglob("test_*.py")
        if p.resolve() != Path(__file__).resolve() and pattern.search(p.read_text(encoding="utf-8"))
    ]


@pytest.mark.parametrize("registry", [READERS, DATASETS], ids=["READERS", "DATASETS"])
def test_every_registered_entry_has_a_test(registry):
    assert len(registry) > 0
    untested = [entry.name for entry in registry if not _mentions(entry.name)]
    assert not untested, (
        f"registered {registry.kind}(s) {untested} are named by no test under tests/; "
        "add a test that uses each (see tests/data/test_readers.py and test_builtin.py)"
    )


def test_every_reader_documents_its_detection_and_order():
    for entry in READERS:
        assert callable(getattr(entry.obj, "detect", None)) and callable(getattr(entry.obj, "read", None)), entry.name
        assert isinstance(entry.meta.get("order"), int), f"{entry.name}: register with order=<int>"
        assert entry.meta.get("detects") and entry.meta.get("description"), entry.name
    orders = [e.meta["order"] for e in readers_in_order()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders), "two readers share an order"


def test_docs_list_the_auto_detection_order():
    """docs/data.md states the order in which ``auto`` tries the readers."""
    docs = (TESTS.parent / "docs" / "data.md").read_text(encoding="utf-8")
    stated = re.search(r"format=auto`,\s+detection tries the readers in ascending `order`:(.*?)\n\n", docs, re.S)
    assert stated, "docs/data.md must say in which order data.format=auto tries the readers"
    positions = [stated.group(1).find(f"`{e.name}`") for e in readers_in_order()]
    assert -1 not in positions and positions == sorted(positions), stated.group(1)


def test_format_choices_come_from_the_registry():
    assert format_names() == ["auto", *READERS.names()]
    with pytest.raises(ConfigError) as info:
        validate(DataConfig, {"name": "x", "format": "xml"}, "data")
    message = str(info.value)
    assert "\n" not in message and "unknown data format 'xml'" in message
    assert f"choose one of: {', '.join(format_names())}" in message


def test_auto_fails_with_one_line_listing_the_formats(tmp_path):
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    with pytest.raises(DataError) as info:
        detect_format(empty)
    message = str(info.value)
    assert "\n" not in message and "cannot tell the format" in message
    assert all(name in message for name in READERS.names())


def test_a_new_format_is_one_registration(tmp_path):
    """A reader registered from anywhere is a valid data.format and is found by auto detection."""

    class PairsReader:
        @staticmethod
        def detect(path: Path) -> bool:
            return path.is_file() and path.suffix == ".pairs"

        @staticmethod
        def read(path: Path, config: DataConfig) -> Dataset:
            import pandas as pd

            rows = [line.split(">") for line in path.read_text().split()]
            return build_dataset(path.stem, pd.DataFrame(rows, columns=["user", "item"]), meta={"format": "pairs"})

    READERS.register("pairs-test", order=5, detects="a *.pairs file", description="user>item tokens")(PairsReader)
    try:
        source = tmp_path / "log.pairs"
        source.write_text(" ".join(f"u{u}>i{i}" for u in range(6) for i in range(6)))
        assert "pairs-test" in format_names() and detect_format(source) == "pairs-test"
        ds = load_dataset(str(source), split={"method": "random", "ratios": [0.5, 0.25, 0.25]})
        assert ds.num_interactions == 36 and ds.meta["format"] == "pairs"
        assert load_dataset(str(source), format="pairs-test", split={"ratios": [0.5, 0.25, 0.25]}).num_users == 6
    finally:
        READERS._entries.pop("pairs-test", None)
