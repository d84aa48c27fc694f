"""Click-through-rate prediction: pointwise labelled rows, AUC / logloss / GAUC.

Protocol: every interaction row is one labelled example (label from a ``label`` column, or
``rating >= task.rating_threshold``); the model is trained on the training rows, the epoch chosen on
the validation rows (AUC, GAUC or logloss, ``train.metric``), and the test rows are read once. AUC
counts tied scores as half; GAUC is the row-weighted mean of per-user AUCs over users with both labels.

Leakage rules (tested in ``tests/ctr/test_leakage.py``): field vocabularies, numeric buckets, means
and deviations, and the content standardisation are fitted on training rows only; validation and
test rows never reach training batches; a value first seen in a held-out row is unknown (code 0).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from fusionrec.data.dataset import SPLIT_CODES, Dataset, show_value
from fusionrec.errors import ConfigError, DataError, FusionrecError
from fusionrec.metrics.full_ranking import EvalResult
from fusionrec.models.base import Recommender
from fusionrec.models.ctr.common import LAYOUT_KEY, CTRBatch, FieldLayout
from fusionrec.registry import TASKS
from fusionrec.tasks.base import Explanation, Recommendation, Task, TaskConfig, model_device
from fusionrec.tasks.ctr.explain import explain_row, strongest_text_tokens
from fusionrec.tasks.ctr.fields import DEFAULT_FIELDS, FieldSpec, fit_fields
from fusionrec.tasks.ctr.metrics import auc, gauc, row_logloss


class CTRTaskConfig(TaskConfig):
    """The ``task:`` section of CTR runs: where the label comes from and the input fields."""

    label_column: str = Field("label", description="interaction column holding 0/1 labels")
    rating_threshold: float | None = Field(
        None, description="label = rating >= this (e.g. 4 on MovieLens); label_column is then unused"
    )
    fields: dict[str, FieldSpec] = Field(
        default_factory=lambda: dict(DEFAULT_FIELDS), description="input fields by name (see docs/ctr.md)"
    )
    eval_batch_size: int = Field(8192, gt=0)


@TASKS.register("ctr", config=CTRTaskConfig, description="click-through rate: labelled rows, AUC, logloss, GAUC")
class CTRTask(Task):
    """Batches of labelled rows with fitted fields, and the pointwise protocol."""

    name = "ctr"
    default_batch_size = 1024
    default_metric = "logloss"  # what CTR practitioners early-stop on; train.metric=auc or gauc also select
    SELECTABLE: ClassVar[tuple[str, ...]] = ("auc", "logloss", "gauc")
    REPORTED: ClassVar[tuple[str, ...]] = ("auc", "logloss", "gauc", "calibration", "positive_rate")

    @classmethod
    def build(cls, config: CTRTaskConfig, train: Any, dataset: Dataset, model_config: Any = None) -> CTRTask:
        return cls(
            dataset, config, train.batch_size or cls.default_batch_size, train.seed, train.metric or cls.default_metric
        )

    @classmethod
    def check_metric(cls, config: Any, metric: str) -> None:
        if metric not in cls.SELECTABLE:
            raise ConfigError(f"train.metric={metric!r}: the ctr task selects on {', '.join(cls.SELECTABLE)}")

    @classmethod
    def reported_metrics(cls, config: Any, metric: str) -> list[str]:
        return list(cls.REPORTED)

    def higher_is_better(self, metric: str) -> bool:
        return metric != "logloss"

    def __init__(
        self, dataset: Dataset, config: CTRTaskConfig, batch_size: int = 1024, seed: int = 0, metric: str = "logloss"
    ) -> None:
        self.dataset, self.config = dataset, config
        self.batch_size, self.seed, self.metric = batch_size, seed, metric
        self.labels = row_labels(dataset, config)
        codes = dataset.interactions["split"].to_numpy()
        self.rows = {split: np.flatnonzero(codes == code) for split, code in SPLIT_CODES.items()}
        self.users = dataset.interactions["user"].to_numpy().astype(np.int64)
        self.items = dataset.interactions["item"].to_numpy().astype(np.int64)
        self.encoded = fit_fields(dataset, config.fields, self.rows["train"])
        self.layout = FieldLayout(tuple(e.info for e in self.encoded))
        dataset.meta[LAYOUT_KEY] = self.layout  # what the models are built from
        self._contents = [
            (torch.from_numpy(e.values), torch.from_numpy(e.mask)) for e in self.encoded if e.info.kind == "content"
        ]
        rates = ", ".join(f"{s} {self.labels[r].mean():.3f}" for s, r in self.rows.items() if len(r))
        self.protocol = (
            "pointwise rows; AUC (ties half), logloss, GAUC (row-weighted over users with both labels); "
            f"fields fitted on train rows; positive rate {rates}"
        )

    # ------------------------------------------------------------------ batches
    def batch(self, rows: np.ndarray, users: np.ndarray | None = None, items: np.ndarray | None = None) -> CTRBatch:
        """The batch of interaction ``rows``; with ``users``/``items`` given and ``rows`` -1, hypothetical
        rows (for ``recommend``): their interaction-level fields are unknown (code 0, the training mean)."""
        users = self.users[rows] if users is None else users
        items = self.items[rows] if items is None else items
        real = rows >= 0
        index = {"user": users, "item": items, "row": np.where(real, rows, 0)}
        categorical: list[np.ndarray] = []
        numeric: list[np.ndarray] = []
        sequences: list[np.ndarray] = []
        contents: list[torch.Tensor] = []
        masks: list[torch.Tensor] = []
        content_tables = iter(self._contents)
        for field in self.encoded:
            kind = field.info.kind
            if kind == "content":
                values, present = next(content_tables)
                at = torch.from_numpy(items)
                contents.append(values[at])
                masks.append(present[at])
                continue
            taken = field.values[index[field.by]]
            if field.by == "row" and not real.all():
                taken = np.where(real.reshape((-1,) + (1,) * (taken.ndim - 1)), taken, 0)
            {"categorical": categorical, "numeric": numeric, "sequence": sequences}[kind].append(taken)
        labels = np.where(real, self.labels[np.where(real, rows, 0)], 0.0).astype(np.float32)
        n = len(rows)
        return CTRBatch(
            rows=torch.from_numpy(np.asarray(rows, dtype=np.int64)),
            users=torch.from_numpy(users.astype(np.int64)),
            items=torch.from_numpy(items.astype(np.int64)),
            labels=torch.from_numpy(labels),
            categorical=torch.from_numpy(np.stack(categorical, 1) if categorical else np.zeros((n, 0), np.int64)),
            numeric=torch.from_numpy(np.stack(numeric, 1) if numeric else np.zeros((n, 0), np.float32)),
            sequences=tuple(torch.from_numpy(s) for s in sequences),
            contents=tuple(contents),
            content_masks=tuple(masks),
        )

    @property
    def num_batches(self) -> int:
        return -(-len(self.rows["train"]) // self.batch_size)

    def train_batches(self, epoch: int) -> Iterator[CTRBatch]:
        order = np.random.default_rng([self.seed, epoch]).permutation(self.rows["train"])
        for start in range(0, len(order), self.batch_size):
            yield self.batch(order[start : start + self.batch_size])

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def predict(self, model: Recommender, rows: np.ndarray, device: Any = "cpu") -> np.ndarray:
        """Logits of interaction ``rows`` (eval mode, in ``eval_batch_size`` chunks)."""
        was_training = model.training
        model.eval()
        try:
            out = [
                model.logits(self.batch(rows[s : s + self.config.eval_batch_size]).to(device)).float().cpu().numpy()  # type: ignore[operator]
                for s in range(0, len(rows), self.config.eval_batch_size)
            ]
        finally:
            model.train(was_training)
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def evaluate(self, model: Recommender, split: str = "valid", device: str | torch.device = "cpu") -> EvalResult:
        start = time.perf_counter()
        rows = self.rows[split]
        logits = self.predict(model, rows, device).astype(np.float64)
        labels = self.labels[rows].astype(np.float64)
        probs = 1.0 / (1.0 + np.exp(-logits))
        losses = row_logloss(probs, labels)
        grouped, _ = gauc(logits, labels, self.users[rows])
        metrics = {
            "auc": auc(logits, labels),
            "logloss": float(losses.mean()),
            "gauc": grouped,
            "calibration": float(probs.mean() / max(labels.mean(), 1e-12)),
            "positive_rate": float(labels.mean()),
        }
        return EvalResult(
            metrics,
            {"logloss": losses},
            rows,
            len(rows),
            0,
            time.perf_counter() - start,
            protocol=self.protocol,
            unit="row",
        )

    # ------------------------------------------------------------------ using a trained model
    def score_pairs(self, model: Recommender, user: int, items: np.ndarray) -> np.ndarray:
        """Predicted click probabilities of ``user`` on ``items`` (hypothetical rows)."""
        probs = []
        device = model_device(model)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for s in range(0, len(items), self.config.eval_batch_size):
                    chunk = items[s : s + self.config.eval_batch_size]
                    batch = self.batch(np.full(len(chunk), -1), np.full(len(chunk), user), chunk).to(device)
                    probs.append(torch.sigmoid(model.logits(batch)).cpu().numpy())  # type: ignore[operator]
        finally:
            model.train(was_training)
        return np.concatenate(probs) if probs else np.zeros(0)

    def recommend(
        self, model: Recommender, user: int, k: int, include_seen: bool = False, with_reasons: bool = False
    ) -> list[Recommendation]:
        """The ``k`` items with the highest predicted CTR for ``user`` (ties: lower item index first); the
        user's logged items are skipped unless ``include_seen``. Interaction-level fields are unknown.
        With ``with_reasons``, CMBF gives each item the text token its image attends to most."""
        candidates = np.arange(self.dataset.num_items)
        if not include_seen:
            seen = np.unique(self.items[self.users == user])
            candidates = np.setdiff1d(candidates, seen)
        probs = self.score_pairs(model, user, candidates)
        best = candidates[np.lexsort((candidates, -probs))[:k]]
        scores = probs[np.searchsorted(candidates, best)]
        reasons: list[tuple[str, float] | None] = [None] * len(best)
        if with_reasons and len(best) and hasattr(model, "cross_attention"):
            batch = self.batch(np.full(len(best), -1), np.full(len(best), user), best).to(model_device(model))
            was_training = model.training
            model.eval()
            try:
                reasons = strongest_text_tokens(model, self, batch)
            finally:
                model.train(was_training)
        return [Recommendation(int(i), float(p), why) for i, p, why in zip(best, scores, reasons)]

    def explain(self, model: Recommender, user: int, item: int | None, out_dir: Path | None) -> Explanation:
        """CMBF's cross-attention between the row's field/text tokens and its image tokens: the logged
        row of (user, item) when there is one (the latest), else a hypothetical row."""
        if item is None:
            raise ConfigError("ctr explains one (user, item) row: pass an item")
        if not hasattr(model, "cross_attention"):
            raise FusionrecError(
                f"{type(model).__name__} has no cross-modal attention to explain; ctr explanations come from cmbf"
            )
        logged = np.flatnonzero((self.users == user) & (self.items == item))
        row = np.array([logged[-1] if len(logged) else -1])
        batch = self.batch(row, np.array([user]), np.array([item])).to(model_device(model))
        return explain_row(model, self, batch, out_dir)


def row_labels(dataset: Dataset, config: CTRTaskConfig) -> np.ndarray:
    """0/1 float labels of every interaction row, or one DataError line naming the first bad row."""
    inter = dataset.interactions
    if config.rating_threshold is not None:
        if "rating" not in inter:
            raise DataError(f"{dataset.name}: task.rating_threshold needs a rating column; the data set has none")
        return (inter["rating"].to_numpy() >= config.rating_threshold).astype(np.float32)
    column = config.label_column
    if column not in inter:
        raise DataError(
            f"{dataset.name}: the ctr task needs a label column {column!r} (have: {', '.join(map(str, inter.columns))}); "
            "set task.label_column, or task.rating_threshold to label ratings"
        )
    raw = inter[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{dataset.name}: label column {column!r} has {show_value(raw.iloc[at])} at interaction row {at} "
            f"({int(bad.sum())} row(s) not 0/1); labels must be 0 or 1"
        )
    return values.astype(np.float32)
