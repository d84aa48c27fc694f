"""The ``toy_click`` task: its ``task:`` section, batches, protocol, scoring and explanations."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from fusionrec.data.batches import _Batch
from fusionrec.errors import ConfigError
from fusionrec.metrics.full_ranking import EvalResult
from fusionrec.registry import TASKS
from fusionrec.tasks.base import Explanation, Recommendation, Task, TaskConfig, labelled
from fusionrec.tasks.ranking import top_items


@dataclass(frozen=True)
class ClickBatch(_Batch):
    """Labelled pairs. Shapes: users (B,), items (B,), labels (B,) float 0/1."""

    users: Tensor
    items: Tensor
    labels: Tensor


class ToyClickConfig(TaskConfig):
    """The ``task:`` section: negatives per observed pair, in training and in evaluation."""

    negatives: int = Field(1, gt=0, description="sampled 0-labelled pairs per observed pair")


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a positive outscores a negative, ties counted as half (Mann-Whitney)."""
    order = scores.argsort(kind="stable")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)  # average ranks, 1-based
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@TASKS.register("toy_click", config=ToyClickConfig, description="toy: pointwise clicks, AUC and logloss")
class ToyClickTask(Task):
    name = "toy_click"
    default_batch_size = 256
    default_metric = "auc"
    METRICS: ClassVar[tuple[str, ...]] = ("auc", "logloss")

    @classmethod
    def build(cls, config: ToyClickConfig, train: Any, dataset: Any, model_config: Any) -> ToyClickTask:
        return cls(
            dataset,
            config.negatives,
            train.batch_size or cls.default_batch_size,
            train.seed,
            train.metric or cls.default_metric,
        )

    @classmethod
    def check_metric(cls, config: Any, metric: str) -> None:
        if metric not in cls.METRICS:
            raise ConfigError(f"train.metric={metric!r}: the toy_click task reports {', '.join(cls.METRICS)}")

    @classmethod
    def reported_metrics(cls, config: Any, metric: str) -> list[str]:
        return list(cls.METRICS)

    def higher_is_better(self, metric: str) -> bool:
        return metric != "logloss"

    def __init__(self, dataset: Any, negatives: int, batch_size: int, seed: int, metric: str) -> None:
        self.dataset, self.negatives, self.batch_size, self.seed, self.metric = (
            dataset,
            negatives,
            batch_size,
            seed,
            metric,
        )
        self.protocol = f"observed pairs against {negatives} sampled unobserved pair(s) each; AUC and logloss"
        self.seen = dataset.matrix("train", "valid", "test")

    def _labelled(self, split: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = self.dataset.matrix(split).tocoo()
        has_unseen = np.asarray(self.seen.sum(axis=1)).ravel() < self.dataset.num_items
        users = np.repeat(pos.row[has_unseen[pos.row]], self.negatives)  # a user who saw every item has none
        items = rng.integers(0, self.dataset.num_items, len(users))
        clash = np.asarray(self.seen[users, items]).ravel() > 0
        while clash.any():  # never an item the user interacted with, in any split
            items[clash] = rng.integers(0, self.dataset.num_items, int(clash.sum()))
            clash = np.asarray(self.seen[users, items]).ravel() > 0
        return (
            np.concatenate([pos.row, users]),
            np.concatenate([pos.col, items]),
            np.concatenate([np.ones(pos.nnz), np.zeros(len(users))]).astype(np.float32),
        )

    @property
    def num_batches(self) -> int:
        return -(-self.dataset.matrix("train").nnz * (1 + self.negatives) // self.batch_size)

    def train_batches(self, epoch: int) -> Iterator[ClickBatch]:
        rng = np.random.default_rng([self.seed, epoch])
        users, items, labels = self._labelled("train", rng)
        order = rng.permutation(len(users))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            yield ClickBatch(
                torch.from_numpy(users[rows]).long(),
                torch.from_numpy(items[rows]).long(),
                torch.from_numpy(labels[rows]),
            )

    @torch.no_grad()
    def evaluate(self, model: Any, split: str = "valid", device: Any = "cpu") -> EvalResult:
        start = time.perf_counter()
        users, items, labels = self._labelled(split, np.random.default_rng([self.seed, {"valid": 1, "test": 2}[split]]))
        logits = model.logits(torch.from_numpy(users).long(), torch.from_numpy(items).long()).numpy()
        p = np.clip(1 / (1 + np.exp(-logits)), 1e-7, 1 - 1e-7)
        loss = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
        evaluated = np.unique(users)
        return EvalResult(
            {"auc": auc(logits, labels), "logloss": float(loss.mean())},
            {"logloss": loss},
            evaluated,
            len(evaluated),
            self.dataset.num_users - len(evaluated),
            time.perf_counter() - start,
            protocol=self.protocol,
        )

    def recommend(
        self, model: Any, user: int, k: int, include_seen: bool = False, with_reasons: bool = False
    ) -> list[Recommendation]:
        seen = None if include_seen else self.seen[[user]]
        return top_items(lambda users, items: model.logits_all(users), user, k, seen)

    def explain(self, model: Any, user: int, item: int | None, out_dir: Path | None) -> Explanation:
        if item is None:
            raise ConfigError("toy_click explains one (user, item) click: pass an item")
        parts = model.parts(user, item)
        return Explanation(
            f"user {self.dataset.user_ids[user]}, item {self.dataset.item_ids[item]}",
            sum(parts.values()),
            {"logit parts": labelled(list(parts), list(parts.values()))},
        )
