"""Top-K recommendation from implicit feedback.

Protocol: every training (user, item) pair is a positive; negatives are sampled uniformly from
items the user never interacted with in training. Evaluation ranks *all* items for every user
with at least one target; validation masks training items, test masks training and validation
items. Tied scores are ranked pessimistically (see :mod:`fusionrec.metrics.ranking`).
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import torch

from fusionrec.data.batches import PairBatch
from fusionrec.data.dataset import Dataset
from fusionrec.data.samplers import PairSampler
from fusionrec.errors import ConfigError
from fusionrec.metrics.full_ranking import EvalResult, evaluate_full_ranking
from fusionrec.models.base import Recommender
from fusionrec.registry import TASKS

EXCLUDED = {"valid": ("train",), "test": ("train", "valid")}


@TASKS.register("topk", description="full-ranking top-K from implicit feedback")
class TopKTask:
    """Loaders and the full-ranking protocol for top-K models (``Recommender.task == "topk"``)."""

    protocol = ("full ranking over all items; valid masks train items; test masks train and valid items; "
                "ties ranked pessimistically")

    @classmethod
    def from_config(cls, train: Any, dataset: Dataset, model_config: Any = None) -> "TopKTask":
        if not getattr(train, "mask_history", True):
            raise ConfigError("train.mask_history=false is not part of the top-K protocol (training items are "
                              "always masked); it applies to sequential models")
        return cls(dataset, batch_size=train.batch_size, num_negatives=train.num_negatives, seed=train.seed,
                   ks=train.ks, metrics=train.metrics, eval_batch_size=train.eval_batch_size)

    def __init__(self, dataset: Dataset, *, batch_size: int = 2048, num_negatives: int = 1, seed: int = 0,
                 ks: Sequence[int] = (10, 20), metrics: Sequence[str] = ("recall", "ndcg"),
                 eval_batch_size: int = 1024, rank: int = 0, world_size: int = 1) -> None:
        self.dataset = dataset
        self.ks = tuple(ks)
        self.metrics = tuple(metrics)
        self.eval_batch_size = eval_batch_size
        self.sampler = PairSampler(dataset.matrix("train"), batch_size, num_negatives, seed, rank, world_size)

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
            return evaluate_full_ranking(
                model.scorer(), self.dataset.matrix(split), self.dataset.matrix(*EXCLUDED[split]),
                ks=self.ks, metrics=self.metrics, user_batch_size=self.eval_batch_size, device=device,
            )
        finally:
            model.train(was_training)
