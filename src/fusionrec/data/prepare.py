"""One call from a name or a path to a validated, split, id-mapped data set folder, cached.

``prepare(config)`` reads the source, applies implicit conversion, k-core and the split, builds
review text from training reviews only, validates, and writes the canonical folder under
``$FUSIONREC_HOME/datasets/<name>/<key>``. The key hashes the preparation settings and the source
(a built-in's name and options, or each source file's path, size and modification time), so a
second call with the same inputs just loads the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


from fusionrec.config import validate
from fusionrec.data import builtin  # noqa: F401  (fills the DATASETS registry)
from fusionrec.data.config import DataConfig
from fusionrec.data.content import text_modality
from fusionrec.data.dataset import TRAIN, Dataset
from fusionrec.data.filters import k_core, to_implicit
from fusionrec.data.paths import home
from fusionrec.data.readers import read_mmrec, read_recbole, read_table
from fusionrec.data.splits import apply_split
from fusionrec.data.store import MANIFEST, load_dataset_dir, quick_check, save_dataset
from fusionrec.data.validate import validate_dataset
from fusionrec.errors import DataError
from fusionrec.registry import DATASETS

PIPELINE_VERSION = 1


def prepare(config: DataConfig, options: dict[str, Any] | None = None, *, force: bool = False) -> Path:
    """Prepare (or find in the cache) the data set folder for ``config``; return its path."""
    options = options if options is not None else (config.options or None)
    source = Path(config.name)
    if _is_prepared_folder(source):
        return source
    folder = cache_dir(config, options)
    if (folder / MANIFEST).exists() and not force:
        try:
            quick_check(folder)
            return folder
        except DataError:
            pass  # a damaged cache entry is rebuilt below, atomically replacing it
    dataset = build(config, options)
    save_dataset(dataset, folder)
    return folder


def cache_dir(config: DataConfig, options: dict[str, Any] | None = None) -> Path:
    """Where :func:`prepare` keeps the folder for ``config``: ``$FUSIONREC_HOME/datasets/<name>/<key>``."""
    return home() / "datasets" / _safe_name(config.name) / cache_key(config, options)


def load_dataset(name: str | DataConfig = "ml-100k", options: dict[str, Any] | None = None, **config: Any) -> Dataset:
    """Python twin of ``fusionrec data prepare``: a name, path or DataConfig to a loaded Dataset."""
    data_config = name if isinstance(name, DataConfig) else validate(DataConfig, {"name": name, **config}, "data")
    return load_dataset_dir(prepare(data_config, options))


def build(config: DataConfig, options: dict[str, Any] | None = None) -> Dataset:
    options = options if options is not None else (config.options or None)
    dataset = read_source(config, options)
    dataset = to_implicit(dataset, config.implicit_threshold)
    dataset = k_core(dataset, config.kcore, config.kcore)
    dataset = apply_split(dataset, config.split)
    if "review" in dataset.interactions:
        dataset.modalities["review"] = review_modality(dataset, int(dataset.meta.get("text_dim", 64)))
    validate_dataset(dataset)
    dataset.meta.update(pipeline_version=PIPELINE_VERSION, prepare=config.model_dump())
    return dataset


def read_source(config: DataConfig, options: dict[str, Any] | None) -> Dataset:
    path = Path(config.name)
    if config.name in DATASETS and not path.exists():
        entry = DATASETS.entry(config.name)
        opts = validate(entry.config, options or {}, f"{config.name} options") if entry.config else None
        return entry.obj(opts)
    if options:
        raise DataError(f"data set options {sorted(options)} only apply to built-in data sets "
                        f"({', '.join(DATASETS.names())})")
    if not path.exists():
        raise DataError(f"unknown data set {config.name!r}: not a built-in ({', '.join(DATASETS.names())}) "
                        "and no such file or folder")
    fmt = config.format if config.format != "auto" else detect_format(path)
    if fmt == "mmrec":
        dataset = read_mmrec(path, duplicates=config.duplicates)
    elif fmt == "recbole":
        dataset = read_recbole(path, duplicates=config.duplicates)
    elif fmt == "csv":
        dataset = read_table(path, config.columns, config.duplicates)
    else:
        raise DataError(f"{path}: data.format=fusionrec needs a prepared folder (with {MANIFEST}); "
                        "use data.format=auto, mmrec, recbole or csv to read raw files")
    return dataset


def detect_format(path: Path) -> str:
    if path.is_file():
        return "csv"
    if _is_prepared_folder(path):
        return "fusionrec"
    inters = list(path.glob("*.inter"))
    if not inters:
        raise DataError(f"{path}: cannot tell the format (no manifest.json, no *.inter); pass --format")
    header = inters[0].open(encoding="utf-8", errors="replace").readline()
    return "recbole" if ":" in header.split("\t")[0] else "mmrec"


def review_modality(dataset: Dataset, dim: int) -> Any:
    """Item text from the *training* reviews only, so test reviews never leak into features."""
    inter = dataset.interactions
    train = inter[inter["split"].to_numpy() == TRAIN]
    texts = train.groupby("item")["review"].agg(" ".join)
    per_item = texts.reindex(range(dataset.num_items), fill_value="").tolist()
    return text_modality(per_item, dim, "training reviews")


def cache_key(config: DataConfig, options: dict[str, Any] | None) -> str:
    payload = {"config": config.model_dump(), "options": options or {}, "pipeline": PIPELINE_VERSION,
               "source": _source_signature(config)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _source_signature(config: DataConfig) -> Any:
    path = Path(config.name)
    if config.name in DATASETS and not path.exists():
        return f"builtin:{config.name}"
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []
    if config.split.path:
        files += sorted(p for p in Path(config.split.path).glob("*") if p.is_file())
    return [(str(p.resolve()), (st := os.stat(p)).st_size, st.st_mtime_ns) for p in files]


def _is_prepared_folder(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST).exists()


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(name).name or name) or "data"


__all__ = ["prepare", "load_dataset", "build", "read_source", "cache_dir", "cache_key"]
