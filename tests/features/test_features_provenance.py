"""modality_provenance: which encoder or source produced each modality a data set exposes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from features_helpers import TEXTS, CountingTextEncoder

from fusionrec.data.content import category_modality, text_modality
from fusionrec.data.dataset import Modality, build_dataset
from fusionrec.data.store import add_modality, load_dataset_dir, read_manifest
from fusionrec.features import extract_features, modality_provenance


def _with_builtin_and_provided(folder):
    texts = [t or "" for t in TEXTS]
    add_modality(folder, "text", text_modality(texts, 4, "items.text"))
    add_modality(folder, "genre", category_modality(["a|b", "b", "", "a", "c", "a", "b", "c"], "genres"))
    rng = np.random.default_rng(0)
    add_modality(
        folder,
        "image",
        Modality(rng.standard_normal((8, 3)).astype(np.float32), np.ones(8, bool), "dense", "image_feat.npy"),
    )


def test_builtin_and_provided_modalities(tiny_folder):
    _with_builtin_and_provided(tiny_folder)
    prov = modality_provenance(load_dataset_dir(tiny_folder))
    files = read_manifest(tiny_folder)["files"]
    assert list(prov) == ["text", "genre", "image"]
    assert prov["text"]["origin"] == "builtin" and prov["text"]["encoder"] == "builtin LSA (tfidf-lsa-4)"
    assert prov["genre"]["encoder"] == "multi-hot categories"
    assert prov["image"]["origin"] == "provided" and prov["image"]["encoder"] is None
    assert prov["text"]["encoder_version"] == {"fusionrec": read_manifest(tiny_folder)["fusionrec_version"]}
    for name, record in prov.items():
        assert record["file_sha256"] == files[f"features/{name}.npy"]
        assert record["shape"] == list(np.load(tiny_folder / "features" / f"{name}.npy").shape)
    json.dumps(prov)  # goes into record.json as it is


def test_extraction_replacing_the_builtin_text_is_visible(tiny_folder):
    _with_builtin_and_provided(tiny_folder)
    before = modality_provenance(load_dataset_dir(tiny_folder))["text"]
    extract_features(tiny_folder, "text", encoder=CountingTextEncoder(), progress=False)
    after = modality_provenance(load_dataset_dir(tiny_folder))["text"]
    assert before["encoder"] == "builtin LSA (tfidf-lsa-4)"
    assert after["origin"] == "extracted" and after["encoder"] == "counting-v1" and after["encoder_name"] == "counting"
    assert after["file_sha256"] != before["file_sha256"]
    assert after["file_sha256"] == read_manifest(tiny_folder)["files"]["features/text.npy"]
    assert after["cache_key"].startswith("counting-v1/") and after["options"]["dtype"] == "float32"
    assert after["encoder_version"]["fusionrec"] and after["input"] == "text: items.text"
    assert after["extracted_at"]
    # the other modalities are untouched
    assert modality_provenance(load_dataset_dir(tiny_folder))["image"]["origin"] == "provided"


def test_features_replaced_after_extraction_are_not_credited_to_the_encoder(tiny_folder):
    extract_features(tiny_folder, "text", encoder=CountingTextEncoder(), progress=False)
    add_modality(
        tiny_folder, "text", Modality(np.zeros((8, 2), np.float32), np.ones(8, bool), "dense", "hand-made vectors")
    )
    record = modality_provenance(load_dataset_dir(tiny_folder))["text"]
    assert record["origin"] == "provided" and record["encoder"] is None and record["source"] == "hand-made vectors"


def test_lsa_extraction_records_its_fit(tiny_folder):
    extract_features(tiny_folder, "text", encoder="tfidf-lsa-4", progress=False)
    record = modality_provenance(load_dataset_dir(tiny_folder))["text"]
    data = load_dataset_dir(tiny_folder)
    train_items = set(data.interactions.loc[data.interactions["split"] == 0, "item"])
    with_text = sum(1 for i in train_items if TEXTS[i])
    assert record["encoder"].startswith("tfidf-lsa-4:corpus-") and record["encoder_name"] == "tfidf-lsa-4"
    assert record["fitted_on"] == f"{with_text} training items"


def test_a_marker_from_before_provenance_records_still_names_the_encoder(tiny_folder):
    extract_features(tiny_folder, "text", encoder=CountingTextEncoder(), progress=False)
    marker = tiny_folder / "features" / ".text.extract.json"
    old = json.loads(marker.read_text())
    marker.write_text(json.dumps({"digest": old["digest"], "files": old["files"]}))
    record = modality_provenance(load_dataset_dir(tiny_folder))["text"]
    assert record["origin"] == "extracted" and record["encoder"] == "counting-v1"
    # extracting the same result again fills the record in without rewriting the features
    again = extract_features(tiny_folder, "text", encoder=CountingTextEncoder(), progress=False)
    assert again.written == []
    assert modality_provenance(load_dataset_dir(tiny_folder))["text"]["encoder_name"] == "counting"


def test_in_memory_data_set():
    inter = pd.DataFrame({"user": [0, 0, 1, 1], "item": [0, 1, 1, 2], "split": [0, 0, 0, 1]})
    items = pd.DataFrame({"item": [0, 1, 2], "text": ["red shirt", "blue shirt", "red shoes"]})
    data = build_dataset("mem", inter, items=items, item_universe=np.arange(3))
    extract_features(data, "text", encoder=CountingTextEncoder(), progress=False)
    record = modality_provenance(data)["text"]
    assert record["origin"] == "extracted" and record["encoder"] == "counting-v1" and record["file_sha256"] is None
    assert len(record["values_sha256"]) == 64
    data.modalities["text"] = Modality(np.ones((3, 2), np.float32), np.ones(3, bool), "dense", "something else")
    replaced = modality_provenance(data)["text"]
    assert replaced["origin"] == "provided" and replaced["values_sha256"] != record["values_sha256"]
