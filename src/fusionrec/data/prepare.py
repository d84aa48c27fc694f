"""One call from a name or a path to a validated, split, id-mapped data set folder, cached.

``prepare(config)`` reads the source, applies implicit conversion, k-core and the split, builds
item text from training rows only (reviews; a built-in's ``after_split`` step, e.g. MovieLens
tags), validates, and writes the canonical folder under ``$FUSIONREC_HOME/datasets/<name>/<key>``.
The key hashes the preparation settings and the source (a built-in's name and options, or each
source file's path, size and modification time), so a second call with the same inputs just
loads the folder.

Remembered settings: ``prepare(config, remember=True)`` (what ``fusionrec data prepare`` does)
records the settings used for a file or folder source in ``$FUSIONREC_HOME/sources/``. Later calls
for that source (``data info``, ``data validate``, ``train -d``, ``load_dataset``) take every
setting they do not give explicitly from there (:func:`resolve_data_config`), so a folder prepared
with ``--split column`` keeps that split unless told otherwise; a warning names the settings taken.
Built-in names always start from the documented defaults.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from fusionrec.config import deep_merge, validate
from fusionrec.data import builtin  # noqa: F401  (fills the DATASETS registry)
from fusionrec.data.config import DataConfig
from fusionrec.data.content import text_modality, training_item_mask
from fusionrec.data.dataset import TRAIN, Dataset
from fusionrec.data.filters import k_core, to_implicit
from fusionrec.data.io import write_json
from fusionrec.data.paths import home, resolve_shared
from fusionrec.data.readers import detect_format, read_path
from fusionrec.data.splits import apply_split
from fusionrec.data.store import MANIFEST, load_dataset_dir, quick_check, save_dataset
from fusionrec.data.validate import validate_dataset
from fusionrec.errors import DataError
from fusionrec.registry import DATASETS

PIPELINE_VERSION = 3  # 2: ids stripped, repeated headers dropped, catalogue kept by splits, tags from train; 3: LSA fitted on training items


class RememberedSettings(UserWarning):
    """Settings not given were taken from the source's last ``fusionrec data prepare``."""


def prepare(
    config: DataConfig, options: dict[str, Any] | None = None, *, force: bool = False, remember: bool = False
) -> Path:
    """Prepare (or find in the cache) the data set folder for ``config``; return its path.

    Settings ``config`` leaves unset come from the source's last ``remember=True`` preparation
    (see :func:`resolve_data_config`); ``remember=True`` makes this call's settings that memory.
    """
    resolved = resolve_data_config(config)
    if resolved is not config:
        warnings.warn(f"data {config.name}: {describe_remembered(config, resolved)}", RememberedSettings, stacklevel=2)
    config = resolved
    options = options if options is not None else (config.options or None)
    source = Path(config.name)
    if _is_prepared_folder(source):
        return source
    folder = cache_dir(config, options)
    if (folder / MANIFEST).exists() and not force:
        try:
            quick_check(folder)
        except DataError:
            pass  # a damaged cache entry is rebuilt below, atomically replacing it
        else:
            if remember:
                remember_settings(config, folder)
            return folder
    dataset = build(config, options)
    save_dataset(dataset, folder)
    if remember:
        remember_settings(config, folder)
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
    if dataset.is_kg_completion or dataset.split_records is not None:
        # split triples or family records, not interactions: the interaction filters and splits do not apply
        validate_dataset(dataset)
        dataset.meta.update(pipeline_version=PIPELINE_VERSION, prepare=config.model_dump())
        return dataset
    dataset = to_implicit(dataset, config.implicit_threshold)
    dataset = k_core(dataset, config.kcore, config.kcore)
    dataset = apply_split(dataset, config.split)
    if "review" in dataset.interactions:
        dataset.modalities["review"] = review_modality(dataset, int(dataset.meta.get("text_dim", 64)))
    after_split = _builtin_entry(config).meta.get("after_split") if _is_builtin(config) else None
    if after_split is not None:  # e.g. item text from training rows only
        dataset = after_split(dataset)
    validate_dataset(dataset)
    dataset.meta.update(pipeline_version=PIPELINE_VERSION, prepare=config.model_dump())
    return dataset


# ------------------------------------------------------------------------------ remembered settings
def resolve_data_config(config: DataConfig) -> DataConfig:
    """The settings :func:`prepare` uses for ``config``.

    For a file or folder source that was prepared with ``remember=True`` (``fusionrec data
    prepare``), every setting ``config`` does not set explicitly (pydantic's ``model_fields_set``,
    nested for ``split``) is taken from that preparation; otherwise ``config`` itself is returned.
    """
    if _is_builtin(config) or not Path(config.name).exists() or _is_prepared_folder(Path(config.name)):
        return config
    remembered = read_remembered(config.name)
    if remembered is None:
        return config
    merged = deep_merge(remembered, _explicit_settings(config))
    merged["name"] = config.name
    resolved = validate(DataConfig, merged, f"remembered settings of {config.name} ({_memory_file(config.name)})")
    return config if resolved.model_dump() == config.model_dump() else resolved


