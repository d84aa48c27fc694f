"""Where fusionrec keeps its caches (``$FUSIONREC_HOME``, default ``~/.cache/fusionrec``) and
where it finds the read-only ``shared`` data of this project's machines (``$FUSIONREC_SHARED``).

The shared folder is the first of: ``$FUSIONREC_SHARED``, a ``shared`` folder beside the
repository checkout (``<repo>/../shared``), and ``../shared`` relative to the current directory.
A path setting written ``shared:<relative path>`` (e.g. ``data.split.path=shared:fixtures/ml100k-peer-split``)
is resolved in it by :func:`resolve_shared`.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_PREFIX = "shared:"


def home() -> Path:
    return Path(os.environ.get("FUSIONREC_HOME", Path.home() / ".cache" / "fusionrec")).expanduser()


def shared_candidates() -> list[Path]:
    """Where the shared folder is looked for, in order."""
    env = os.environ.get("FUSIONREC_SHARED")
    candidates = [Path(env).expanduser()] if env else []
    here = Path(__file__).resolve()
    candidates += [parent.parent / "shared" for parent in here.parents[:6]]
    candidates.append(Path.cwd().parent / "shared")
    return list(dict.fromkeys(candidates))


def shared_dir(require: str = "data") -> Path | None:
    """The shared folder if present (the first candidate holding ``require``), else None."""
    return next((c for c in shared_candidates() if (c / require).exists()), None)


def shared_path(relative: str) -> Path:
    """``relative`` inside the shared folder; where no shared folder holds it, the path it would have
    under the first candidate (so that reading it fails naming that path). Never raises."""
    found = shared_dir(relative)
    return (found or shared_dir() or shared_candidates()[0]) / relative


def resolve_shared(value: str | Path, setting: str = "path") -> Path:
    """A path setting: ``shared:<relative>`` is resolved in the shared folder, anything else is a plain path.

    A missing shared folder (or one without ``<relative>``) is one DataError line naming ``setting``.
    """
    text = str(value)
    if not text.startswith(SHARED_PREFIX):
        return Path(text).expanduser()
    relative = text[len(SHARED_PREFIX) :].lstrip("/")
    found = shared_dir(relative)
    if found is not None:
        return found / relative
    from fusionrec.errors import DataError

    base = shared_dir()
    if base is not None:
        raise DataError(
            f"{setting}={text}: the shared folder {base} has no {relative}; check the name, or set "
            "FUSIONREC_SHARED to a shared folder that has it"
        )
    looked = ", ".join(str(c) for c in shared_candidates())
    raise DataError(
        f"{setting}={text}: the shared folder was not found (looked in {looked}); set "
        "FUSIONREC_SHARED=/path/to/shared, or give the full path instead of shared:"
    )


def require_shared(folder: str, what: str) -> Path:
    """``<shared>/data/<folder>``, or one DataError line saying what the data is, where it comes
    from and which layout the folder needs (``what``)."""
    shared = shared_dir(f"data/{folder}")
    if shared is not None:
        return shared / "data" / folder
    from fusionrec.errors import DataError

    base = shared_dir()
    where = (
        f"the shared folder {base} has no data/{folder}"
        if base is not None
        else f"no shared folder found (looked in {', '.join(str(c) for c in shared_candidates())})"
    )
    raise DataError(
        f"{where}; {what}; then set FUSIONREC_SHARED=/path/to/shared (or put it at ../shared beside the repository)"
    )
