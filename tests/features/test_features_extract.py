"""extract_features end to end on a tiny folder, with counting fake encoders and tfidf-lsa."""

from __future__ import annotations

import numpy as np
import pytest
from features_helpers import TEXTS, CountingTextEncoder, fake_vector
from typer.testing import CliRunner

from fusionrec.cli.features import app
from fusionrec.data.store import load_dataset_dir, read_manifest
from fusionrec.data.text import lsa_embeddings
from fusionrec.errors import ConfigError, DataError
from fusionrec.features import LSAEncoder, extract_features


def test_text_missing_items_are_masked_with_zero_rows(tiny_folder):
    result = extract_features(tiny_folder, "text", encoder=CountingTextEncoder(), progress=False)
    mod = result.modalities["text"]
    expect = np.array([bool(t) for t in TEXTS])
    np.testing.assert_array_equal(mod.mask, expect)
    assert not mod.values[~expect].any()
    np.testing.assert_allclose(mod.values[0], fake_vector("a red cotton shirt"))
    assert result.missing == 2 and result.present == 6
    # duplicates are encoded once (5 distinct texts), and the folder now holds the modality
    assert result.encoded == 5
    saved = load_dataset_dir(tiny_folder).modalities["text"]
    np.testing.assert_array_equal(saved.values, mod.values)
    assert saved.source == "counting-v1 of items.text"
    assert read_manifest(tiny_folder)["modalities"]["text"]["shape"] == [8, 8]


def test_second_run_is_served_from_cache_without_calling_the_encoder(tiny_folder):
    extract_features(tiny_folder, "text", encoder=CountingTextEncoder(), progress=False)
    again = CountingTextEncoder()
    result = extract_features(tiny_folder, "text", encoder=again, progress=False)
    assert again.calls == 0 and result.encoded == 0 and result.cached == 5
    assert result.written == []  # same result: the folder is left as it is


def test_resume_after_interruption_encodes_only_the_rest(tiny_folder):
    with pytest.raises(KeyboardInterrupt):
        extract_features(
            tiny_folder, "text", encoder=CountingTextEncoder(interrupt_after=1), batch_size=2, progress=False
        )
    resumed = CountingTextEncoder()
    result = extract_features(tiny_folder, "text", encoder=resumed, batch_size=2, progress=False)
    assert result.cached == 2 and result.encoded == 3 and len(resumed.seen) == 3
    full = extract_features(tiny_folder, "text", encoder=CountingTextEncoder(), write=False, progress=False)
    np.testing.assert_array_equal(result.modalities["text"].values, full.modalities["text"].values)


def test_float16_is_stored_as_float16_and_loads_as_float32(tiny_folder):
    result = extract_features(tiny_folder, "text", encoder=CountingTextEncoder(), dtype="float16", progress=False)
    assert np.load(tiny_folder / "features" / "text.npy").dtype == np.float16
    loaded = load_dataset_dir(tiny_folder).modalities["text"]
    assert loaded.values.dtype == np.float32
    np.testing.assert_array_equal(loaded.values, result.modalities["text"].values)
    np.testing.assert_allclose(loaded.values[0], fake_vector("a red cotton shirt"), rtol=1e-3)


def test_token_grid_is_a_regions_modality(tiny_folder):
    result = extract_features(
        tiny_folder, "text", encoder=CountingTextEncoder(), regions=True, max_tokens=5, progress=False
    )
    tokens = result.modalities["text_tokens"]
    assert tokens.kind == "regions" and tokens.values.shape == (8, 5, 8)
    assert np.abs(tokens.values[0]).sum(axis=1).astype(bool).tolist() == [True] * 4 + [False]  # 4 words, padded
    assert load_dataset_dir(tiny_folder).schema.modalities["text_tokens"].num_regions == 5


def test_reviews_come_from_training_interactions_only(tiny_folder):
    enc = CountingTextEncoder()
    result = extract_features(tiny_folder, "text", encoder=enc, column="review", progress=False)
    assert result.modalities["review"].source.endswith("training reviews (split 0)")
    assert enc.seen and all(t.startswith("TRAIN") for t in enc.seen)
    data = load_dataset_dir(tiny_folder)
    inter = data.interactions
    trained = set(inter.loc[inter["split"] == 0, "item"])
    assert set(np.flatnonzero(result.modalities["review"].mask)) == trained
    # an item's vector is the mean of its training reviews' vectors
    item = min(trained)
    reviews = inter.loc[(inter["split"] == 0) & (inter["item"] == item), "review"]
    np.testing.assert_allclose(
        result.modalities["review"].values[item], np.mean([fake_vector(r) for r in reviews], axis=0), rtol=1e-5
    )


def test_default_text_without_text_column_joins_item_columns_and_training_reviews(tiny_folder):
    data = load_dataset_dir(tiny_folder)
    data.items = data.items.drop(columns=["text"])
    enc = CountingTextEncoder()
    result = extract_features(data, "text", encoder=enc, progress=False)
    assert result.modalities["text"].source.endswith("items.title + training reviews (split 0)")
    assert "thing 0" in enc.seen and not any(t.startswith("HELDOUT") for t in enc.seen)