def describe_remembered(given: DataConfig, resolved: DataConfig) -> str:
    """One line: which settings came from the source's last ``fusionrec data prepare``."""
    diffs = _diff(given.model_dump(mode="json"), resolved.model_dump(mode="json"))
    shown = ", ".join(f"{k}={v}" for k, v in diffs) or "none"
    return (
        f"settings not given are those of its last `fusionrec data prepare`: {shown} (set them explicitly to override)"
    )


def remember_settings(config: DataConfig, folder: Path) -> None:
    """Record ``config`` as the settings of its file or folder source (no-op for built-ins)."""
    if _is_builtin(config) or not Path(config.name).exists():
        return
    settings = config.model_dump(mode="json")
    settings.pop("name")
    write_json(
        _memory_file(config.name),
        {"source": str(Path(config.name).resolve()), "settings": settings, "folder": str(folder)},
    )


def read_remembered(name: str) -> dict[str, Any] | None:
    """The settings remembered for the source ``name`` (without ``name``), or None."""
    path = _memory_file(name)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        settings = record["settings"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(
            f"{path}: unreadable remembered settings; delete the file, then run "
            f"`fusionrec data prepare {name}` with the settings you want"
        ) from None
    return settings if isinstance(settings, dict) else None


def _memory_file(name: str) -> Path:
    digest = hashlib.sha256(str(Path(name).resolve()).encode()).hexdigest()[:16]
    return home() / "sources" / f"{digest}.json"


def _explicit_settings(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in model.model_fields_set:
        value = getattr(model, key)
        out[key] = _explicit_settings(value) if isinstance(value, BaseModel) else value
    return out


def _diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(a.get(key), dict) and key == "split":
            out += _diff(a[key], value, f"{prefix}{key}.")
        elif a.get(key) != value:
            out.append((f"{prefix}{key}", value))
    return out


# ------------------------------------------------------------------------------------- reading
def read_source(config: DataConfig, options: dict[str, Any] | None) -> Dataset:
    path = Path(config.name)
    if _is_builtin(config):
        entry = _builtin_entry(config)
        opts = validate(entry.config, options or {}, f"{config.name} options") if entry.config else None
        return entry.obj(opts)
    if options:
        raise DataError(
            f"data set options {sorted(options)} only apply to built-in data sets ({', '.join(DATASETS.names())})"
        )
    if not path.exists():
        raise DataError(
            f"unknown data set {config.name!r}: not a built-in ({', '.join(DATASETS.names())}) "
            "and no such file or folder"
        )
    return read_path(path, config)


def review_modality(dataset: Dataset, dim: int) -> Any:
    """Item text from the *training* reviews only, so test reviews never leak into features."""
    inter = dataset.interactions
    train = inter[inter["split"].to_numpy() == TRAIN]
    texts = train.groupby("item")["review"].agg(" ".join)
    per_item = texts.reindex(range(dataset.num_items), fill_value="").tolist()
    return text_modality(per_item, dim, "training reviews", fit=training_item_mask(dataset))


def cache_key(config: DataConfig, options: dict[str, Any] | None) -> str:
    settings = config.model_dump()
    settings.pop("name")  # the source signature names the source (a path spelt two ways is one source)
    settings.pop("options", None)  # hashed once, below, in their validated form
    payload = {
        "config": settings,
        "options": _canonical_options(config, options if options is not None else config.options),
        "pipeline": PIPELINE_VERSION,
        "source": _source_signature(config),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _canonical_options(config: DataConfig, options: dict[str, Any] | None) -> dict[str, Any]:
    """A built-in's options as its options class reads them (defaults filled in, values typed), so that
    ``load_dataset(name, options={...})``, ``data.options`` and ``-o key=value`` name one cached folder."""
    if _is_builtin(config):
        entry = _builtin_entry(config)
        if entry.config is not None:
            return validate(entry.config, options or {}, f"{config.name} options").model_dump(mode="json")
    return dict(options or {})


def _source_signature(config: DataConfig) -> Any:
    path = Path(config.name)
    if _is_builtin(config):
        return f"builtin:{config.name}"
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []
    if config.split.path and config.split.method == "files":
        files += sorted(p for p in resolve_shared(config.split.path, "data.split.path").glob("*") if p.is_file())
    return [(str(p.resolve()), (st := os.stat(p)).st_size, st.st_mtime_ns) for p in files]


def _is_builtin(config: DataConfig) -> bool:
    return config.name in DATASETS and not Path(config.name).exists()


def _builtin_entry(config: DataConfig) -> Any:
    return DATASETS.entry(config.name)


def _is_prepared_folder(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST).exists()


def _safe_name(name: str) -> str:
    base = Path(name).resolve().name if Path(name).exists() else Path(name).name
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in base or name).strip(".") or "data"


__all__ = [
    "prepare",
    "load_dataset",
    "build",
    "read_source",
    "cache_dir",
    "cache_key",
    "detect_format",
    "resolve_data_config",
    "remember_settings",
    "read_remembered",
    "RememberedSettings",
]
