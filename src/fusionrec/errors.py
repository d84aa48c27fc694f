"""User-facing errors.

A :class:`FusionrecError` is a problem with the user's input (a file, a setting, a name), not a bug.
The CLI prints its message as one line and exits non-zero; a bug still shows its traceback.
Messages name the file, the row or key, and the fix.
"""

from __future__ import annotations


class FusionrecError(Exception):
    """An input problem the user can fix; its message is the whole story."""


class DataError(FusionrecError, ValueError):
    """A data file or data set is missing, malformed or inconsistent."""


class ConfigError(FusionrecError, ValueError):
    """An unknown key, wrong type or unknown name in a configuration."""
