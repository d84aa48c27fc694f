"""``extract_features``: raw item text or images -> a modality in the data set folder, cached."""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import numpy as np
import pandas as pd

from fusionrec.data.config import DataConfig
from fusionrec.data.content import training_item_mask
from fusionrec.data.dataset import Dataset, Modality
from fusionrec.data.io import write_json
from fusionrec.data.paths import home
from fusionrec.data.prepare import prepare
from fusionrec.data.store import add_modality, read_manifest
from fusionrec.errors import ConfigError, DataError
from fusionrec.features.cache import CacheStats, FeatureCache, cached_map, content_hash
from fusionrec.features.provenance import extraction_record, marker_path, remember
from fusionrec.features.sources import image_source, text_source
from fusionrec.features.text import TextEncoder, get_text_encoder
from fusionrec.features.vision import ImageEncoder, Resize, decode_image, get_image_encoder

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

DTYPES = ("float32", "float16")


@dataclass
class ExtractResult:
    """What a call produced and how.

    Attributes:
        modalities: name -> Modality (values float32 in memory; stored as ``dtype`` on disk).
        folder: the data set folder written to (None for an in-memory Dataset without one).
        encoder: the encoder's cache identity (also in each modality's ``source``).
        num_items / present: items, and items with a usable text or image.
        missing: items without text or image (or whose file does not exist), masked.
        corrupt: (item id, file, reason) for image files that could not be decoded, masked.
        stats: per output kind, cache hits and newly encoded inputs.
        seconds: wall time.
    """

    modalities: dict[str, Modality]
    folder: Path | None
    encoder: str
    num_items: int
    present: int
    missing: int
    corrupt: list[tuple[str, str, str]] = field(default_factory=list)
    stats: dict[str, CacheStats] = field(default_factory=dict)
    seconds: float = 0.0
    written: list[str] = field(default_factory=list)  # modalities (re)written to the folder
    digest: str = ""  # identity of this result: encoder, options, each item's content hash
    provenance: dict[str, dict] = field(default_factory=dict)  # per modality: what produced it (provenance.py)

    @property
    def encoded(self) -> int:
        return sum(s.encoded for s in self.stats.values())

    @property
    def cached(self) -> int:
        return sum(s.hits for s in self.stats.values())


def extract_features(
    data: str | Path | DataConfig | Dataset,
    modality: Literal["text", "image"] = "text",
    encoder: str | TextEncoder | ImageEncoder | None = None,
    regions: bool = False,
    batch_size: int | None = None,
    dtype: Literal["float32", "float16"] = "float32",
    column: str | None = None,
    *,
    name: str | None = None,
    max_tokens: int = 32,
    resize: Resize = "squash",
    device: str | None = None,
    progress: bool = True,
    write: bool = True,
    flush_items: int | None = None,
) -> ExtractResult:
    """Encode every item's text or image and store the result as modalities of the data set.

    Args:
        data: a built-in data set name or a prepared folder (resolved with :func:`prepare`), a
            DataConfig, or a loaded Dataset (written to its folder when it came from one).
        modality: ``text`` or ``image``.
        encoder: a name (text: ``minilm`` default, ``tfidf-lsa[-dim]``, any sentence-transformers /
            Hugging Face name or folder; image: ``efficientnet-lite0`` default, ``timm:<name>``,
            ``hf:<name>``) or an encoder object.
        regions: also store the grid: ``<name>_regions`` (image: last feature map, R cells) or
            ``<name>_tokens`` (text: contextual token vectors, R = ``max_tokens``; padding rows zero),
            both of kind ``regions``, shape (I, R, D).
        batch_size: inputs per forward pass (default: the encoder's).
        dtype: ``float16`` halves the cache and the stored files (loaded back as float32).
        column: text: an items column, or ``review`` for training reviews; image: the items column
            with file paths (default ``image_path``).
        name: modality name (default ``text`` / the column / ``image``).
        write: add the modalities to the folder with :func:`fusionrec.data.store.add_modality`.
        flush_items: results per cache part (smaller: less lost when interrupted).

    Items without text or image, and corrupt image files, get mask False and a zero row; corrupt
    files are listed in the result and in a warning. Results are cached under
    ``$FUSIONREC_HOME/features`` by each input's content hash, the encoder and the options.

    A corpus-level encoder (``tfidf-lsa``) is fitted on the texts of the items that occur in training
    only, then encodes every item (docs/features.md, "What content statistics see"). What produced
    each written modality (encoder, versions, options, cache key) is recorded next to its files and
    read back by :func:`fusionrec.features.modality_provenance`.
    """
    start = time.perf_counter()
    if modality not in ("text", "image"):
        raise ConfigError(f"unknown modality {modality!r}; choose text or image")
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; choose {' or '.join(DTYPES)}")
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1 (got {batch_size})")
    if max_tokens < 1:
        raise ConfigError(f"max_tokens must be at least 1 (got {max_tokens})")
    if resize not in ("squash", "crop"):
        raise ConfigError(f"unknown resize {resize!r}; choose squash or crop")
    wrong = ImageEncoder if modality == "text" else TextEncoder
    if isinstance(encoder, wrong):
        raise ConfigError(
            f"encoder {encoder.name!r} is a{'n image' if modality == 'text' else ' text'} encoder; "
            f"pass {'a text' if modality == 'text' else 'an image'} encoder for modality {modality!r}"
        )
    dataset, folder = _resolve(data)
    run = _Run(dataset, dtype, batch_size, progress, flush_items)
    if modality == "text":
        # the isinstance check above refused an encoder of the other modality
        result = run.text(
            get_text_encoder(cast("str | TextEncoder | None", encoder), device), column, name, regions, max_tokens
        )
    else:
        result = run.image(
            get_image_encoder(cast("str | ImageEncoder | None", encoder), device, resize), column, name, regions
        )
    result.folder = folder if write else None
    if write:
        for mod_name, mod in result.modalities.items():
            record = result.provenance.get(mod_name, {})
            if folder is not None:
                digest = content_hash(json.dumps([result.digest, mod_name, dtype, mod.source]))
                if _write(folder, mod_name, mod, dtype, digest, record):
                    result.written.append(mod_name)
            dataset.modalities[mod_name] = mod
            remember(dataset, mod_name, mod, record)
    if result.corrupt:
        names = ", ".join(Path(f).name for _, f, _ in result.corrupt[:10])
        more = f" and {len(result.corrupt) - 10} more" if len(result.corrupt) > 10 else ""
        warnings.warn(f"{len(result.corrupt)} corrupt image file(s) skipped (masked): {names}{more}", stacklevel=2)
    result.seconds = time.perf_counter() - start
    return result


