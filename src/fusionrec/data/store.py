"""The canonical data set folder (see docs/data.md).

::

    <dir>/manifest.json            format version, sizes, split, modalities, files + sha256, fingerprint
    <dir>/interactions.parquet     user, item (int32 indices), [rating], [timestamp], split (int8)
    <dir>/user_ids.npy, item_ids.npy   raw id (str) of each index
    <dir>/items.parquet, users.parquet   optional side tables, row i = index i
    <dir>/features/<name>.npy      float32 (I, D) or (I, R, D); <name>.mask.npy bool (I,)
    <dir>/kg.parquet, item_entities.parquet   optional knowledge graph

The whole folder is written into a temporary folder and renamed into place, so a crash never
leaves a half-written data set. The fingerprint is a hash of every file's sha256.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset, Modality
from fusionrec.data.io import atomic_dir, sha256_file, write_json, write_npy, write_parquet
from fusionrec.errors import DataError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def save_dataset(dataset: Dataset, directory: str | Path) -> Path:
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        write_parquet(tmp / "interactions.parquet", dataset.interactions)
        write_npy(tmp / "user_ids.npy", dataset.user_ids.astype(str))
        write_npy(tmp / "item_ids.npy", dataset.item_ids.astype(str))
        for name, table in (("items", dataset.items), ("users", dataset.users), ("kg", dataset.kg),
                            ("item_entities", dataset.item_entities)):
            if table is not None:
                write_parquet(tmp / f"{name}.parquet", _stringify_objects(table))
        for name, modality in dataset.modalities.items():
            write_npy(tmp / "features" / f"{name}.npy", modality.values)
            write_npy(tmp / "features" / f"{name}.mask.npy", modality.mask)
        write_json(tmp / MANIFEST, _manifest(dataset, tmp))
    return directory


def add_modality(directory: str | Path, name: str, modality: Modality) -> None:
    """Add or replace one modality in an existing folder (atomic per file), updating the manifest."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if len(modality.mask) != manifest["num_items"]:
        raise DataError(f"{directory}: modality {name!r} has {len(modality.mask)} rows, data set has {manifest['num_items']} items")
    write_npy(directory / "features" / f"{name}.npy", modality.values)
    write_npy(directory / "features" / f"{name}.mask.npy", modality.mask)
    manifest["modalities"][name] = _modality_entry(modality)
    _refresh_files(manifest, directory)
    write_json(directory / MANIFEST, manifest)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{directory}: not a fusionrec data set folder (no {MANIFEST}); "
                        "create one with `fusionrec data prepare`") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: unreadable manifest ({exc.msg} at line {exc.lineno}); prepare the data set again") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{path}: format version {manifest.get('format_version')!r}, this fusionrec reads {FORMAT_VERSION}; prepare again")
    return manifest


def load_dataset_dir(directory: str | Path, *, verify: bool = False) -> Dataset:
    directory = Path(directory)
    manifest = read_manifest(directory)
    if verify:
        verify_dataset_dir(directory, manifest)
    try:
        items = _read_optional(directory / "items.parquet")
        modalities = {}
        for name, entry in manifest["modalities"].items():
            modalities[name] = Modality(
                np.load(directory / "features" / f"{name}.npy", mmap_mode="r"),
                np.load(directory / "features" / f"{name}.mask.npy"),
                kind=entry["kind"], source=entry.get("source", ""), labels=entry.get("labels"),
            )
        return Dataset(
            name=manifest["name"],
            interactions=pd.read_parquet(directory / "interactions.parquet"),
            user_ids=np.load(directory / "user_ids.npy").astype(object),
            item_ids=np.load(directory / "item_ids.npy").astype(object),
            items=items,
            users=_read_optional(directory / "users.parquet"),
            modalities=modalities,
            kg=_read_optional(directory / "kg.parquet"),
            item_entities=_read_optional(directory / "item_entities.parquet"),
            meta={**manifest.get("meta", {}), "fingerprint": manifest["fingerprint"], "path": str(directory)},
        )
    except (OSError, ValueError) as exc:
        raise DataError(f"{directory}: damaged data set folder ({exc}); run `fusionrec data validate {directory}` "
                        "and prepare it again") from None


def verify_dataset_dir(directory: str | Path, manifest: dict[str, Any] | None = None) -> None:
    """Check every file listed in the manifest exists with the recorded sha256."""
    directory = Path(directory)
    manifest = manifest or read_manifest(directory)
    for rel, digest in manifest["files"].items():
        path = directory / rel
        if not path.exists():
            raise DataError(f"{path}: listed in the manifest but missing; prepare the data set again")
        if sha256_file(path) != digest:
            raise DataError(f"{path}: content differs from the manifest (changed or truncated); prepare the data set again")


def _manifest(dataset: Dataset, directory: Path) -> dict[str, Any]:
    summary = dataset.summary()
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": dataset.name,
        "num_users": dataset.num_users,
        "num_items": dataset.num_items,
        "num_interactions": dataset.num_interactions,
        "split": summary["split"],
        "modalities": {name: _modality_entry(m) for name, m in dataset.modalities.items()},
        "kg_triples": summary["kg_triples"],
        "meta": {k: v for k, v in dataset.meta.items() if k not in ("fingerprint", "path")},
    }
    _refresh_files(manifest, directory)
    return manifest


def _modality_entry(modality: Modality) -> dict[str, Any]:
    return {"kind": modality.kind, "shape": list(modality.values.shape), "coverage": round(modality.coverage, 6),
            "source": modality.source, "labels": modality.labels}


def _refresh_files(manifest: dict[str, Any], directory: Path) -> None:
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST and not p.name.startswith("."))
    manifest["files"] = {str(p.relative_to(directory)): sha256_file(p) for p in files}
    digest = hashlib.sha256(json.dumps(manifest["files"], sort_keys=True).encode()).hexdigest()
    manifest["fingerprint"] = digest[:16]


def _read_optional(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.exists() else None


def _stringify_objects(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    return frame
