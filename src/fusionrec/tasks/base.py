"""The task family as an extension point: what a family (top-K, sequential, CTR, ...) must provide.

A family is two folders: ``tasks/<family>/`` (this interface, its samplers, its evaluator, its
explanations) and ``models/<family>/`` (its models; each names the family once, in
``@MODELS.register(name, task="<family>")``). Everything above the tasks (``training.fit``, ``api``,
the CLI, benchmarks) talks to a family only through :class:`Task`, so adding one touches nothing else.

A task owns:

- its run-config section (``task:`` in a run YAML, ``task.KEY=VALUE`` on the command line): a
  :class:`TaskConfig` subclass, registered with the task (``@TASKS.register(name, config=...)``);
- what it needs from the canonical data folder (:class:`DataNeeds`) and the check that the data
  set has it, failing with one line that names what is missing;
- its training batches per epoch and its evaluation protocol (one line, recorded with every run),
  its metrics and whether a larger selection metric is better;
- scoring for ``recommend`` (and serving) and turning its models' attention into an
  :class:`Explanation`.

See ``docs/extending.md`` for a toy family built against this interface.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from fusionrec.config import StrictConfig
from fusionrec.errors import DataError, FusionrecError
from fusionrec.metrics.full_ranking import EvalResult
from fusionrec.models.base import Recommender


class TaskConfig(StrictConfig):
    """Base of a family's ``task:`` section. ``moved_from_train`` lists keys that used to live under
    ``train:``; such an old key fails with one line naming its new place."""

    moved_from_train: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True)
class DataNeeds:
    """What a family reads from the canonical data folder (``docs/data.md``).

    ``splits``: splits that must hold interactions; ``interaction_columns``: columns the
    interactions table must have beyond user and item (e.g. ``timestamp``, ``label``);
    ``item_columns``: columns of ``items`` it reads, when present (informational)."""

    splits: tuple[str, ...] = ("train", "valid", "test")
    interaction_columns: tuple[str, ...] = ()
    item_columns: tuple[str, ...] = ()

    def check(self, dataset: Any, family: str) -> None:
        """Raise one ``DataError`` line naming the first thing ``dataset`` lacks for ``family``."""
        sizes = dataset.split_sizes()
        for split in self.splits:
            if not sizes.get(split):
                raise DataError(
                    f"{dataset.name}: the {split} split is empty, and the {family} task trains on train, "
                    "selects on valid and reports test; change data.split (method or ratios)"
                )
        columns = set(dataset.interactions.columns)
        for column in self.interaction_columns:
            if column not in columns:
                raise DataError(
                    f"{dataset.name}: the {family} task needs an interaction column {column!r} "
                    f"(have: {', '.join(sorted(columns))})"
                )


@dataclass
class WeightGrid:
    """Weights of several rows over the same columns, e.g. the modality weights (columns) behind each
    of a user's recommendations (rows)."""

    rows: list[str]
    columns: list[str]
    values: list[list[float]]


@dataclass
class Explanation:
    """Why a model scored what it scored, in a form the CLI, the API and serving share.

    ``weights``: named tables of labelled weights (e.g. ``{"modality": {"text": 0.7, "image": 0.3}}``
    or ``{"attention of the predicted slot": {"Toy Story (1995)": 0.4, ...}}``), best first;
    ``grids``: named :class:`WeightGrid` tables; ``vectors``: unlabelled weight vectors;
    ``images``: PNG files written (heat maps);
    ``details``: family-specific JSON-able extras (e.g. a full attention matrix)."""

    subject: str
    score: float | None = None
    weights: dict[str, dict[str, float]] = field(default_factory=dict)
    grids: dict[str, WeightGrid] = field(default_factory=dict)
    vectors: dict[str, list[float]] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "score": self.score,
            "weights": self.weights,
            "grids": {name: vars(grid) for name, grid in self.grids.items()},
            "vectors": self.vectors,
            "images": self.images,
            "details": self.details,
        }


@dataclass(frozen=True)
class Recommendation:
    """One recommended item (internal index) with its score and, when asked, the strongest reason."""

    item: int
    score: float
    reason: tuple[str, float] | None = None


Answer = Callable[..., "list[Recommendation]"]
"""``answer(user, k, include_seen=False, with_reasons=False) -> [Recommendation]`` (see :meth:`Task.recommender`)."""


