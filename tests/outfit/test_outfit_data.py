"""Outfit data: the canonical form, the stored questions, the readers, the built-ins and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from family_modules import family as load_family

from fusionrec.data.dataset import Dataset
from fusionrec.data.paths import shared_dir
from fusionrec.data.readers import detect_format
from fusionrec.data.readers.pog import read_pog_folder
from fusionrec.data.readers.polyvore import item_categories, read_polyvore_folder
from fusionrec.data.store import load_dataset_dir, save_dataset
from fusionrec.errors import DataError


def tiny_dataset(**options):
    return load_family("outfit").tiny_dataset(**options)


def split_items(dataset: Dataset, code: int) -> set[int]:
    outfits = dataset.tables["outfits"]
    return {int(i) for its in outfits.loc[outfits["split"] == code, "items"] for i in its}


def test_outfits_carry_the_split_and_items_are_in_category_order():
    ds = tiny_dataset()
    assert ds.split_records == "outfits"
    assert all(ds.record_split_sizes()[s] > 0 for s in ("train", "valid", "test"))
    cats = item_categories(ds)
    for its in ds.tables["outfits"]["items"]:
        assert len(its) >= 2 and list(cats[list(its)]) == sorted(cats[list(its)])


def test_fitb_questions_are_same_category_from_their_split_with_the_answer_among_them():
    ds = tiny_dataset()
    cats = item_categories(ds)
    outfits = ds.tables["outfits"]
    fitb = ds.tables["fitb"]
    assert set(fitb["split"]) <= {1, 2} and len(fitb) > 0
    for row, blank, candidates, answer, split in fitb.itertuples(index=False):
        outfit = list(outfits["items"].iloc[row])
        assert outfits["split"].iloc[row] == split
        assert candidates[answer] == outfit[blank] and len(set(candidates)) == 4
        assert set(cats[list(candidates)]) == {cats[outfit[blank]]}
        assert set(candidates) <= split_items(ds, split)  # never a training item in a held-out question


def test_compat_negatives_swap_every_item_within_category_and_split():
    ds = tiny_dataset()
    cats = item_categories(ds)
    compat = ds.tables["compat"]
    for _outfit, group in compat.groupby("outfit"):
        real = list(group.loc[group["label"] == 1, "items"].iloc[0])
        fake = list(group.loc[group["label"] == 0, "items"].iloc[0])
        split = int(group["split"].iloc[0])
        assert list(cats[real]) == list(cats[fake])
        assert set(fake) <= split_items(ds, split)


def test_questions_are_drawn_once_per_seed_and_round_trip(tmp_path):
    a, b = tiny_dataset(), tiny_dataset(num_users=29)  # other users, same outfits and question seed
    assert a.tables["fitb"].equals(b.tables["fitb"])
    loaded = load_dataset_dir(save_dataset(a, tmp_path / "ds"), verify=True)
    assert [list(c) for c in loaded.tables["fitb"]["candidates"]] == [list(c) for c in a.tables["fitb"]["candidates"]]
    assert loaded.split_records == "outfits" and "histories" in loaded.tables and "pairs" in loaded.tables


def test_synthetic_user_histories_come_from_training_items_only():
    ds = tiny_dataset()
    train = split_items(ds, 0)
    histories = ds.tables["histories"]
    assert all(set(h) <= train for h in histories["history"])
    outfits = ds.tables["outfits"]
    assert (outfits["split"].to_numpy()[histories["outfit"]] == histories["split"].to_numpy()).all()
    users = histories.groupby("user")["split"].nunique()
    assert (users == 1).all()  # a user lives in one split


def _mcn(folder: Path, files: dict[str, dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content), encoding="utf-8")
    return folder


def _outfit(*names: tuple[str, str]) -> dict:
    return {cat: {"index": k + 1, "name": name} for k, (cat, name) in enumerate(names)}


def test_mcn_bad_input_is_counted(tmp_path):
    good = {f"s{k}": _outfit(("upper", f"red top {k}"), ("bottom", "blue jeans"), ("shoe", "boots")) for k in range(6)}
    train = {
        **good,
        "one": _outfit(("upper", "lonely top")),  # one item: dropped
        "odd": _outfit(("upper", "top"), ("bottom", "skirt"), ("hat-ish", "cap")),  # unknown category: item dropped
    }
    folder = _mcn(tmp_path / "pv", {"train.json": train, "valid.json": good, "test.json": good})
    assert detect_format(folder) == "polyvore"
    ds = read_polyvore_folder(folder)
    cleaning = ds.meta["cleaning"]
    assert cleaning["outfits_under_two_items"] == 1 and cleaning["items_of_unknown_category"] == 1
    assert ds.record_split_sizes() == {"train": 7, "valid": 6, "test": 6}


def test_pog_reader_counts_duplicates_missing_ids_and_clicks(tmp_path):
    folder = tmp_path / "pog"
    folder.mkdir()
    outfits = "\n".join(f"o{k},a{k};b{k};b{k};zz" for k in range(10))  # a repeat and an unknown id per outfit
    items = "\n".join(f"a{k},top,u,red top {k}\nb{k},bottom,u,blue jeans {k}" for k in range(10))
    (folder / "outfit_data.txt").write_text(outfits + "\no_bad,a0\n", encoding="utf-8")
    (folder / "item_data.txt").write_text(items + "\n", encoding="utf-8")
    (folder / "user_data.txt").write_text("u1,a1;b2;nope,o3\nu2,a1,o_bad\n", encoding="utf-8")
    assert detect_format(folder) == "pog"
    ds = read_pog_folder(folder)
    c = ds.meta["cleaning"]
    assert c["duplicate_items_in_outfit"] == 10 and c["items_missing_from_item_table"] == 10
    assert c["outfits_under_two_items"] == 1 and c["clicks_outside_outfits"] == 1 and c["user_records_dropped"] == 1
    assert len(ds.tables["histories"]) == 1 and len(ds.tables["histories"]["history"].iloc[0]) == 2
    assert ds.meta["categories"] == ["bottom", "top"]


def test_no_usable_outfit_is_one_line(tmp_path):
    folder = _mcn(tmp_path / "pv", {"train.json": {"x": _outfit(("upper", "t"))}})
    with pytest.raises(DataError, match="no outfit with two or more known items"):
        read_polyvore_folder(folder)
    with pytest.raises(DataError, match="item_data.txt"):
        read_pog_folder(tmp_path)


def test_synthetic_image_path_is_a_region_modality():
    ds = tiny_dataset()
    visual = ds.modalities["visual"]
    assert visual.kind == "regions" and visual.values.shape[:2] == (ds.num_items, 3)


@pytest.mark.skipif(
    shared_dir("data/polyvore-outfits-mcn") is None, reason="shared/data/polyvore-outfits-mcn not available"
)
def test_polyvore_mcn_reads_every_staged_outfit():
    from fusionrec.data.builtin.outfit_polyvore import PolyvoreMCNOptions, load_polyvore_mcn

    ds = load_polyvore_mcn(PolyvoreMCNOptions(num_users=50))
    assert ds.name == "polyvore-mcn" and len(ds.tables["outfits"]) == 2463 + 1196 and ds.num_items == 10173 + 4909
    assert ds.meta["cleaning"] == {}
    assert set(ds.items["category"]) == {"upper", "bottom", "shoe", "bag", "accessory"}
    sizes = ds.record_split_sizes()
    assert abs(sizes["test"] / 3659 - 0.2) < 0.01
    assert len(ds.tables["fitb"]) == sizes["valid"] + sizes["test"]
    assert np.isin(ds.items["style"], ["", "black", "white"]).mean() > 0.5


def test_polyvore_outfits_layout_with_images(tmp_path):
    folder = tmp_path / "po"
    (folder / "images").mkdir(parents=True)
    meta = {f"{k}{c}": {"semantic_category": c, "title": f"{c} {k}"} for k in range(12) for c in ("tops", "shoes")}
    (folder / "polyvore_item_metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    for split, ks in (("train", range(0, 6)), ("valid", range(6, 9)), ("test", range(9, 12))):
        sets = [
            {"set_id": f"s{k}", "items": [{"item_id": f"{k}tops", "index": 1}, {"item_id": f"{k}shoes", "index": 2}]}
            for k in ks
        ]
        (folder / f"{split}.json").write_text(json.dumps(sets), encoding="utf-8")
    (folder / "images" / "0tops.jpg").write_bytes(b"not really a jpeg")
    assert detect_format(folder) == "polyvore"
    ds = read_polyvore_folder(folder)
    assert ds.meta["format"] == "polyvore-outfits" and ds.record_split_sizes() == {"train": 6, "valid": 3, "test": 3}
    assert ds.meta["categories"] == ["shoes", "tops"]
    paths = ds.items.set_index("item")["image_path"]
    assert paths["0tops"].endswith("0tops.jpg") and paths.isna()["1tops"]
