"""The shared data folder: ``shared:`` paths, the messages when it is absent, and no hard-coded
this machine's shared folder in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fusionrec.data import load_dataset, paths
from fusionrec.data.paths import resolve_shared, shared_path
from fusionrec.errors import DataError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_shared(tmp_path, monkeypatch):
    """A shared folder with a split of a small log, found through FUSIONREC_SHARED."""
    root = tmp_path / "elsewhere" / "shared"
    split = root / "fixtures" / "toy-split"
    split.mkdir(parents=True)
    (root / "data").mkdir()
    users = range(1, 5)
    (tmp_path / "log.csv").write_text("user,item\n" + "".join(f"{u},{i}\n" for u in users for i in range(1, 5)))
    for name, items in (("train", (1, 2)), ("valid", (3,)), ("test", (4,))):
        (split / f"{name}.tsv").write_text("user_id\titem_id\n" + "".join(f"{u}\t{i}\n" for u in users for i in items))
    monkeypatch.setenv("FUSIONREC_SHARED", str(root))
    return root


@pytest.fixture
def no_shared(tmp_path, monkeypatch):
    """No shared folder anywhere."""
    monkeypatch.setattr(paths, "shared_candidates", lambda: [tmp_path / "nowhere" / "shared"])


def test_shared_prefix_resolves_in_the_shared_folder(fake_shared, tmp_path):
    assert resolve_shared("shared:fixtures/toy-split") == fake_shared / "fixtures" / "toy-split"
    assert resolve_shared(str(tmp_path)) == tmp_path  # plain paths are untouched
    ds = load_dataset(str(tmp_path / "log.csv"), split={"method": "files", "path": "shared:fixtures/toy-split"})
    assert ds.split_sizes() == {"train": 8, "valid": 4, "test": 4}
    assert ds.meta["split"]["path"] == "shared:fixtures/toy-split"  # the portable spelling is recorded


def test_shared_prefix_without_a_shared_folder_is_one_line(no_shared, tmp_path):
    (tmp_path / "log.csv").write_text("user,item\n1,1\n")
    with pytest.raises(DataError) as info:
        load_dataset(str(tmp_path / "log.csv"), split={"method": "files", "path": "shared:fixtures/toy-split"})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("data.split.path=shared:fixtures/toy-split: the shared folder was not found")
    assert "FUSIONREC_SHARED" in message and str(tmp_path / "nowhere" / "shared") in message


def test_shared_folder_without_the_path_names_it(fake_shared):
    with pytest.raises(DataError, match=rf"the shared folder {re.escape(str(fake_shared))} has no fixtures/nope"):
        resolve_shared("shared:fixtures/nope", "data.split.path")
    assert shared_path("fixtures/nope") == fake_shared / "fixtures" / "nope"  # never raises


@pytest.mark.parametrize(
    "name, needles",
    [
        (
            "movielens-small",
            [
                "GroupLens MovieLens latest-small",
                "ml-latest-small.zip",
                "grouplens.org",
                "data/movielens-latest-small/",
                "ratings.csv, movies.csv and tags.csv",
                "movielens-posters/<movieId>.jpg",
                "FUSIONREC_SHARED",
            ],
        ),
        (
            "amazon-fashion",
            [
                "Amazon Review Data (2018) Fashion 5-core",
                "AMAZON_FASHION_5.json.gz",
                "https://cseweb.ucsd.edu/~jmcauley/datasets/amazon_v2/",
                "data/amazon-fashion-5core/AMAZON_FASHION_5.json",
                "FUSIONREC_SHARED",
            ],
        ),
    ],
)
def test_shared_data_sets_say_what_and_where_when_absent(no_shared, name, needles):
    with pytest.raises(DataError) as info:
        load_dataset(name)
    message = str(info.value)
    assert "\n" not in message and "no shared folder found" in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in: {message}"


def test_no_hard_coded_shared_folder_in_the_repository():
    """Specs, scripts and docs use ``shared:`` paths (or FUSIONREC_SHARED), never this machine's path."""
    hard = "/work/" + "shared"
    offenders = []
    for folder in ("benchmarks", "docs", "src", "tests"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix in (".py", ".md", ".yaml", ".yml", ".toml") and path.is_file():
                for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                    if hard in line:
                        offenders.append(f"{path.relative_to(REPO)}:{number}")
    readme = REPO / "README.md"
    if readme.exists() and hard in readme.read_text(encoding="utf-8"):
        offenders.append("README.md")
    assert not offenders, f"hard-coded shared folder in {offenders}; write shared:<path> (see docs/data.md)"
