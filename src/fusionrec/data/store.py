"""The canonical data set folder (documented file by file in docs/data.md).

::

    <dir>/manifest.json            format version, sizes, split, modalities, files (sha256 + bytes), fingerprint
    <dir>/interactions.parquet     user, item (int32 indices), [rating], [timestamp], split (int8), [extra columns]
    <dir>/user_ids.npy, item_ids.npy   raw id (str) of each index
    <dir>/items.parquet, users.parquet   optional side tables, row i = index i
    <dir>/features/<name>.npy      float32 (I, D) or (I, R, D); <name>.mask.npy bool (I,)
    <dir>/kg.parquet, item_entities.parquet   optional knowledge graph
    <dir>/tables/<name>.parquet    optional family record tables (impressions, outfits, ...)

The whole folder is written into a temporary folder and renamed into place, so a crash never
leaves a half-written data set. The fingerprint is the first 16 hex digits of the sha256 of the
sorted ``{relative path: file sha256}`` map: it changes exactly when some file's content does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset, Modality
from fusionrec.data.io import atomic_dir, read_npy, sha256_file, write_json, write_npy, write_parquet
from fusionrec.errors import DataError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_REPAIR = "delete the folder and prepare the data set again (`fusionrec data prepare`)"


def save_dataset(dataset: Dataset, directory: str | Path) -> Path:
    """Write ``dataset`` as a canonical folder at ``directory`` (atomically: all or nothing)."""
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        write_parquet(tmp / "interactions.parquet", _stringify_objects(dataset.interactions))
        write_npy(tmp / "user_ids.npy", np.asarray(dataset.user_ids).astype(str))
        write_npy(tmp / "item_ids.npy", np.asarray(dataset.item_ids).astype(str))
        for name, table in (
            ("items", dataset.items),
            ("users", dataset.users),
            ("kg", dataset.kg),
            ("item_entities", dataset.item_entities),
        ):
            if table is not None:
                write_parquet(tmp / f"{name}.parquet", _stringify_objects(table))
        for name, table in dataset.tables.items():
            write_parquet(tmp / "tables" / f"{name}.parquet", _stringify_objects(table))
        for name, modality in dataset.modalities.items():
            write_npy(tmp / "features" / f"{name}.npy", modality.values)
            write_npy(tmp / "features" / f"{name}.mask.npy", modality.mask)
        write_json(tmp / MANIFEST, _manifest(dataset, tmp))
    return directory


def add_modality(directory: str | Path, name: str, modality: Modality) -> None:
    """Add or replace one modality in an existing folder (atomic per file), updating the manifest.

    The manifest is written last, so an interrupted call leaves the old manifest, which
    :func:`verify_dataset_dir` then reports as not matching the new feature files.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    if len(modality.mask) != manifest["num_items"] or modality.values.shape[0] != manifest["num_items"]:
        raise DataError(
            f"{directory}: modality {name!r} has {modality.values.shape[0]} rows, the data set has "
            f"{manifest['num_items']} items; features need one row per item, in item index order"
        )
    finite = np.isfinite(modality.values.reshape(len(modality.values), -1)).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise DataError(
            f"{directory}: modality {name!r} has NaN/inf in row {row} (item index {row}); "
            "fix the features, or zero the row and mark the item missing in the mask"
        )
    write_npy(directory / "features" / f"{name}.npy", modality.values)
    write_npy(directory / "features" / f"{name}.mask.npy", modality.mask)
    manifest["modalities"][name] = _modality_entry(modality)
    _refresh_files(manifest, directory)
    write_json(directory / MANIFEST, manifest)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.is_dir():
        raise DataError(f"{directory}: no such data set folder; create one with `fusionrec data prepare`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{directory}: not a fusionrec data set folder (no {MANIFEST}); create one with `fusionrec data prepare`"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" ({exc.msg} at line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise DataError(f"{path}: unreadable manifest{where}; {_REPAIR}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the manifest ({exc.strerror}); check its permissions") from None
    if not isinstance(manifest, dict):
        raise DataError(f"{path}: the manifest is not a JSON object; {_REPAIR}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{path}: format version {manifest.get('format_version')!r}, this fusionrec reads "
            f"{FORMAT_VERSION}; {_REPAIR}"
        )
    missing = [k for k in _MANIFEST_KEYS if k not in manifest]
    if missing:
        raise DataError(f"{path}: manifest lacks the key(s) {missing}; {_REPAIR}")
    return manifest


def load_dataset_dir(directory: str | Path, *, verify: bool = False) -> Dataset:
    """Load a canonical folder. Always checks that every listed file exists with its recorded size;
    ``verify=True`` also re-hashes every file (see :func:`verify_dataset_dir`)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if verify:
        verify_dataset_dir(directory, manifest)
    else:
        quick_check(directory, manifest)
    num_users, num_items = manifest["num_users"], manifest["num_items"]
    interactions = _read_parquet(directory / "interactions.parquet")
    missing = [c for c in ("user", "item", "split") if c not in interactions.columns]
    if missing or len(interactions) != manifest["num_interactions"]:
        raise DataError(
            f"{directory / 'interactions.parquet'}: expected {manifest['num_interactions']} rows with "
            f"user, item, split; found {len(interactions)} rows, columns {list(interactions.columns)}; "
            f"{_REPAIR}"
        )
    user_ids = _read_ids(directory / "user_ids.npy", num_users)
    item_ids = _read_ids(directory / "item_ids.npy", num_items)
    modalities = {}
    for name, entry in manifest["modalities"].items():
        values = read_npy(directory / "features" / f"{name}.npy", mmap=True, fix=_REPAIR)
        mask = read_npy(directory / "features" / f"{name}.mask.npy", fix=_REPAIR)
        if values.shape[0] != num_items or mask.shape != (num_items,):
            raise DataError(
                f"{directory / 'features' / (name + '.npy')}: shape {values.shape} (mask {mask.shape}) "
                f"does not match the {num_items} items of the manifest; {_REPAIR}"
            )
        modalities[name] = Modality(
            values, mask, kind=entry.get("kind", "dense"), source=entry.get("source", ""), labels=entry.get("labels")
        )
    return Dataset(
        name=manifest["name"],
        interactions=interactions,
        user_ids=user_ids,
        item_ids=item_ids,
        items=_read_optional(directory / "items.parquet"),
        users=_read_optional(directory / "users.parquet"),
        modalities=modalities,
        kg=_read_optional(directory / "kg.parquet"),
        item_entities=_read_optional(directory / "item_entities.parquet"),
        meta={**manifest.get("meta", {}), "fingerprint": manifest["fingerprint"], "path": str(directory)},
        tables={name: _read_parquet(directory / "tables" / f"{name}.parquet") for name in manifest.get("tables", {})},
    )


def quick_check(directory: str | Path, manifest: dict[str, Any] | None = None) -> None:
    """Cheap check: every file listed in the manifest exists with its recorded size (catches truncation)."""
    directory = Path(directory)
    manifest = manifest or read_manifest(directory)
    sizes = manifest.get("bytes", {})
    for rel in manifest["files"]:
        path = directory / rel
        if not path.is_file():
            raise DataError(f"{path}: listed in the manifest but missing; {_REPAIR}")
        if rel in sizes and path.stat().st_size != sizes[rel]:
            raise DataError(
                f"{path}: {path.stat().st_size} bytes, the manifest recorded {sizes[rel]} "
                f"(truncated or changed); {_REPAIR}"
            )


def verify_dataset_dir(directory: str | Path, manifest: dict[str, Any] | None = None) -> None:
    """Check every file listed in the manifest exists with the recorded size and sha256, and that
    the fingerprint matches the file hashes. Raises a DataError naming the first bad file."""
    directory = Path(directory)
    manifest = manifest or read_manifest(directory)
    quick_check(directory, manifest)
    for rel, digest in manifest["files"].items():
        path = directory / rel
        if sha256_file(path) != digest:
            raise DataError(f"{path}: content differs from the manifest's sha256 (changed or truncated); {_REPAIR}")
    if fingerprint_of(manifest["files"]) != manifest["fingerprint"]:
        raise DataError(
            f"{directory / MANIFEST}: fingerprint {manifest['fingerprint']} does not match the listed "
            f"files (the manifest was edited); {_REPAIR}"
        )


def fingerprint_of(files: dict[str, str]) -> str:
    """Fingerprint of a folder: sha256 of its sorted ``{relative path: sha256}`` map, 16 hex digits."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


_MANIFEST_KEYS = ("name", "num_users", "num_items", "num_interactions", "modalities", "files", "fingerprint")


def _manifest(dataset: Dataset, directory: Path) -> dict[str, Any]:
    from fusionrec.version import __version__

    summary = dataset.summary()
    manifest = {
        "format_version": FORMAT_VERSION,
        "fusionrec_version": __version__,
        "name": dataset.name,
        "num_users": dataset.num_users,
        "num_items": dataset.num_items,
        "num_interactions": dataset.num_interactions,
        "columns": {col: str(dtype) for col, dtype in dataset.interactions.dtypes.items()},
        "split": summary["split"],
        "modalities": {name: _modality_entry(m) for name, m in dataset.modalities.items()},
        "kg_triples": summary["kg_triples"],
        "kg_linked_items": summary["kg_linked_items"],
        "tables": summary["tables"],
        "meta": {k: v for k, v in dataset.meta.items() if k not in ("fingerprint", "path")},
    }
    _refresh_files(manifest, directory)
    return manifest


def _modality_entry(modality: Modality) -> dict[str, Any]:
    return {
        "kind": modality.kind,
        "shape": list(modality.values.shape),
        "coverage": round(modality.coverage, 6),
        "source": modality.source,
        "labels": modality.labels,
    }


def _refresh_files(manifest: dict[str, Any], directory: Path) -> None:
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST and not p.name.startswith("."))
    manifest["files"] = {p.relative_to(directory).as_posix(): sha256_file(p) for p in files}
    manifest["bytes"] = {p.relative_to(directory).as_posix(): p.stat().st_size for p in files}
    manifest["fingerprint"] = fingerprint_of(manifest["files"])


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise DataError(f"{path}: missing; {_REPAIR}") from None
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        first = (str(exc).splitlines() or [exc.__class__.__name__])[0]
        raise DataError(f"{path}: unreadable parquet ({first}); {_REPAIR}") from None


def _read_ids(path: Path, expected: int) -> np.ndarray:
    ids = read_npy(path, fix=_REPAIR)
    if ids.shape != (expected,):
        raise DataError(f"{path}: {ids.shape[0] if ids.ndim else 0} ids, the manifest says {expected}; {_REPAIR}")
    return ids.astype(object)


def _read_optional(path: Path) -> pd.DataFrame | None:
    return _read_parquet(path) if path.exists() else None


def _holds_sequences(values: pd.Series) -> bool:
    first = values.dropna().head(1)
    return bool(len(first)) and isinstance(first.iloc[0], (list, tuple, np.ndarray))


def _stringify_objects(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns become nullable strings so that parquet stores them with one type; list-valued
    columns (a record table's history or candidates) stay lists, which parquet stores natively."""
    objects = [c for c in frame.columns if frame[c].dtype == object and not _holds_sequences(frame[c])]
    if not objects:
        return frame
    frame = frame.copy()
    for col in objects:
        values = frame[col]
        missing = values.isna().to_numpy()
        text = values.astype(str).to_numpy(dtype=object)
        text[missing] = None
        frame[col] = text
    return frame
