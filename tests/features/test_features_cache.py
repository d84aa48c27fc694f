"""The content-hash cache: hits, resume after an interruption, failures, float16 storage."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.features.cache import CorruptInput, FeatureCache, cached_map, cast, content_hash


def _encode_counting(calls: list[int], fail_at: int | None = None):
    def encode(batch):
        calls.append(len(batch))
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt
        return {
            "pooled": np.array([[float(len(t)), 1.0] for t in batch]),
            "grid": np.ones((len(batch), 3, 2)) * np.array([len(t) for t in batch])[:, None, None],
        }

    return encode


def test_second_run_hits_cache_and_never_calls_encoder(tmp_path):
    texts = {content_hash(t): t for t in ["a", "bb", "ccc", "dddd", "eeeee"]}
    cache = FeatureCache(tmp_path, "enc", {"x": 1})
    calls: list[int] = []
    out, keys, failed, stats = cached_map(
        cache,
        list(texts),
        texts.__getitem__,
        _encode_counting(calls),
        outputs=["pooled", "grid"],
        batch_size=2,
        dtype="float32",
    )
    assert calls == [2, 2, 1] and stats.encoded == 5 and stats.hits == 0 and not failed
    np.testing.assert_array_equal(out["pooled"][:, 0], [1, 2, 3, 4, 5])
    assert out["grid"].shape == (5, 3, 2)

    calls2: list[int] = []
    out2, keys2, _, stats2 = cached_map(
        cache,
        list(texts)[::-1],
        texts.__getitem__,
        _encode_counting(calls2),
        outputs=["pooled", "grid"],
        batch_size=2,
        dtype="float32",
    )
    assert calls2 == [] and stats2.hits == 5 and stats2.encoded == 0
    np.testing.assert_array_equal(out2["pooled"][:, 0], [5, 4, 3, 2, 1])  # in the order asked


def test_other_options_or_encoder_do_not_share_entries(tmp_path):
    assert FeatureCache(tmp_path, "enc", {"x": 1}).dir != FeatureCache(tmp_path, "enc", {"x": 2}).dir
    assert FeatureCache(tmp_path, "enc", {"x": 1}).dir != FeatureCache(tmp_path, "enc2", {"x": 1}).dir


def test_interrupted_run_resumes_from_its_partial_results(tmp_path):
    texts = {content_hash(str(i) * (i + 1)): str(i) * (i + 1) for i in range(7)}
    cache = FeatureCache(tmp_path, "enc", {})
    calls: list[int] = []
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C during the third batch
        cached_map(
            cache,
            list(texts),
            texts.__getitem__,
            _encode_counting(calls, fail_at=3),
            outputs=["pooled"],
            batch_size=2,
            dtype="float32",
            flush_items=100,
        )
    assert len(cache.lookup(list(texts))) == 4  # the two finished batches were written on the way out
    calls2: list[int] = []
    out, keys, _, stats = cached_map(
        cache,
        list(texts),
        texts.__getitem__,
        _encode_counting(calls2),
        outputs=["pooled"],
        batch_size=2,
        dtype="float32",
    )
    assert stats.hits == 4 and stats.encoded == 3 and calls2 == [2, 1]
    np.testing.assert_array_equal(out["pooled"][:, 0], [i + 1 for i in range(7)])


def test_parts_are_flushed_every_flush_items(tmp_path):
    texts = {content_hash(str(i)): str(i) for i in range(6)}
    cache = FeatureCache(tmp_path, "enc", {})
    cached_map(
        cache,
        list(texts),
        texts.__getitem__,
        _encode_counting([]),
        outputs=["pooled"],
        batch_size=1,
        dtype="float32",
        flush_items=2,
    )
    assert len(list(cache.dir.glob("part-*.keys.npy"))) == 3


def test_corrupt_inputs_are_reported_not_cached(tmp_path):
    texts = {content_hash(t): t for t in ["ok", "BAD", "fine"]}

    def load(key):
        if texts[key] == "BAD":
            raise CorruptInput("bad.jpg: cannot identify image file")
        return texts[key]

    cache = FeatureCache(tmp_path, "enc", {})
    out, keys, failed, stats = cached_map(
        cache, list(texts), load, _encode_counting([]), outputs=["pooled"], batch_size=8, dtype="float32"
    )
    assert stats.failed == 1 and list(failed.values()) == ["bad.jpg: cannot identify image file"]
    assert [texts[k] for k in keys] == ["ok", "fine"] and len(out["pooled"]) == 2
    assert content_hash("BAD") not in cache.lookup(list(texts))


def test_float16_storage(tmp_path):
    texts = {content_hash(t): t for t in ["x", "yy"]}
    cache = FeatureCache(tmp_path, "enc", {"dtype": "float16"})
    out, *_ = cached_map(
        cache, list(texts), texts.__getitem__, _encode_counting([]), outputs=["pooled"], batch_size=8, dtype="float16"
    )
    assert out["pooled"].dtype == np.float16
    assert all(np.load(p).dtype == np.float16 for p in cache.dir.glob("part-*.pooled.npy"))
    assert np.isfinite(cast(np.array([1e9, -1e9]), "float16")).all()  # clipped, never inf
