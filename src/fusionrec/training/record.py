"""Run directories and ``record.json``: everything needed to trust and reproduce a result."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.data.io import write_json, write_with
from fusionrec.errors import FusionrecError

RECORD = "record.json"
BEST = "best.pt"
LAST = "last.pt"
PER_USER_TEST = "test_per_user.npz"


def default_run_dir(model: str, data: str, root: str | Path = "runs") -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe_data = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(data).name)
    base = Path(root) / f"{stamp}-{model}-{safe_data}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for pkg in ("fusionrec", "torch", "numpy", "scipy", "pandas", "pydantic"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "versions": {"python": sys.version.split()[0], **versions},
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "hostname": platform.node(),
        },
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_record(run_dir: Path, record: dict[str, Any]) -> None:
    write_json(run_dir / RECORD, record)


def save_per_user(path: Path, result: Any) -> None:
    """Per-user test metrics of an ``EvalResult`` (``users`` plus one array per metric), for paired
    significance tests between runs on the same split."""
    arrays = {"users": np.asarray(result.users), **{k: np.asarray(v) for k, v in result.per_user.items()}}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a bare temp name
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy stubs misread **kwargs

    write_with(path, write)


def load_per_user(run_dir: str | Path) -> dict[str, np.ndarray]:
    """The arrays :func:`save_per_user` wrote for a run (``users`` and e.g. ``ndcg@20``)."""
    path = Path(run_dir) / PER_USER_TEST
    if not path.exists():
        raise FusionrecError(
            f"{run_dir}: no {PER_USER_TEST} (the run has no test evaluation, or predates per-user records)"
        )
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def load_checkpoint(path: Path, weights_only: bool = True) -> dict[str, Any]:
    """A checkpoint written by ``fit``; a truncated or damaged file is one line naming it and what to do."""
    import torch

    if not path.exists():
        raise FusionrecError(f"{path}: no such checkpoint (the run never finished an evaluation)")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for damaged files
        fix = {
            BEST: f"`fusionrec train --resume {path.parent}` rewrites it at the next better epoch (if "
            f"{LAST} is intact); otherwise train the run again",
            LAST: f"the run cannot resume; `fusionrec evaluate {path.parent}` still reads {BEST}; train again to "
            "continue",
        }.get(path.name, "write it again")
        raise FusionrecError(
            f"{path}: damaged checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); {fix}"
        ) from None


def read_record(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / RECORD
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FusionrecError(
            f"{run_dir}: not a run directory (no {RECORD}); pass a folder made by `fusionrec train`"
        ) from None
    except json.JSONDecodeError as exc:
        raise FusionrecError(f"{path}: damaged record ({exc.msg} at line {exc.lineno})") from None
