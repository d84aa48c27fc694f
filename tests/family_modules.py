"""The tiny per-family test modules (``tests/models/families/<family>.py``: data, task and model settings),
loaded once per process by name. Importable from any test: pytest puts ``tests/`` on the path when it
loads ``tests/conftest.py``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

FAMILIES = Path(__file__).parent / "models" / "families"


def family(name: str) -> ModuleType:
    """``tests/models/families/<name>.py`` as a module (one instance per process)."""
    key = f"{name}_family"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, FAMILIES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]
