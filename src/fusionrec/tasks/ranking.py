"""What the two full-ranking families (top-K and sequential) share: their evaluation settings and the
ranking-metric vocabulary their selection metric is checked against."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import torch
from pydantic import Field, field_validator

from fusionrec.errors import ConfigError
from fusionrec.metrics.full_ranking import EvalResult
from fusionrec.metrics.ranking import expand_metric_names
from fusionrec.models.base import Recommender
from fusionrec.retrieval import top_k_items
from fusionrec.tasks.base import Recommendation, Task, TaskConfig

METRIC_NAMES = ("recall", "ndcg", "precision", "hit_rate", "mrr", "map")
NO_CUTOFF = ("mrr",)  # metrics that are also computed over the whole ranking, without @k


class RankingConfig(TaskConfig):
    """Evaluation settings of a full-ranking task: ``metrics`` at every cut-off in ``ks``, users
    scored ``eval_batch_size`` at a time, validation on ``valid_users`` sampled users (all by default)."""

    moved_from_train: ClassVar[tuple[str, ...]] = ("ks", "metrics", "eval_batch_size", "valid_users")

    ks: list[int] = [10, 20]
    metrics: list[str] = list(METRIC_NAMES)
    eval_batch_size: int = Field(1024, gt=0)
    valid_users: int | None = Field(
        None,
        gt=0,
        description="validate on this many users drawn once by train.seed (the same users every epoch) "
        "instead of all: for large data sets where a full validation pass costs minutes; "
        "test always ranks every user",
    )

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in METRIC_NAMES]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRIC_NAMES)}")
        return value

    def evaluated_metrics(self, selection: str) -> list[str]:
        """``metrics`` (base names, expanded over ``ks`` by the evaluator) plus the ``selection``
        metric when that expansion does not produce it (e.g. ``mrr@10`` or ``ndcg@50``)."""
        produced = {m.name for m in expand_metric_names(self.metrics, self.ks)}
        return list(self.metrics) + ([] if selection in produced else [selection])


def reported_ranking_metrics(config: RankingConfig, metric: str) -> list[str]:
    return [m.name for m in expand_metric_names(config.evaluated_metrics(metric), config.ks)]


def check_ranking_metric(metric: str) -> None:
    """One line unless ``metric`` looks like ``ndcg@20`` (or plain ``mrr``) with a known name."""
    name, _, k = metric.partition("@")
    if name not in METRIC_NAMES or not (k.isdigit() or (name in NO_CUTOFF and metric == name)):
        raise ConfigError(
            f"train.metric={metric!r}: a ranking task selects on a metric like ndcg@20 (or plain mrr) "
            f"with one of {', '.join(METRIC_NAMES)}"
        )


def top_items(scorer: Any, user: int, k: int, seen: Any) -> list[Recommendation]:
    """The ``k`` best items of one user from ``scorer`` with ``seen`` (1 x I, or None) masked."""
    import torch

    with torch.no_grad():
        items, scores = top_k_items(scorer, torch.tensor([user]), k, seen)
    return [Recommendation(int(i), float(s)) for i, s in zip(items[0].tolist(), scores[0].tolist()) if i >= 0]


class RankingTask(Task):
    """What the full-ranking families share: their metric vocabulary (``ndcg@20``, plain ``mrr``, ...),
    and evaluations that split over data-parallel ranks by user (``shard``)."""

    shards_evaluation = True

    @abc.abstractmethod
    def evaluate(
        self,
        model: Recommender,
        split: str = "valid",
        device: str | torch.device = "cpu",
        shard: tuple[int, int] | None = None,
    ) -> EvalResult:
        """The protocol on ``split``; with ``shard=(rank, world_size)`` only that rank's users
        (:func:`~fusionrec.metrics.full_ranking.shard_users`), for
        :func:`~fusionrec.metrics.full_ranking.merge_results` to join."""

    @classmethod
    def check_metric(cls, config: Any, metric: str) -> None:
        check_ranking_metric(metric)

    @classmethod
    def reported_metrics(cls, config: Any, metric: str) -> list[str]:
        return reported_ranking_metrics(config, metric)

    @classmethod
    def evaluation_arguments(cls, config: RankingConfig, train: Any) -> dict[str, Any]:
        """The constructor arguments both ranking tasks take from the ``task:`` and ``train:`` sections."""
        metric = train.metric or cls.default_metric
        return {
            "seed": train.seed,
            "ks": config.ks,
            "metrics": config.evaluated_metrics(metric),
            "eval_batch_size": config.eval_batch_size,
            "valid_users": config.valid_users,
            "metric": metric,
        }
