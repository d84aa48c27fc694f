"""Typed configuration of training and of a whole run."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from fusionrec.config import StrictConfig
from fusionrec.data.config import DataConfig

METRIC_NAMES = ("recall", "ndcg", "precision", "hit_rate", "mrr", "map")
NO_CUTOFF = ("mrr",)  # metrics that are also computed over the whole ranking, without @k


class TrainConfig(StrictConfig):
    """Optimisation, early stopping and evaluation settings.

    Early stopping watches ``metric`` on the validation split every ``eval_every`` epochs and stops
    after ``patience`` evaluations without improvement; the best state is restored before the
    single test evaluation.
    """

    epochs: int = Field(300, gt=0)
    batch_size: int | None = Field(None, gt=0, description="training batch size; default per task: 2048 pairs "
                                   "(top-K), 128 sequences (sequential)")
    num_negatives: int = Field(1, gt=0)
    candidates: Literal["all", "unseen"] = Field(
        "all", description="top-K items ranked at evaluation: all, or only items absent from training (cold-start)")
    negative_pool: Literal["train", "all"] = Field(
        "train", description="items drawn as negatives (top-K): those occurring in training, or all items")
    optimizer: Literal["adam", "adamw", "sgd", "adagrad"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    sparse_embeddings: bool = Field(
        False, description="sparse gradients for the embedding tables the model only reads row by row (BPR, VBPR; "
                           "SASRec, BERT4Rec, NOVA-BERT, MARank under a sampled loss): a step then costs what its batch "
                           "touches, not the whole table (training/optim.py)")
    scheduler: Literal["none", "step", "cosine"] = "none"
    step_size: int = Field(50, gt=0)
    gamma: float = Field(0.5, gt=0)
    grad_clip: float | None = Field(None, gt=0)
    patience: int = Field(30, gt=0)
    eval_every: int = Field(1, gt=0)
    valid_users: int | None = Field(
        None, gt=0, description="validate on this many users drawn once by train.seed (the same users every epoch) "
                                "instead of all: for large data sets where a full validation pass costs minutes; "
                                "test always ranks every user")
    metric: str = "ndcg@20"
    ks: list[int] = [10, 20]
    metrics: list[str] = list(METRIC_NAMES)
    eval_batch_size: int = Field(1024, gt=0)
    mask_history: bool = Field(True, description="rank only items outside the user's input history (sequential "
                                                 "task; the top-K protocol always masks training items)")
    sequence_windows: Literal["last", "all"] = Field(
        "last", description="sequential training samples: each user's last max_length items (the papers' samplers), "
                            "or all windows of max_length targets, so an epoch uses every training interaction once")
    seed: int = 2024
    num_threads: int | None = Field(None, gt=0)
    device: str = "cpu"

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in METRIC_NAMES]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRIC_NAMES)}")
        return value

    @field_validator("metric")
    @classmethod
    def _metric_form(cls, value: str) -> str:
        name, _, k = value.partition("@")
        if name not in METRIC_NAMES or not (k.isdigit() or (name in NO_CUTOFF and value == name)):
            raise ValueError(f"metric must look like ndcg@20 (or plain mrr) with one of {', '.join(METRIC_NAMES)}")
        return value


    def evaluated_metrics(self) -> list[str]:
        """``metrics`` (base names, expanded over ``ks`` by the evaluator) plus the selection
        ``metric`` when that expansion does not produce it (e.g. ``mrr@10`` or ``ndcg@50``)."""
        from fusionrec.metrics.ranking import expand_metric_names

        produced = {m.name for m in expand_metric_names(self.metrics, self.ks)}
        return list(self.metrics) + ([] if self.metric in produced else [self.metric])


class RunConfig(StrictConfig):
    """A whole run: ``model`` (validated by the model's own config class), ``data`` and ``train``."""

    model: dict[str, Any]
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
