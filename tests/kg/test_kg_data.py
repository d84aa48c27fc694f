"""Knowledge-graph completion data: readers, built-ins, the canonical folder, and bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import load_dataset
from fusionrec.data.config import DataConfig
from fusionrec.data.paths import shared_dir
from fusionrec.data.prepare import prepare
from fusionrec.data.readers import detect_format, read_path
from fusionrec.data.store import load_dataset_dir
from fusionrec.errors import DataError


def write_triples(folder: Path, train: str, valid: str = "a\tr1\tc\n", test: str = "b\tr2\tc\n", **extra: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {"train.txt": train, "valid.txt": valid, "test.txt": test, **extra}.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def write_openke(folder: Path, train: str = "2\n0 1 0\n1 2 1\n", entity_text: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "entity2id.txt": "3\nx\t0\ny\t1\nz\t2\n",
        "relation2id.txt": "2\n_likes\t0\n_knows\t1\n",
        "train2id.txt": train,
        "valid2id.txt": "1\n2 0 0\n",
        "test2id.txt": "1\n0 2 1\n",
    }
    if entity_text is not None:
        files["entity2text.txt"] = entity_text
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_triples_folder_round_trips_through_the_canonical_folder(tmp_path):
    folder = write_triples(
        tmp_path / "kg",
        "a\tr1\tb\nb\tr2\ta\n",
        **{"entities.dict": "0\ta\n1\tb\n2\tc\n3\td\n", "relations.dict": "0\tr1\n1\tr2\n"},
    )
    assert detect_format(folder) == "triples"
    dataset = load_dataset_dir(prepare(DataConfig(name=str(folder))))
    assert dataset.is_kg_completion and list(dataset.item_ids) == ["a", "b", "c", "d"]  # dictionary order, d unused
    assert dataset.meta["relations"] == ["r1", "r2"]
    assert dataset.kg_split_sizes() == {"train": 2, "valid": 1, "test": 1}
    assert dataset.num_interactions == 0 and dataset.summary()["split"] == {"train": 2, "valid": 1, "test": 1}


def test_openke_and_the_mkgformer_layout(tmp_path):
    folder = write_openke(tmp_path / "ok", entity_text="x\txylophone, an instrument\nz\tzebra, a striped horse\n")
    assert detect_format(folder) == "openke"
    dataset = read_path(folder, DataConfig(name=str(folder)))
    assert list(dataset.kg["relation"]) == ["_likes", "_knows", "_likes", "_knows"]  # OpenKE: relation last
    assert list(dataset.kg["head"]) == ["x", "y", "z", "x"]
    assert dataset.items["title"].tolist() == ["xylophone", "y", "zebra"]
    assert dataset.meta["entities_without_text"] == 1  # y has no text line: counted, not an error


@pytest.mark.parametrize(
    ("train", "extra", "message"),
    [
        ("a\tr1\tzz\n", {"entities.dict": "0\ta\n1\tb\n2\tc\n"}, "line 1 names the entity 'zz'"),
        ("a\tr9\tb\n", {"relations.dict": "0\tr1\n1\tr2\n"}, "names the relation 'r9'"),
        (
            "a\tr1\tc\n",
            {},
            r"the triple \(a, r1, c\) occurs twice: train.txt line 1 \(train\) and valid.txt line 1 \(valid\)",
        ),
        ("a\tr1\n", {}, "line 1 has 2 field"),
        ("a\tr1\tb\n", {"entity2text.txt": "q\tunknown thing\n"}, "entity2text.txt line 1 names the entity 'q'"),
    ],
)
def test_bad_triples_are_one_line(tmp_path, train, extra, message):
    folder = write_triples(tmp_path / "bad", train, **extra)
    with pytest.raises(DataError, match=message):
        read_path(folder, DataConfig(name=str(folder)))


def test_duplicates_across_splits_can_be_dropped_and_counted(tmp_path):
    folder = write_triples(tmp_path / "dup", "a\tr1\tc\nb\tr2\tb\n")
    dataset = read_path(folder, DataConfig(name=str(folder), duplicates="first"))
    assert dataset.meta["duplicate_triples"] == 1 and dataset.kg_split_sizes()["valid"] == 0  # train kept


def test_openke_bad_ids_and_counts(tmp_path):
    with pytest.raises(DataError, match="train2id.txt: line 3 names entity id '7'"):
        read_path(write_openke(tmp_path / "a", "2\n0 1 0\n1 7 1\n"), DataConfig())
    with pytest.raises(DataError, match="first line says '3' rows, the file has 2"):
        read_path(write_openke(tmp_path / "b", "3\n0 1 0\n1 2 1\n"), DataConfig())


def test_cli_refuses_a_bad_triple_with_one_line_and_writes_nothing(tmp_path):
    folder = write_triples(tmp_path / "cli", "a\tr1\tzz\n", **{"entities.dict": "0\ta\n1\tb\n2\tc\n"})
    home = tmp_path / "home"
    env = {**os.environ, "FUSIONREC_HOME": str(home), "COLUMNS": "300"}
    proc = subprocess.run(
        [sys.executable, "-m", "fusionrec.cli.main", "data", "prepare", str(folder)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "train.txt line 1 names the entity 'zz'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (home / "datasets" / "cli").exists()


def test_synthetic_kg_plants_the_cluster_in_the_relations_and_both_modalities():
    dataset = load_dataset("synthetic-kg", options={"num_entities": 300, "num_clusters": 5, "seed": 1})
    cluster = dataset.items["cluster"].to_numpy()
    index = {e: i for i, e in enumerate(dataset.item_ids)}
    heads = cluster[[index[h] for h in dataset.kg["head"]]]
    tails = cluster[[index[t] for t in dataset.kg["tail"]]]
    shift = dataset.kg["relation"].str[1:].astype(int).to_numpy() + 1
    assert ((heads + shift) % 5 == tails).all()
    for name in ("text_tokens", "visual"):
        modality = dataset.modalities[name]
        means = modality.values.mean(1)[modality.mask]  # (E', d)
        same = cluster[modality.mask][:, None] == cluster[modality.mask][None, :]
        similarity = means @ means.T
        assert similarity[same].mean() > similarity[~same].mean() + 1.0  # the planted signal is there
        assert 0.8 < modality.coverage < 1.0  # and sometimes missing


@pytest.fixture(scope="module")
def pykeen_wheel(tmp_path_factory):
    from fusionrec.data.builtin.pykeen_small import _download_wheel

    given = os.environ.get("FUSIONREC_PYKEEN_WHEEL")
    if given and Path(given).is_file():
        return given
    cache = Path(os.environ.get("FUSIONREC_TEST_CACHE", Path.home() / ".cache" / "fusionrec-test"))
    found = sorted(cache.glob("pykeen-1.11.1-*.whl"))
    if found:
        return str(found[0])
    try:
        cache.mkdir(parents=True, exist_ok=True)
        wheel = Path(_download_wheel(tmp_path_factory.mktemp("wheel"), "nations"))
        return str(wheel.replace(cache / wheel.name))
    except DataError as exc:
        pytest.skip(f"pykeen wheel unavailable (offline?): {exc}")


@pytest.mark.parametrize(
    ("name", "entities", "relations"), [("nations", 14, 55), ("kinships", 104, 25), ("umls", 135, 46)]
)
def test_pykeen_data_sets_from_the_wheel(pykeen_wheel, monkeypatch, name, entities, relations):
    monkeypatch.setenv("FUSIONREC_PYKEEN_WHEEL", pykeen_wheel)
    dataset = load_dataset(name)
    assert (dataset.num_items, len(dataset.meta["relations"])) == (entities, relations)
    assert min(dataset.kg_split_sizes().values()) > 0


def test_a_bad_pykeen_wheel_is_one_line(tmp_path, monkeypatch):
    bad = tmp_path / "pykeen.whl"
    bad.write_bytes(b"not a zip")
    monkeypatch.setenv("FUSIONREC_PYKEEN_WHEEL", str(bad))
    monkeypatch.setenv("FUSIONREC_HOME", str(tmp_path / "home"))  # nothing extracted yet
    with pytest.raises(DataError, match="the pykeen wheel is unreadable"):
        load_dataset("nations")


@pytest.mark.skipif(shared_dir("data/wn18rr") is None, reason="shared/data/wn18rr not available")
def test_wn18rr_from_the_shared_folder():
    dataset = load_dataset("wn18rr")
    assert dataset.num_items == 40943 and len(dataset.meta["relations"]) == 11
    assert dataset.kg_split_sizes() == {"train": 86835, "valid": 3034, "test": 3134}
    assert dataset.item_ids[0] == "00260881"  # offsets keep their leading zeros


@pytest.mark.skipif(shared_dir("data/wn18-mkgformer") is None, reason="shared/data/wn18-mkgformer not available")
def test_wn18_mkgformer_has_text_for_every_entity():
    dataset = load_dataset("wn18-mkgformer")
    assert dataset.kg_split_sizes() == {"train": 141442, "valid": 5000, "test": 5000}
    assert dataset.meta["entities_without_text"] == 0 and len(dataset.meta["relations"]) == 18
    assert np.all(dataset.items["text"].str.len() > 0)