def _resolve(data: str | Path | DataConfig | Dataset) -> tuple[Dataset, Path | None]:
    if isinstance(data, Dataset):
        path = data.meta.get("path")
        return data, Path(path) if path else None
    config = data if isinstance(data, DataConfig) else DataConfig(name=str(data))
    folder = prepare(config)
    return _load_tables(folder), folder


def _load_tables(folder: Path) -> Dataset:
    """The folder's tables without its feature files (a region grid can be gigabytes)."""
    manifest = read_manifest(folder)
    items = folder / "items.parquet"
    try:
        return Dataset(
            name=manifest["name"],
            interactions=pd.read_parquet(folder / "interactions.parquet"),
            user_ids=np.load(folder / "user_ids.npy").astype(object),
            item_ids=np.load(folder / "item_ids.npy").astype(object),
            items=pd.read_parquet(items) if items.exists() else None,
            meta={**manifest.get("meta", {}), "fingerprint": manifest["fingerprint"], "path": str(folder)},
        )
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{folder}: damaged data set folder ({exc}); run `fusionrec data validate {folder}` and prepare it again"
        ) from None


def _write(folder: Path, name: str, mod: Modality, dtype: str, digest: str, record: dict | None = None) -> bool:
    """Add the modality unless the folder already holds exactly this result; True if written.

    A hidden marker ``features/.<name>.extract.json`` (not part of the manifest) remembers which
    extraction (``digest``: encoder, options, every item's content hash) produced the files, their
    sha256 and the provenance ``record`` (:mod:`fusionrec.features.provenance`); if digest and files
    still match, rewriting (and rehashing) a large grid is skipped.
    """
    marker = marker_path(folder, name)
    files = read_manifest(folder)["files"]
    rels = [f"features/{name}.npy", f"features/{name}.mask.npy"]
    with contextlib.suppress(OSError, ValueError):
        seen = json.loads(marker.read_text())
        if seen.get("digest") == digest and all(seen.get("files", {}).get(r) == files.get(r) for r in rels):
            if record and not seen.get("provenance"):  # a marker from before provenance records
                write_json(marker, {**seen, "provenance": record})
            return False
    stored = Modality(mod.values, mod.mask, mod.kind, mod.source, mod.labels)
    if dtype == "float16":
        stored.values = mod.values.astype(np.float16)  # on disk only; loads back as float32
    add_modality(folder, name, stored)
    files = read_manifest(folder)["files"]
    write_json(
        marker,
        {
            "digest": digest,
            "files": {r: files.get(r) for r in rels},
            "provenance": record or {},
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    return True


class _Run:
    def __init__(self, dataset: Dataset, dtype: str, batch_size: int | None, progress: bool, flush_items: int | None):
        self.dataset, self.dtype, self.batch_size = dataset, dtype, batch_size
        self.show_progress, self.flush_items = progress, flush_items
        self.root = home() / "features"

    # ---- text -----------------------------------------------------------------------------
    def text(
        self, encoder: TextEncoder, column: str | None, name: str | None, regions: bool, max_tokens: int
    ) -> ExtractResult:
        source = text_source(self.dataset, column)
        name = name or source.name
        present = np.array([bool(p) for p in source.pieces])
        joined = [" ".join(p) for p in source.pieces]
        fitted: int | None = None
        if encoder.corpus_level:  # one vector per item from its joined text; fitted on the training items' texts
            fit = present & training_item_mask(self.dataset)
            encoder.fit([t for t, ok in zip(joined, fit) if ok])
            fitted = int(fit.sum())
            pieces = [[t] if ok else [] for t, ok in zip(joined, present)]
        else:
            pieces = source.pieces
        texts = {content_hash(t): t for p in pieces for t in p}
        if not texts:
            raise DataError(f"{self.dataset.name}: no item has text in {source.what}; choose another --column")
        batch = self.batch_size or encoder.default_batch_size
        cache = FeatureCache(self.root, encoder.cache_id, {"kind": "text-pooled", "dtype": self.dtype})
        with self._progress(f"{name}: {encoder.name}") as advance:
            out, keys, _, stats = cached_map(
                cache,
                list(texts),
                texts.__getitem__,
                lambda batch_texts: {"pooled": encoder.encode(batch_texts)},
                outputs=["pooled"],
                batch_size=batch,
                dtype=self.dtype,
                flush_items=self.flush_items or max(1024, batch),
                progress=advance,
                setup=encoder.load,
            )
        row = {k: i for i, k in enumerate(keys)}
        values = np.zeros((len(pieces), out["pooled"].shape[1]), dtype=np.float32)
        for i, p in enumerate(pieces):
            if p:
                values[i] = out["pooled"][[row[content_hash(t)] for t in p]].astype(np.float32).mean(axis=0)
        source_note = f"{encoder.cache_id} of {source.what}"
        modalities = {name: _modality(values, present, "dense", source_note, self.dtype)}
        all_stats = {"pooled": stats}
        provenance = {
            name: extraction_record(
                encoder, "text", source.what, {"dtype": self.dtype, "pooled": "mean"}, self._key(cache), fitted
            )
        }

        if regions:
            tokens = {content_hash(t): t for t, ok in zip(joined, present) if ok}
            cache = FeatureCache(
                self.root, encoder.cache_id, {"kind": "text-tokens", "max_tokens": max_tokens, "dtype": self.dtype}
            )
            with self._progress(f"{name} tokens: {encoder.name}") as advance:
                out, keys, _, stats = cached_map(
                    cache,
                    list(tokens),
                    tokens.__getitem__,
                    lambda batch_texts: {"tokens": encoder.encode_tokens(batch_texts, max_tokens).embeddings},
                    outputs=["tokens"],
                    batch_size=batch,
                    dtype=self.dtype,
                    flush_items=self.flush_items or max(1024, batch),
                    progress=advance,
                    setup=encoder.load,
                )
            row = {k: i for i, k in enumerate(keys)}
            grid = np.zeros((len(pieces), max_tokens, out["tokens"].shape[2]), np.float32)
            hit = [i for i in range(len(pieces)) if present[i]]
            if hit:
                grid[hit] = out["tokens"][[row[content_hash(joined[i])] for i in hit]]
            modalities[f"{name}_tokens"] = _modality(
                grid, present, "regions", f"{encoder.cache_id} tokens (max {max_tokens}) of {source.what}", self.dtype
            )
            all_stats["tokens"] = stats
            provenance[f"{name}_tokens"] = extraction_record(
                encoder, "text", source.what, {"dtype": self.dtype, "tokens": max_tokens}, self._key(cache), fitted
            )
        digest = content_hash(
            json.dumps(
                [encoder.cache_id, source.what, regions, max_tokens, [[content_hash(t) for t in p] for p in pieces]]
            )
        )
        return ExtractResult(
            modalities,
            None,
            encoder.cache_id,
            len(pieces),
            int(present.sum()),
            int((~present).sum()),
            stats=all_stats,
            digest=digest,
            provenance=provenance,
        )

    # ---- images ---------------------------------------------------------------------------
    def image(self, encoder: ImageEncoder, column: str | None, name: str | None, regions: bool) -> ExtractResult:
        paths, what = image_source(self.dataset, column)
        name = name or "image"
        keys: list[str | None] = []
        key_path: dict[str, Path] = {}
        for path in paths:
            try:
                data = path.read_bytes() if path is not None else None
            except (FileNotFoundError, IsADirectoryError, PermissionError):
                data = None
            if data is None:
                keys.append(None)
                continue
            key = content_hash(data)
            keys.append(key)
            key_path.setdefault(key, path)  # type: ignore[arg-type]

        def load(key: str) -> np.ndarray:
            path = key_path[key]
            image = decode_image(path.read_bytes(), str(path))
            return encoder.preprocess(image)

        def encode(batch: list[np.ndarray]) -> dict[str, np.ndarray]:
            out = encoder.encode(np.stack(batch), regions=regions)
            # an encoder asked for regions returns them
            return {"pooled": out.pooled, **({"regions": cast(np.ndarray, out.regions)} if regions else {})}

        outputs = ["pooled", "regions"] if regions else ["pooled"]
        cache = FeatureCache(
            self.root, encoder.cache_id, {"kind": "image", "regions": regions, "dtype": self.dtype, **encoder.options}
        )
        batch = self.batch_size or encoder.default_batch_size
        with self._progress(f"{name}: {encoder.name}") as advance:
            out, good, failures, stats = cached_map(
                cache,
                list(key_path),
                load,
                encode,
                outputs=outputs,
                batch_size=batch,
                dtype=self.dtype,
                flush_items=self.flush_items or max(256, batch),
                progress=advance,
                setup=encoder.load,
            )
        row = {k: i for i, k in enumerate(good)}
        mask = np.array([k is not None and k in row for k in keys], dtype=bool)
        hit = np.flatnonzero(mask)
        idx = [row[keys[i]] for i in hit]  # type: ignore[index]
        if not good:
            bad = ", ".join(str(key_path[k].name) for k in list(failures)[:5])
            raise DataError(
                f"{self.dataset.name}: no readable image among {len(paths)} items ({len(key_path)} "
                f"files found, {len(failures)} corrupt{': ' + bad if bad else ''}); check {what}"
            )
        pooled = np.zeros((len(paths), out["pooled"].shape[1]), dtype=np.float32)
        pooled[hit] = out["pooled"][idx]
        note = f"{encoder.cache_id} ({encoder.resize}) of {what}"
        modalities = {name: _modality(pooled, mask, "dense", note, self.dtype)}
        options = {"dtype": self.dtype, "resize": encoder.resize, **encoder.options}
        provenance = {name: extraction_record(encoder, "image", what, options, self._key(cache))}
        if regions:
            grid = np.zeros((len(paths),) + out["regions"].shape[1:], dtype=np.float32)
            grid[hit] = out["regions"][idx]
            modalities[f"{name}_regions"] = _modality(grid, mask, "regions", f"{note}, last feature map", self.dtype)
            provenance[f"{name}_regions"] = extraction_record(
                encoder, "image", what, {**options, "regions": True}, self._key(cache)
            )
        item_ids = self.dataset.item_ids
        corrupt = [(str(item_ids[i]), str(paths[i]), failures[k]) for i, k in enumerate(keys) if k in failures]
        missing = int(sum(k is None for k in keys))
        digest = content_hash(
            json.dumps(
                [
                    encoder.cache_id,
                    encoder.options,
                    what,
                    regions,
                    [k if m else None for k, m in zip(keys, mask.tolist())],
                ]
            )
        )
        return ExtractResult(
            modalities,
            None,
            encoder.cache_id,
            len(paths),
            int(mask.sum()),
            missing,
            corrupt=corrupt,
            stats={"image": stats},
            digest=digest,
            provenance=provenance,
        )

    def _key(self, cache: FeatureCache) -> str:
        """The cache folder of ``cache`` relative to ``$FUSIONREC_HOME/features``."""
        try:
            return cache.dir.relative_to(self.root).as_posix()
        except ValueError:
            return str(cache.dir)

    @contextmanager
    def _progress(self, label: str) -> Iterator[_Bar | None]:
        bar = _Bar(label) if self.show_progress else None
        try:
            yield bar
        finally:
            if bar is not None:
                bar.close()


class _Bar:
    """A Rich progress bar over the cache misses, shown only when something is encoded."""

    def __init__(self, label: str):
        self.label = label
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def start(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=total)

    def advance(self, n: int) -> None:
        if self.bar is not None:
            assert self.task is not None  # set with self.bar in start()
            self.bar.advance(self.task, n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _modality(values: np.ndarray, mask: np.ndarray, kind: str, source: str, dtype: str) -> Modality:
    """``values`` float32 with zero rows where ``mask`` is False (filled in place, no copy)."""
    if dtype == "float16":  # what will be on disk, so memory and a reload agree
        rows = np.flatnonzero(mask)
        values[rows] = values[rows].astype(np.float16).astype(np.float32)
    return Modality(values, mask, kind, source)  # type: ignore[arg-type]
