"""Name -> builder registries (``MODELS``, ``FUSIONS``, ``DATASETS``, ``TASKS``).

Each entry keeps the object, its config class (if any) and free-form metadata (task, paper, ...)
that ``fusionrec list`` shows. Unknown names fail with the valid choices listed.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fusionrec.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    config: type | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def config_class(self) -> type[Any]:
        """The entry's config class (models and tasks always have one)."""
        if self.config is None:
            raise ConfigError(f"{self.name!r} was registered without a config class")
        return self.config


class Registry(Generic[T]):
    """A named collection of builders, filled by the ``@register`` decorator."""

    def __init__(self, kind: str, required_meta: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.required_meta = required_meta
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, config: type | None = None, **meta: Any) -> Callable[[T], T]:
        missing = [key for key in self.required_meta if key not in meta]
        if missing:
            raise ValueError(f"{self.kind} {name!r} must be registered with {', '.join(missing)}=...")

        def decorate(obj: T) -> T:
            if name in self._entries and self._entries[name].obj is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, obj, config, dict(meta))
            return obj

        return decorate

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a plugin's test that registers a family for its own duration)."""
        self._entries.pop(name, None)

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}") from None

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(name)(*args, **kwargs)  # type: ignore[operator]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._entries)


MODELS: Registry[Any] = Registry("model", required_meta=("task",))  # a model names its task family once
FUSIONS: Registry[Any] = Registry("fusion")
DATASETS: Registry[Any] = Registry("dataset")
TASKS: Registry[Any] = Registry("task")
READERS: Registry[Any] = Registry("data format")


def task_of(model: str) -> Entry[Any]:
    """The task family a registered model names; an unregistered family fails with the choices."""
    entry = MODELS.entry(model)
    family = entry.meta["task"]
    if family not in TASKS:
        raise ConfigError(
            f"model {model!r} names task {family!r}, which is not registered; "
            f"registered tasks: {', '.join(TASKS.names()) or 'none'}"
        )
    return TASKS.entry(family)


def import_subpackages(package: str, paths: Iterable[str]) -> list[str]:
    """Import every subpackage of ``package`` (its families, which register themselves), so a new
    family is a new folder and nothing else; returns their names."""
    names = sorted(info.name for info in pkgutil.iter_modules(list(paths)) if info.ispkg)
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
