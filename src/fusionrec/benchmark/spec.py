"""The benchmark spec: models x data sets x seeds, optional validation-only searches, expected results.

A spec is YAML validated by strict pydantic classes (unknown keys are errors naming the valid keys).
Every cell's run configuration is resolved when the spec is loaded, so a bad model name, config key
or search-space key fails in one line before anything trains.

Precedence for one cell, lowest first: the model's ``config`` (shipped name, YAML path relative to
the spec, or an inline mapping) < the spec's ``overrides`` < the data set (``name`` and its
``overrides``) < the model's ``overrides`` < the searched parameters < ``train.seed`` = the seed.
The seed sets ``train.seed`` only: every seed of a data set sees the same split, so per-user
results of two models on one seed can be paired.
"""

from __future__ import annotations

import itertools
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from fusionrec.config import StrictConfig, deep_merge, load_yaml, parse_overrides, read_yaml_mapping
from fusionrec.errors import ConfigError, FusionrecError

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _metric_form(value: str) -> str:
    """The form only (``ndcg@20``, ``mrr``, ``auc``); whether a run computes it is asked of its task
    when the cells are resolved (:func:`check_cells`)."""
    name, at, k = value.partition("@")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or (at and not k.isdigit()):
        raise ValueError(f"metric must look like ndcg@20 or auc (a metric name, optionally @cut-off), got {value!r}")
    return value


def _overrides_form(value: list[str]) -> list[str]:
    parse_overrides(value)  # raises ConfigError naming a pair that is not key=value
    return value


# ----------------------------------------------------------------------------------------- search space
class FloatParam(StrictConfig):
    """A float in ``[low, high]``, sampled uniformly or (``log: true``) log-uniformly."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> FloatParam:
        _check_bounds(self.low, self.high, self.log)
        if self.log and self.step is not None:
            raise ValueError("step cannot be combined with log: true")
        return self


class IntParam(StrictConfig):
    """An integer in ``[low, high]`` (both included)."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(1, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> IntParam:
        _check_bounds(self.low, self.high, self.log)
        if self.log and self.step != 1:
            raise ValueError("step cannot be combined with log: true")
        return self


class CategoricalParam(StrictConfig):
    """One of ``choices`` (scalars: strings, numbers, booleans or null)."""

    type: Literal["categorical"]
    choices: list[str | bool | int | float | None] = Field(min_length=1)


