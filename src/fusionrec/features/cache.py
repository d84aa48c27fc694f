"""The on-disk feature cache: per-item results keyed by the sha256 of the item's content.

::

    $FUSIONREC_HOME/features/<encoder-slug>/<options-hash>/
        spec.json                      encoder identity and options of this folder (for people)
        part-<id>.<array>.npy          one array per output (pooled, regions, tokens), rows = keys
        part-<id>.keys.npy             the content hashes of the rows; written last, so a part
                                       exists only once all its arrays do

A run looks its items up, encodes only the misses in batches and writes a new part every
``flush_items`` results (and when it stops, even by an exception or Ctrl-C), so an interrupted run
resumes where it stopped and a second run over the same content encodes nothing. Parts are never
rewritten; concurrent runs write parts with different names.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fusionrec.data.io import write_json, write_npy

CACHE_VERSION = 1
_FP16_MAX = float(np.finfo(np.float16).max)
_counter = count()


def content_hash(data: bytes | str) -> str:
    """sha256 hex digest of text (UTF-8) or raw bytes."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def cast(values: np.ndarray, dtype: str) -> np.ndarray:
    """float32 or float16 (clipped to the float16 range, so nothing becomes inf)."""
    values = np.asarray(values, dtype=np.float32)
    if dtype == "float16":
        return np.clip(values, -_FP16_MAX, _FP16_MAX).astype(np.float16)
    return values


class CorruptInput(Exception):
    """An input that cannot be decoded (e.g. a broken image file); its item is masked, not fatal."""


class ProgressHook(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, n: int) -> None: ...


@dataclass
class CacheStats:
    requested: int = 0  # distinct contents asked for
    hits: int = 0  # found in the cache
    encoded: int = 0  # encoded by this run
    failed: int = 0  # could not be decoded (see failures)


class FeatureCache:
    """One folder of cached results for one encoder and one set of options."""

    def __init__(self, root: str | Path, encoder_id: str, options: dict[str, Any]):
        spec = {"version": CACHE_VERSION, "encoder": encoder_id, "options": options}
        digest = content_hash(json.dumps(spec, sort_keys=True, default=str))[:16]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_id)[:60].strip("_") or "encoder"
        self.dir = Path(root) / slug / digest
        self.spec = spec

    def _parts(self) -> Iterator[tuple[str, np.ndarray]]:
        if not self.dir.is_dir():
            return
        for keys_file in sorted(self.dir.glob("part-*.keys.npy")):
            stem = keys_file.name[: -len(".keys.npy")]
            try:
                yield stem, np.load(keys_file)
            except (OSError, ValueError):
                continue  # unreadable part: its items are simply encoded again

    def lookup(self, keys: Sequence[str]) -> dict[str, tuple[str, int]]:
        """key -> (part, row) for every key already in the cache."""
        wanted = set(keys)
        found: dict[str, tuple[str, int]] = {}
        for stem, part_keys in self._parts():
            for row, key in enumerate(part_keys.tolist()):
                if key in wanted and key not in found:
                    found[key] = (stem, row)
        return found

    def write(self, keys: Sequence[str], arrays: dict[str, np.ndarray]) -> None:
        if not keys:
            return
        if not (self.dir / "spec.json").exists():
            write_json(self.dir / "spec.json", self.spec)
        stem = f"part-{time.time_ns():x}-{os.getpid()}-{next(_counter)}"
        for name, values in arrays.items():
            write_npy(self.dir / f"{stem}.{name}.npy", values)
        write_npy(self.dir / f"{stem}.keys.npy", np.asarray(keys, dtype="<U64"))

    def gather(self, keys: Sequence[str], where: dict[str, tuple[str, int]], name: str) -> np.ndarray:
        """Rows of output ``name`` for ``keys`` (all present in ``where``), in order."""
        by_part: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for i, key in enumerate(keys):
            stem, row = where[key]
            by_part[stem].append((i, row))
        out: np.ndarray | None = None
        for stem, pairs in by_part.items():
            stored = np.load(self.dir / f"{stem}.{name}.npy", mmap_mode="r")
            if out is None:
                out = np.empty((len(keys),) + stored.shape[1:], dtype=stored.dtype)
            idx = np.array(pairs)
            out[idx[:, 0]] = stored[idx[:, 1]]
        if out is None:
            raise ValueError("gather needs at least one key")
        return out


def cached_map(
    cache: FeatureCache,
    keys: Sequence[str],
    load: Callable[[str], Any],
    encode: Callable[[list[Any]], dict[str, np.ndarray]],
    *,
    outputs: Sequence[str],
    batch_size: int,
    dtype: str,
    flush_items: int = 1024,
    flush_seconds: float = 60.0,
    progress: ProgressHook | None = None,
    setup: Callable[[], object] | None = None,
) -> tuple[dict[str, np.ndarray], list[str], dict[str, str], CacheStats]:
    """Results for distinct ``keys``, encoding only the ones the cache lacks.

    Args:
        load: key -> encoder input (text, preprocessed pixels); raises :class:`CorruptInput` to skip it.
        encode: a batch of inputs -> {output name: (B, ...) array}.
        progress: told the number of misses before encoding starts, then the keys done per batch.
        setup: called once before encoding when there are misses (e.g. load the model).

    Returns:
        ({output: rows of the keys that succeeded}, those keys in order, {failed key: reason}, stats).
    """
    keys = list(dict.fromkeys(keys))
    where = cache.lookup(keys)
    todo = [k for k in keys if k not in where]
    stats = CacheStats(requested=len(keys), hits=len(keys) - len(todo))
    failures: dict[str, str] = {}
    pending_keys: list[str] = []
    pending: dict[str, list[np.ndarray]] = defaultdict(list)
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        if pending_keys:
            cache.write(pending_keys, {name: np.concatenate(pending[name]) for name in outputs})
            pending_keys.clear()
            pending.clear()
        last_flush = time.monotonic()

    if todo and setup is not None:
        setup()
    if progress is not None and todo:
        progress.start(len(todo))
    try:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            inputs, ok = [], []
            for key in batch:
                try:
                    inputs.append(load(key))
                    ok.append(key)
                except CorruptInput as exc:
                    failures[key] = str(exc)
            if inputs:
                out = encode(inputs)
                for name in outputs:
                    pending[name].append(cast(out[name], dtype))
                pending_keys.extend(ok)
                stats.encoded += len(ok)
            if progress is not None:
                progress.advance(len(batch))
            if len(pending_keys) >= flush_items or time.monotonic() - last_flush > flush_seconds:
                flush()
    finally:
        flush()  # what was encoded before an interruption survives it

    stats.failed = len(failures)
    good = [k for k in keys if k not in failures]
    if not good:
        return {}, [], failures, stats
    where = cache.lookup(good) if todo else where
    return {name: cache.gather(good, where, name) for name in outputs}, good, failures, stats
