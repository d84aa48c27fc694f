"""Strict typed configuration.

Config classes are pydantic models with ``extra="forbid"``: a misspelt key is an error listing the
valid keys, never a silently ignored setting. Precedence: class defaults < YAML file < dotted
``key=value`` overrides from the command line (values parsed as YAML scalars).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from fusionrec.errors import ConfigError

C = TypeVar("C", bound=BaseModel)


class StrictConfig(BaseModel):
    """Base of every config: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """Turn ``["train.lr=1e-3", "model.fusion=gated"]`` into a nested dict."""
    tree: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override {pair!r} is not key=value (e.g. train.lr=1e-3)")
        key, raw = pair.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else ""
        node = tree
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {pair!r} conflicts with an earlier value for {part!r}")
        node[parts[-1]] = value
    return tree


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


SHIPPED = Path(__file__).parent / "configs"


def shipped_configs() -> list[str]:
    """Names of the configs shipped with fusionrec (``ml100k/lightgcn``, ...), usable as ``-c NAME``."""
    return sorted(str(p.relative_to(SHIPPED).with_suffix("")) for p in SHIPPED.rglob("*.yaml"))


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file; a name like ``ml100k/lightgcn`` that is not a file means a shipped config."""
    path = Path(path)
    if not path.exists() and (SHIPPED / path).with_suffix(".yaml").exists():
        path = (SHIPPED / path).with_suffix(".yaml")
    return read_yaml_mapping(path, f"config file not found (shipped configs: {', '.join(shipped_configs())})")


def read_yaml_mapping(path: Path, missing: str, expected: str = "keys to values") -> dict[str, Any]:
    """A YAML file whose top level is a mapping; every failure is one ConfigError naming ``path``
    (``missing`` says what to do when the file is absent, ``expected`` what the mapping holds)."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: {missing}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of {expected}")
    return data


def validate(cls: type[C], data: dict[str, Any], where: str = "config", section: str | None = None) -> C:
    """Build ``cls`` from ``data``; on failure raise one readable ConfigError.

    ``section`` prefixes key paths in the message (``model`` -> ``model.num_layers``).
    """
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {format_validation_error(cls, exc, section)}") from None


def format_validation_error(cls: type[BaseModel], exc: ValidationError, section: str | None = None) -> str:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in ((section,) if section else ()) + tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            valid = _valid_keys(cls, err["loc"][:-1])
            problems.append(f"unknown key {loc!r}; valid keys: {', '.join(valid)}")
        else:
            problems.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(problems)


def _valid_keys(cls: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    model: Any = cls
    for part in path:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
    return sorted(getattr(model, "model_fields", {}))