class Task(abc.ABC):
    """One family of recommendation problems: loaders, protocol, scoring and explanations.

    Subclasses are registered with ``@TASKS.register(name, config=TheirTaskConfig, description=...)``
    and built by :meth:`build` from the typed sections of a run config.
    """

    name: ClassVar[str]
    needs: ClassVar[DataNeeds] = DataNeeds()
    default_batch_size: ClassVar[int]
    default_metric: ClassVar[str]
    # Whether ``evaluate`` takes ``shard=(rank, world_size)`` and returns one data-parallel rank's part,
    # which :func:`~fusionrec.metrics.full_ranking.merge_results` joins into the whole evaluation.
    shards_evaluation: ClassVar[bool] = False

    protocol: str  # one line: candidates, masking, ties (recorded with every run)
    batch_size: int  # training rows per batch (recorded with every run)
    metric: str  # the validation metric that selects the epoch

    # ------------------------------------------------------------------ building
    @classmethod
    @abc.abstractmethod
    def build(cls, config: Any, train: Any, dataset: Any, model_config: Any) -> Task:
        """The task for one run from its ``task:`` section (an instance of the registered config),
        the ``train:`` section (batch size, seed, selection metric) and the model's config."""

    @classmethod
    def check_data(cls, dataset: Any) -> None:
        """Refuse, with one line, a data set this family cannot train and evaluate on."""
        cls.needs.check(dataset, cls.name)

    @classmethod
    def check_metric(cls, config: Any, metric: str) -> None:
        """Refuse, with one line naming the choices, a selection metric this task does not compute."""

    @classmethod
    @abc.abstractmethod
    def reported_metrics(cls, config: Any, metric: str) -> list[str]:
        """The names of the metrics a run with this ``task:`` section and selection ``metric`` reports."""

    def higher_is_better(self, metric: str) -> bool:
        """Whether a larger value of ``metric`` is better (selection and early stopping)."""
        return True

    # ------------------------------------------------------------------ training and evaluation
    @property
    @abc.abstractmethod
    def num_batches(self) -> int:
        """Training batches per epoch."""

    @abc.abstractmethod
    def train_batches(self, epoch: int) -> Iterator[Any]:
        """The typed batches of one epoch (a function of the seed and ``epoch`` only)."""

    @abc.abstractmethod
    def evaluate(self, model: Recommender, split: str = "valid", device: str | torch.device = "cpu") -> EvalResult:
        """The protocol on ``split`` (``valid`` or ``test``)."""

    # ------------------------------------------------------------------ using a trained model
    def resolve_user(self, dataset: Any, raw: str) -> int | None:
        """The index :meth:`recommend` and :meth:`explain` take for the raw id ``raw`` when the family's
        queries are not users (the kg task: ``"ENTITY RELATION"``); None: look ``raw`` up among the users."""
        return None

    @abc.abstractmethod
    def recommend(
        self, model: Recommender, user: int, k: int, include_seen: bool = False, with_reasons: bool = False
    ) -> list[Recommendation]:
        """The ``k`` best items for user index ``user``; with ``with_reasons`` each carries the model's
        strongest attention signal behind it where the model has one."""

    def recommender(self, model: Recommender) -> Answer:
        """``recommend`` for a model that no longer changes, with what can be computed once (propagated
        graph embeddings, the interacted-items matrix) computed now: serving holds one per loaded run.
        Families with such state override this and let ``recommend`` call it."""

        def answer(user: int, k: int, include_seen: bool = False, with_reasons: bool = False) -> list[Recommendation]:
            return self.recommend(model, user, k, include_seen, with_reasons)

        return answer

    def recommend_from_history(
        self, model: Recommender, items: list[int], k: int, with_reasons: bool = False
    ) -> list[Recommendation]:
        """The ``k`` best items for a user unknown to the data, given only the items it interacted with (most
        recent last; serving's cold users), the history's items excluded. Families whose models score from a
        history override this; the others refuse in one line."""
        raise FusionrecError(
            f"the {self.name} task scores users of its data set only; a history-only request needs a model that "
            "reads histories (a sequential one)"
        )

    def explain(self, model: Recommender, user: int, item: int | None, out_dir: Path | None) -> Explanation:
        """The attention behind the model's score(s) for ``user`` (and ``item`` where the family scores
        pairs); heat maps go to ``out_dir``."""
        raise FusionrecError(f"the {self.name} task has no explanations")


def model_device(model: Recommender) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def labelled(names: list[str], values: list[float]) -> dict[str, float]:
    """``{name: weight}`` sorted by weight, largest first."""
    return dict(sorted(zip(names, (float(v) for v in values)), key=lambda kv: -kv[1]))
