"""Typed configuration of training and of a whole run."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from fusionrec.config import StrictConfig
from fusionrec.data.config import DataConfig


class TrainConfig(StrictConfig):
    """Optimisation and early stopping, the same for every task family.

    Early stopping watches ``metric`` on the validation split every ``eval_every`` epochs and stops
    after ``patience`` evaluations without improvement; the best state is restored before the
    single test evaluation. What is evaluated (metrics, cut-offs, candidates) and how batches are
    sampled belongs to the task family's own section (``task:``).
    """

    epochs: int = Field(300, gt=0)
    batch_size: int | None = Field(
        None,
        gt=0,
        description="training batch size; default per task: 2048 pairs (top-K; fewer on small data, so an epoch makes "
        "at least 32 updates), 128 sequences (sequential)",
    )
    optimizer: Literal["adam", "adamw", "sgd", "adagrad"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    sparse_embeddings: bool = Field(
        False,
        description="sparse gradients for the embedding tables the model only reads row by row (BPR, VBPR; "
        "SASRec, BERT4Rec, NOVA-BERT, MARank under a sampled loss): a step then costs what its batch "
        "touches, not the whole table (training/optim.py)",
    )
    scheduler: Literal["none", "step", "cosine"] = "none"
    step_size: int = Field(50, gt=0)
    gamma: float = Field(0.5, gt=0)
    grad_clip: float | None = Field(None, gt=0)
    patience: int = Field(30, gt=0)
    eval_every: int = Field(1, gt=0)
    metric: str | None = Field(
        None,
        description="validation metric that selects the epoch (early stopping); "
        "default per task (ndcg@20 for the ranking tasks)",
    )
    seed: int = 2024
    num_threads: int | None = Field(None, gt=0)
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="auto (CUDA when available, else CPU), cpu, cuda or cuda:i; under torchrun, cuda means "
        "each rank's own GPU (cuda:LOCAL_RANK)",
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="CUDA autocast precision of the training step (fp16 with a gradient scaler); fp32 on CPU"
    )


class RunConfig(StrictConfig):
    """A whole run: ``model`` and ``task`` (each validated by its own registered config class: the
    model's, and the one of the task family the model names), ``data`` and ``train``."""

    model: dict[str, Any]
    task: dict[str, Any] = {}
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