def _check_bounds(low: float, high: float, log: bool) -> None:
    if not low < high:
        raise ValueError(f"low must be below high (got low={low}, high={high})")
    if log and low <= 0:
        raise ValueError(f"log: true needs low > 0 (got low={low})")


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class SearchSpec(StrictConfig):
    """An Optuna search over dotted config keys, chosen on a validation metric only.

    Each trial trains once (seed ``train_seed``, default the spec's first seed) with ``overrides``
    added (e.g. fewer epochs), and is scored by ``metrics.valid[metric]`` of its record: the
    validation value at the epoch early stopping chose. Trials train with ``test=False``: the test
    split is never evaluated during a search.
    """

    space: dict[str, Param] = Field(min_length=1)
    trials: int = Field(gt=0)
    seed: int = 0
    sampler: Literal["tpe", "random", "grid"] = Field(
        "tpe", description="grid: every combination of categorical choices once, in order (trials <= combinations)"
    )
    metric: str = "ndcg@20"
    overrides: list[str] = []
    train_seed: int | None = None

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        return _metric_form(value)

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, value: list[str]) -> list[str]:
        return _overrides_form(value)

    @field_validator("space")
    @classmethod
    def _dotted_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key.split(".")[0] not in ("model", "train", "data") or "" in key.split("."):
                raise ValueError(
                    f"space key {key!r} must be a dotted config key under model., train. or data. "
                    "(e.g. train.lr, model.num_layers)"
                )
        return value

    @model_validator(mode="after")
    def _grid_is_categorical(self) -> SearchSpec:
        if self.sampler == "grid":
            others = [k for k, p in self.space.items() if not isinstance(p, CategoricalParam)]
            if others:
                raise ValueError(
                    f"sampler grid needs categorical parameters only; not categorical: {', '.join(others)}"
                )
            if self.trials > len(self.grid()):
                raise ValueError(f"trials={self.trials} exceeds the {len(self.grid())} grid combinations")
        return self

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the categorical choices, the first key varying slowest."""
        keys = list(self.space)
        # all parameters are categorical for the grid sampler (checked by _grid_is_categorical)
        choices = (cast(CategoricalParam, self.space[k]).choices for k in keys)
        return [dict(zip(keys, combo)) for combo in itertools.product(*choices)]


class ModelSpec(StrictConfig):
    """One compared model: a base ``config`` (shipped name like ``ml100k/lightgcn``, a YAML path
    relative to the spec, or an inline mapping), a registered ``model`` name (needed when the config
    names none), dotted ``overrides`` and an optional ``search``."""

    config: str | dict[str, Any] | None = None
    model: str | None = None
    overrides: list[str] = []
    search: SearchSpec | None = None

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, value: list[str]) -> list[str]:
        return _overrides_form(value)


class DataSpec(StrictConfig):
    """One data set: ``name`` (built-in or path, as ``data.name``) and dotted ``data.*`` overrides."""

    name: str
    overrides: list[str] = []

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, value: list[str]) -> list[str]:
        return _overrides_form(value)


class Expectation(StrictConfig):
    """The recorded mean of one (data set, model, metric) over ``expected.n`` seeds, with its spread:
    ``std`` (sample standard deviation over those seeds) or ``se`` (standard error of the mean)."""

    mean: float
    std: float | None = Field(None, ge=0)
    se: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_spread(self) -> Expectation:
        if (self.std is None) == (self.se is None):
            raise ValueError(
                "give exactly one of std (over the recorded seeds) or se (of the recorded mean), "
                "e.g. {mean: 0.3869, std: 0.0006}"
            )
        return self

    def standard_error(self, n: int) -> float:
        """The standard error of the recorded mean: ``se``, or ``std / sqrt(n)``."""
        # exactly one of std and se is set (_one_spread)
        return float(self.se) if self.se is not None else float(cast(float, self.std)) / n**0.5

    def seed_std(self, n: int) -> float:
        """The recorded spread of one seed: ``std``, or ``se * sqrt(n)``."""
        return float(self.std) if self.std is not None else float(cast(float, self.se)) * n**0.5


ORDERING_OPS = (">", "<")
EVERY_SEED = "every_seed"


class Ordering:
    """A claimed ordering of two models on one data set and metric, parsed from ``[a, ">", b]`` or
    ``[a, ">", b, every_seed]`` (the latter also on every seed, paired by seed)."""

    def __init__(self, better: str, op: str, worse: str, every_seed: bool = False) -> None:
        self.left, self.op, self.right, self.every_seed = better, op, worse, every_seed

    @classmethod
    def parse(cls, value: Any) -> Ordering:
        if isinstance(value, Ordering):
            return value
        if (
            not isinstance(value, (list, tuple))
            or len(value) not in (3, 4)
            or not all(isinstance(v, str) for v in value)
        ):
            raise ValueError(f'an ordering is [model, ">", model] or [model, ">", model, {EVERY_SEED}] (got {value!r})')
        left, op, right, *flag = value
        if op not in ORDERING_OPS:
            raise ValueError(f"ordering {list(value)!r}: the operator must be one of: {', '.join(ORDERING_OPS)}")
        if flag and flag[0] != EVERY_SEED:
            raise ValueError(f"ordering {list(value)!r}: the fourth element can only be {EVERY_SEED}")
        if left == right:
            raise ValueError(f"ordering {list(value)!r} compares a model with itself")
        return cls(left, op, right, bool(flag))

    @property
    def claim(self) -> str:
        return f"{self.left} {self.op} {self.right}" + (" on every seed" if self.every_seed else "")

    def as_list(self) -> list[str]:
        return [self.left, self.op, self.right, *([EVERY_SEED] if self.every_seed else [])]

    def __repr__(self) -> str:
        return f"Ordering({self.as_list()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ordering) and self.as_list() == other.as_list()


OrderingItem = Annotated[Any, BeforeValidator(Ordering.parse), PlainSerializer(lambda o: o.as_list(), return_type=list)]


class ExpectedSpec(StrictConfig):
    """Expected test results for ``--check``, compared on means over seeds (docs/benchmark.md).

    ``results[data][model][metric] = {mean, std}`` (or ``{mean, se}``): the mean over the ``n`` seeds
    the numbers were recorded with (default: as many as the spec's seeds). A measured mean over the
    spec's seeds passes when ``|mean - expected| <= max(floor, z * sqrt(se_run^2 + se_expected^2))``.
    ``orderings[data][metric]`` lists claimed orderings (``[a, ">", b]``, optionally ``every_seed``)
    checked on the measured means. ``provenance`` says where the numbers come from.
    """

    provenance: str = Field(min_length=1)
    n: int | None = Field(None, ge=1, description="seeds behind the recorded means (default: len(seeds))")
    z: float = Field(3.0, gt=0)
    floor: float = Field(0.001, ge=0)
    results: dict[str, dict[str, dict[str, Expectation]]] = {}
    orderings: dict[str, dict[str, list[OrderingItem]]] = {}

    @model_validator(mode="before")
    @classmethod
    def _old_format(cls, data: Any) -> Any:
        if isinstance(data, dict):
            old = "per" in data or any(
                isinstance(e, dict) and ("value" in e or "tolerance" in e)
                for by_model in (data.get("results") or {}).values()
                if isinstance(by_model, dict)
                for by_metric in by_model.values()
                if isinstance(by_metric, dict)
                for e in by_metric.values()
            )
            if old:
                raise ValueError(
                    "the expected section uses the old per-seed format (per, value, tolerance); "
                    "--check now compares means: write results.DATA.MODEL.METRIC: {mean: M, std: S} "
                    "with n: SEEDS, and claimed orderings under orderings (docs/benchmark.md)"
                )
        return data

    @model_validator(mode="after")
    def _something(self) -> ExpectedSpec:
        if not self.results and not self.orderings:
            raise ValueError("expected needs results or orderings (or both)")
        return self


class BenchmarkSpec(StrictConfig):
    """Models x data sets x seeds, the reference model for significance, expected results."""

    name: str
    description: str = ""
    seeds: list[int] = Field(min_length=1)
    datasets: dict[str, DataSpec] = Field(min_length=1)
    models: dict[str, ModelSpec] = Field(min_length=1)
    overrides: list[str] = []
    reference: str | None = None
    metric: str = "ndcg@20"
    metrics: list[str] = ["recall@20", "ndcg@20"]
    alpha: float = Field(0.05, gt=0, lt=1)
    expected: ExpectedSpec | None = None

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        return _metric_form(value)

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: list[str]) -> list[str]:
        return [_metric_form(m) for m in value]

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, value: list[str]) -> list[str]:
        return _overrides_form(value)

    @model_validator(mode="after")
    def _consistent(self) -> BenchmarkSpec:
        for key in (self.name, *self.datasets, *self.models):
            if not _LABEL.match(key):
                raise ValueError(f"name {key!r} is used as a folder name: letters, digits, '-', '_' and '.' only")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct (got {self.seeds})")
        if self.reference is not None and self.reference not in self.models:
            raise ValueError(
                f"reference {self.reference!r} is not a model of this spec; choose one of: {', '.join(self.models)}"
            )
        if self.expected is not None:
            for data, by_model in self.expected.results.items():
                if data not in self.datasets:
                    raise ValueError(
                        f"expected.results.{data}: unknown data set; choose one of: {', '.join(self.datasets)}"
                    )
                for model, by_metric in by_model.items():
                    if model not in self.models:
                        raise ValueError(
                            f"expected.results.{data}.{model}: unknown model; choose one of: {', '.join(self.models)}"
                        )
                    for metric in by_metric:
                        _metric_form(metric)
            for data, claims_by_metric in self.expected.orderings.items():
                if data not in self.datasets:
                    raise ValueError(
                        f"expected.orderings.{data}: unknown data set; choose one of: {', '.join(self.datasets)}"
                    )
                for metric, claims in claims_by_metric.items():
                    _metric_form(metric)
                    for claim in claims:
                        for model in (claim.left, claim.right):
                            if model not in self.models:
                                raise ValueError(
                                    f"expected.orderings.{data}.{metric}: {claim.as_list()!r} names "
                                    f"unknown model {model!r}; choose one of: {', '.join(self.models)}"
                                )
        return self

    def expected_metrics(self, data: str, model: str) -> set[str]:
        """The metrics ``expected`` reads from one (data set, model) cell."""
        if self.expected is None:
            return set()
        wanted = set(self.expected.results.get(data, {}).get(model, {}))
        for metric, claims in self.expected.orderings.get(data, {}).items():
            if any(model in (c.left, c.right) for c in claims):
                wanted.add(metric)
        return wanted


# ----------------------------------------------------------------------------------------- cells
class Cell:
    """One (data set, model) pair of a spec, with its configuration tree before seed and search params."""

    def __init__(self, data: str, model: str, tree: dict[str, Any]) -> None:
        self.data, self.model, self.tree = data, model, tree

    def config(self, seed: int, params: dict[str, Any] | None = None, extra: list[str] | None = None) -> dict[str, Any]:
        """The full configuration tree of one run: ``extra`` overrides (trials), ``params``, then the seed."""
        tree = deep_merge(self.tree, parse_overrides(extra or []))
        tree = deep_merge(tree, nest(params or {}))
        return deep_merge(tree, {"train": {"seed": seed}})


def nest(dotted: dict[str, Any]) -> dict[str, Any]:
    """``{"train.lr": 0.01}`` -> ``{"train": {"lr": 0.01}}`` (values kept as they are, not re-parsed)."""
    tree: dict[str, Any] = {}
    for key, value in dotted.items():
        tree = deep_merge(tree, _nest_one(key.split("."), value))
    return tree


def _nest_one(parts: list[str], value: Any) -> dict[str, Any]:
    return {parts[0]: value if len(parts) == 1 else _nest_one(parts[1:], value)}


def cells(spec: BenchmarkSpec, base_dir: Path | None = None) -> list[Cell]:
    """Every (data set, model) pair, data sets outermost, in spec order."""
    out = []
    for data_key, data in spec.datasets.items():
        for model_key, model in spec.models.items():
            tree = _base_tree(model, model_key, base_dir)
            tree = deep_merge(tree, parse_overrides(spec.overrides))
            tree = deep_merge(tree, {"data": {"name": data.name}})
            tree = deep_merge(tree, parse_overrides(data.overrides))
            tree = deep_merge(tree, parse_overrides(model.overrides))
            out.append(Cell(data_key, model_key, tree))
    return out


def _base_tree(model: ModelSpec, key: str, base_dir: Path | None) -> dict[str, Any]:
    if isinstance(model.config, dict):
        tree = dict(model.config)
    elif isinstance(model.config, str):
        path = Path(model.config)
        if base_dir is not None and not path.is_absolute() and (base_dir / path).exists():
            path = base_dir / path
        try:
            tree = load_yaml(path)
        except ConfigError as exc:
            raise ConfigError(f"models.{key}.config: {exc}") from None
    else:
        tree = {}
    if model.model is not None:
        tree = deep_merge(tree, {"model": {"name": model.model}})
    return tree


# ----------------------------------------------------------------------------------------- loading
def load_spec(spec: str | Path | dict[str, Any] | BenchmarkSpec) -> tuple[BenchmarkSpec, Path | None]:
    """Read and validate a spec (YAML path, mapping or instance); return it and the folder relative
    config paths are read from. Every cell's configuration is resolved here, so errors come first."""
    where, base_dir = "spec", None
    if isinstance(spec, BenchmarkSpec):
        parsed = spec
    else:
        if isinstance(spec, (str, Path)):
            path = Path(spec)
            where, base_dir = str(path), path.parent
            data = read_yaml_mapping(path, "benchmark spec not found", "name, seeds, datasets, models, ...")
        else:
            data = spec
        try:
            parsed = BenchmarkSpec.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{where}: {_format(exc)}") from None
        except ConfigError as exc:  # raised inside a validator (an override that is not key=value)
            raise ConfigError(f"{where}: {exc}") from None
    try:
        check_cells(parsed, base_dir)
    except FusionrecError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    return parsed, base_dir


def check_cells(spec: BenchmarkSpec, base_dir: Path | None = None) -> None:
    """Resolve every cell (and every search-space key at its bounds) with the library's own config
    classes; the first problem becomes one ConfigError naming the model and the key."""
    from fusionrec.api import reported_metrics, resolve_config

    for cell in cells(spec, base_dir):
        model = spec.models[cell.model]
        where = f"models.{cell.model} on datasets.{cell.data}"
        if not isinstance(cell.tree.get("model"), dict) or "name" not in cell.tree["model"]:
            from fusionrec.registry import MODELS

            raise ConfigError(
                f"models.{cell.model}: no model named; set model: NAME or a config that has "
                f"model.name (one of: {', '.join(MODELS.names())})"
            )
        try:
            run_config, _ = resolve_config(config=cell.config(spec.seeds[0]))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {_strip(exc)}") from None
        available = reported_metrics(run_config)
        wanted = {
            spec.metric,
            *spec.metrics,
            *(model.search.metric for model in [model] if model.search),
            *spec.expected_metrics(cell.data, cell.model),
        }
        missing = sorted(wanted - set(available))
        if missing:
            raise ConfigError(
                f"{where}: metric(s) {', '.join(missing)} are not computed by the run "
                f"(it reports: {', '.join(available)})"
            )
        if model.search is None:
            continue
        for key, param in model.search.space.items():
            for value in _corners(param):
                try:
                    resolve_config(config=cell.config(spec.seeds[0], {key: value}, model.search.overrides))
                except ConfigError as exc:
                    raise ConfigError(
                        f"models.{cell.model}.search.space.{key} (value {value!r}): {_strip(exc)}"
                    ) from None


def _corners(param: Any) -> list[Any]:
    if isinstance(param, CategoricalParam):
        return list(param.choices)
    return [param.low, param.high]


def _strip(exc: Exception) -> str:
    text = str(exc)
    return text[len("config: ") :] if text.startswith("config: ") else text


# ----------------------------------------------------------------------------------------- messages
def _format(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        shown = ".".join(str(p) for p in _shown(loc))
        if err["type"] == "extra_forbidden":
            valid = _valid_keys(loc[:-1])
            problems.append(f"unknown key {shown!r}; valid keys: {', '.join(valid)}")
        elif err["type"] == "missing":
            problems.append(f"missing key {shown!r}")
        elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            problems.append(f"{shown}: type must be one of: float, int, categorical (got {_tag(err.get('input'))!r})")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = "" if err["type"] == "value_error" else f" (got {err.get('input')!r})"
            problems.append(f"{shown}: {msg}{got}" if shown else f"{msg}{got}")
    return "; ".join(problems)


def _tag(value: Any) -> Any:
    return value.get("type") if isinstance(value, dict) else value


def _valid_keys(path: tuple[Any, ...]) -> list[str]:
    """The field names at ``path`` in the spec classes, through dicts, lists and tagged unions."""
    node: Any = BenchmarkSpec
    for part in path:
        node = _step(node, part)
        if node is None:
            return []
    return list(getattr(node, "model_fields", {}))


def _shown(loc: tuple[Any, ...]) -> list[Any]:
    """The location as a user wrote it: the tags pydantic adds for tagged-union members are dropped."""
    node: Any = BenchmarkSpec
    shown = []
    for part in loc:
        is_tag = node is not None and typing.get_origin(_unwrap(node)) is Union and _step(node, part) is not None
        node = _step(node, part) if node is not None else None
        if not is_tag:
            shown.append(part)
    return shown


def _step(node: Any, part: Any) -> Any:
    node = _unwrap(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        field = node.model_fields.get(str(part))
        return None if field is None else _unwrap(field.annotation)
    origin, args = typing.get_origin(node), typing.get_args(node)
    if origin is dict:
        return _unwrap(args[1])
    if origin is list:
        return _unwrap(args[0])
    if origin is Union:  # a tagged union member, named by its tag
        for arg in args:
            tag = getattr(arg, "model_fields", {}).get("type")
            if tag is not None and part in typing.get_args(tag.annotation):
                return arg
    return None


def _unwrap(node: Any) -> Any:
    """Strip ``Annotated`` and ``| None``; a union of one model class becomes that class."""
    while typing.get_origin(node) is Annotated:
        node = typing.get_args(node)[0]
    if typing.get_origin(node) in (Union, types.UnionType):
        args = [a for a in typing.get_args(node) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
        return Union[tuple(args)]  # type: ignore[return-value]  # noqa: UP007  # built at run time
    return node
