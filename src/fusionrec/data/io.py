"""Atomic file writes: write to a temporary file in the same folder, then rename over the target."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder; it replaces ``path`` as a whole only if the block succeeds.

    On any exception the temporary folder is removed, and so are parent folders this call created,
    so a failed write leaves nothing behind. If another process finished the same folder first
    (the rename finds it non-empty), that copy is kept and ours is discarded.
    """
    path = Path(path)
    created = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    ok = False
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700 folders
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.replace(tmp, path)
            except OSError:
                if not (path.is_dir() and any(path.iterdir())):
                    raise
        ok = True
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if not ok:
            for folder in created:  # innermost first
                try:
                    folder.rmdir()
                except OSError:
                    break


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | Path, obj: Any) -> None:
    write_bytes(path, (json.dumps(obj, indent=1, sort_keys=False, default=_json_default) + "\n").encode())


def write_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)


def write_parquet(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    with atomic_path(path) as tmp:
        writer(tmp)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


_NPY_MAGIC = b"\x93NUMPY"


def read_npy(path: str | Path, *, mmap: bool = False, fix: str = "write the file again") -> np.ndarray:
    """Load a ``.npy`` array (never pickles), turning every failure into one DataError line.

    ``fix`` finishes the message: what the user should do about a missing, truncated or foreign file.
    """
    from fusionrec.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; {fix}")
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path}: file is empty; {fix}")
    with open(path, "rb") as fh:
        head = fh.read(len(_NPY_MAGIC))
    if head != _NPY_MAGIC:
        hint = " (it looks like a .npz archive)" if head.startswith(b"PK") else ""
        raise DataError(f"{path}: not a .npy array file{hint}; save it with numpy.save, or {fix}")
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except ValueError as exc:
        text = str(exc)
        if "pickled" in text:
            reason = "it holds Python objects, not numbers"
        elif "mmap length" in text or "Failed to read all data" in text or "EOF" in text:
            reason = f"truncated: {size} bytes is shorter than its header says"
        else:
            reason = text.splitlines()[0] if text else exc.__class__.__name__
        raise DataError(f"{path}: unreadable .npy ({reason}); {fix}") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: unreadable .npy ({exc.__class__.__name__}: {exc}); {fix}") from None
    return array