def test_lsa_encoder_matches_the_data_layer_and_folds_in_new_text():
    texts = [t for t in TEXTS if t] + ["red shirt and blue jeans", "rain boots"]
    enc = LSAEncoder(dim=4).fit(texts)
    ours, theirs = enc.encode(texts), lsa_embeddings(texts, 4)
    assert ours.shape == theirs.shape == (len(texts), 4)
    assert (np.sum(ours * theirs, axis=1) > 0.99).all()  # the data layer's vectors, up to the SVD solver
    new = enc.encode(["a blue shirt"])
    assert new.shape == (1, 4) and abs(np.linalg.norm(new) - 1) < 1e-5
    tok = enc.encode_tokens(["red denim", "zzz"], max_length=3)
    assert tok.ids.shape == (2, 3) and tok.embeddings.shape == (2, 3, 4)
    assert tok.attention_mask.tolist() == [[True, True, False], [False, False, False]]


def test_lsa_through_extract_features_replaces_text_and_caches(tiny_folder):
    first = extract_features(tiny_folder, "text", encoder="tfidf-lsa-4", progress=False)
    assert first.modalities["text"].source.startswith("tfidf-lsa-4:corpus-")
    second = extract_features(tiny_folder, "text", encoder="tfidf-lsa-4", progress=False)
    assert second.encoded == 0 and second.cached == first.encoded


def test_bad_options_fail_with_the_choices(tiny_folder):
    with pytest.raises(ConfigError, match="choose text or image"):
        extract_features(tiny_folder, "audio")
    with pytest.raises(ConfigError, match="float32 or float16"):
        extract_features(tiny_folder, "text", dtype="int8")
    with pytest.raises(ConfigError, match="choose squash or crop"):
        extract_features(tiny_folder, "image", resize="stretch")
    with pytest.raises(ConfigError, match="is a text encoder; pass an image encoder"):
        extract_features(tiny_folder, "image", encoder=CountingTextEncoder())
    with pytest.raises(DataError, match="no items column 'nope'.*text, title"):
        extract_features(tiny_folder, "text", encoder=CountingTextEncoder(), column="nope")


def test_cli_extract_and_one_line_errors(tiny_folder):
    runner = CliRunner()
    res = runner.invoke(app, ["extract", str(tiny_folder), "--encoder", "tfidf-lsa-4", "--fp16"])
    assert res.exit_code == 0, res.output
    assert "text: 8x4 dense, coverage 75.0%, written" in res.output
    assert np.load(tiny_folder / "features" / "text.npy").dtype == np.float16
    res = runner.invoke(app, ["extract", str(tiny_folder), "--column", "nope"])
    assert res.exit_code == 1 and res.output.startswith("error: tiny: no items column 'nope'")
    assert "Traceback" not in res.output


TIED = [
    "alpha beta",
    "alpha beta",
    "gamma delta",
    "gamma delta",
    "epsilon zeta",
    "epsilon zeta",
    "eta theta iota",
    "eta theta iota",
    "kappa lambda",
    "lambda kappa",
]  # three exactly tied blocks


@pytest.mark.parametrize("texts", [TIED, [t for t in TEXTS if t] + ["red shirt and blue jeans", "rain boots"]])
def test_lsa_is_unique_whatever_the_solver_and_its_start(texts):
    """Tied singular values leave the basis free up to a rotation, and every component up to a sign:
    both LSA implementations pick one canonical basis, whatever their SVD's random start."""
    dim = 4
    reference = lsa_embeddings(texts, dim)
    for seed in range(5):
        np.testing.assert_allclose(lsa_embeddings(texts, dim, seed=seed), reference, atol=1e-5)
        np.testing.assert_allclose(LSAEncoder(dim=dim, seed=seed).fit(texts).encode(texts), reference, atol=1e-5)


def test_lsa_canonical_basis_is_rotation_and_sign_invariant():
    from fusionrec.data.text import canonical_components, tfidf_matrix

    mat = tfidf_matrix(TIED)
    _, s, vt = np.linalg.svd(mat.toarray(), full_matrices=False)
    v = vt[:4].T
    assert abs(s[0] - s[1]) < 1e-9 and abs(s[1] - s[2]) < 1e-9  # a real tie
    angle = 0.7
    rotation = np.eye(4)
    rotation[:3, :3] = [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    rotation[:, 1] *= -1
    rotated = v @ rotation  # another valid SVD basis
    np.testing.assert_allclose(
        canonical_components(mat, rotated, s[:4]), canonical_components(mat, v, s[:4]), atol=1e-9
    )


def test_lsa_fitted_on_some_texts_folds_in_the_others():
    texts = [t for t in TEXTS if t] + ["red shirt and blue jeans", "rain boots"]
    fit = np.array([True] * 6 + [False] * 2)
    base = lsa_embeddings(texts, 3, fit=fit)
    changed = lsa_embeddings(texts[:6] + ["blue blue denim red", "boots boots rain"], 3, fit=fit)
    np.testing.assert_array_equal(base[:6], changed[:6])  # unfitted texts change only their own vectors
    assert not np.allclose(base[6:], changed[6:])
    # the fitted texts' vectors are those of a fit on them alone
    np.testing.assert_allclose(base[:6], lsa_embeddings(texts[:6], 3), atol=1e-6)
