"""Where fusionrec keeps its caches (``$FUSIONREC_HOME``, default ``~/.cache/fusionrec``) and
where it finds the read-only ``shared`` data of this project's machines (``$FUSIONREC_SHARED``)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("FUSIONREC_HOME", Path.home() / ".cache" / "fusionrec")).expanduser()


def shared_dir() -> Path | None:
    """The shared data folder if present: $FUSIONREC_SHARED, else ../shared beside the repository."""
    env = os.environ.get("FUSIONREC_SHARED")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [parent.parent / "shared" for parent in here.parents[:6]]
    candidates.append(Path.cwd().parent / "shared")
    return next((c for c in candidates if (c / "data").is_dir()), None)
