"""Top-K recommendation from implicit feedback.

Protocol: every training (user, item) pair is a positive; negatives are sampled uniformly from
the items that occur in training and that the user never interacted with there
(``train.negative_pool=all``: from all items). Evaluation ranks *all* items for every user
with at least one target; validation masks training items, test masks training and validation
items. Tied scores are ranked pessimistically (see :mod:`fusionrec.metrics.ranking`).

Cold-start items (``data.split.method=cold_item`` with ``train.candidates=unseen``): only the items
that never occur in training are candidates, so the metrics say how well a model ranks new items
among themselves (in a full ranking the warm items outscore every new item for every model, and
NDCG@20 is ~0 for all of them). Targets on training items are dropped and counted.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterator, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from fusionrec.data.batches import PairBatch
from fusionrec.data.dataset import Dataset
from fusionrec.data.samplers import PairSampler
from fusionrec.errors import ConfigError
from fusionrec.metrics.full_ranking import EvalResult, evaluate_full_ranking, sample_users
from fusionrec.models.base import Recommender
from fusionrec.registry import TASKS

EXCLUDED = {"valid": ("train",), "test": ("train", "valid")}


@TASKS.register("topk", description="full-ranking top-K from implicit feedback")
class TopKTask:
    """Loaders and the full-ranking protocol for top-K models (``Recommender.task == "topk"``)."""

    protocol = ("full ranking over all items; valid masks train items; test masks train and valid items; "
                "ties ranked pessimistically")
    default_batch_size = 2048  # (user, positive, negatives) rows
    unseen_protocol = ("ranking over the items absent from training only (cold-start items); test masks the user's "
                       "valid items; ties ranked pessimistically")

    @classmethod
    def from_config(cls, train: Any, dataset: Dataset, model_config: Any = None) -> "TopKTask":
        if not getattr(train, "mask_history", True):
            raise ConfigError("train.mask_history=false is not part of the top-K protocol (training items are "
                              "always masked); it applies to sequential models")
        if getattr(train, "sequence_windows", "last") != "last":
            raise ConfigError("train.sequence_windows applies to sequential models; top-K training visits every "
                              "training pair once per epoch already")
        return cls(dataset, batch_size=train.batch_size or cls.default_batch_size, num_negatives=train.num_negatives, seed=train.seed,
                   ks=train.ks, metrics=train.evaluated_metrics(), eval_batch_size=train.eval_batch_size,
                   negative_pool=getattr(train, "negative_pool", "train"),
                   candidates=getattr(train, "candidates", "all"), valid_users=getattr(train, "valid_users", None))

    def __init__(self, dataset: Dataset, *, batch_size: int = 2048, num_negatives: int = 1, seed: int = 0,
                 ks: Sequence[int] = (10, 20), metrics: Sequence[str] = ("recall", "ndcg"),
                 eval_batch_size: int = 1024, rank: int = 0, world_size: int = 1, negative_pool: str = "train",
                 candidates: str = "all", valid_users: int | None = None) -> None:
        self.dataset = dataset
        self.valid_users, self.seed = valid_users, seed
        self.ks = tuple(ks)
        self.metrics = tuple(metrics)
        self.eval_batch_size = eval_batch_size
        self.sampler = PairSampler(dataset.matrix("train"), batch_size, num_negatives, seed, rank, world_size,
                                   negative_pool)
        if candidates not in ("all", "unseen"):
            raise ConfigError(f"train.candidates must be 'all' or 'unseen', got {candidates!r}")
        self.candidate_items: np.ndarray | None = None
        if candidates == "unseen":
            seen = np.asarray(dataset.matrix("train").sum(axis=0)).ravel() > 0
            self.candidate_items = np.flatnonzero(~seen)
            if not len(self.candidate_items):
                raise ConfigError("train.candidates=unseen: every item occurs in training; use a cold-start split "
                                  "(data.split.method=cold_item)")
            self.protocol = self.unseen_protocol

    def negative_items(self) -> np.ndarray:
        """Indices of the items negatives may be drawn from (``negative_pool``: training items, or all)."""
        return self.sampler.pool

    @property
    def num_batches(self) -> int:
        return len(self.sampler)

    def train_batches(self, epoch: int) -> Iterator[PairBatch]:
        return self.sampler.epoch(epoch)

    @torch.no_grad()
    def evaluate(self, model: Recommender, split: str = "valid", device: str | torch.device = "cpu") -> EvalResult:
        """Full ranking of ``split`` (``valid`` or ``test``) with the protocol's masks."""
        was_training = model.training
        model.eval()
        try:
            scorer, targets = model.scorer(), self.dataset.matrix(split)
            if split == "valid":
                targets = sample_users(targets, self.valid_users, self.seed)
            exclude = self.dataset.matrix(*EXCLUDED[split])
            if self.candidate_items is not None:
                scorer, targets, exclude = self._restricted(scorer, targets, exclude)
            return evaluate_full_ranking(scorer, targets, exclude, ks=self.ks, metrics=self.metrics,
                                         user_batch_size=self.eval_batch_size, device=device)
        finally:
            model.train(was_training)

    def _restricted(self, scorer: Any, targets: sp.csr_matrix, exclude: sp.csr_matrix) -> tuple[Any, Any, Any]:
        """The evaluation restricted to ``candidate_items``: columns renumbered 0..C-1, scores looked up
        through the original item ids. Targets on other items are dropped (counted in a warning)."""
        cand = self.candidate_items
        cand_t = torch.from_numpy(cand)
        dropped = targets.nnz - targets[:, cand].nnz
        if dropped:
            warnings.warn(f"train.candidates=unseen: {dropped} targets are items seen in training "
                          "and are not ranked", stacklevel=3)

        def restricted(users: Tensor, items: Tensor | None) -> Tensor:
            return scorer(users, cand_t.to(users.device) if items is None else cand_t.to(items.device)[items])

        return restricted, targets[:, cand].tocsr(), exclude[:, cand].tocsr()
