"""Top-K recommendation from implicit feedback.

Protocol: every training (user, item) pair is a positive; negatives are sampled uniformly from
the items that occur in training and that the user never interacted with there
(``task.negative_pool=all``: from all items). Evaluation ranks *all* items for every user
with at least one target; validation masks training items, test masks training and validation
items. Tied scores are ranked pessimistically (see :mod:`fusionrec.metrics.ranking`).

Cold-start items (``data.split.method=cold_item`` with ``task.candidates=unseen``): only the items
that never occur in training are candidates, so the metrics say how well a model ranks new items
among themselves (in a full ranking the warm items outscore every new item for every model, and
NDCG@20 is ~0 for all of them). Targets on training items are dropped and counted.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import Tensor

from fusionrec.data.batches import PairBatch
from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.metrics.full_ranking import EvalResult, evaluate_full_ranking, sample_users, shard_users
from fusionrec.models.base import Recommender
from fusionrec.registry import TASKS
from fusionrec.tasks.base import Answer, Explanation, Recommendation
from fusionrec.tasks.ranking import RankingConfig, RankingTask, top_items
from fusionrec.tasks.topk.explain import explain_pair, explain_recommendations, top_modalities
from fusionrec.tasks.topk.sampler import PairSampler

EXCLUDED = {"valid": ("train",), "test": ("train", "valid")}


class TopKTaskConfig(RankingConfig):
    """The ``task:`` section of top-K runs."""

    moved_from_train: ClassVar[tuple[str, ...]] = RankingConfig.moved_from_train + (
        "num_negatives",
        "negative_pool",
        "candidates",
    )

    num_negatives: int = Field(1, gt=0, description="negatives sampled per training pair")
    negative_pool: Literal["train", "all"] = Field(
        "train", description="items drawn as negatives: those occurring in training, or all items"
    )
    candidates: Literal["all", "unseen"] = Field(
        "all", description="items ranked at evaluation: all, or only items absent from training (cold-start)"
    )


@TASKS.register("topk", config=TopKTaskConfig, description="full-ranking top-K from implicit feedback")
class TopKTask(RankingTask):
    """Loaders and the full-ranking protocol for the models registered with ``task="topk"``."""

    name = "topk"
    default_metric = "ndcg@20"
    protocol = (
        "full ranking over all items; valid masks train items; test masks train and valid items; "
        "ties ranked pessimistically"
    )
    default_batch_size = 2048  # (user, positive, negatives) rows, on data sets large enough for it
    min_updates_per_epoch = 32  # on smaller ones the default batch shrinks (down to 64) to keep this many
    unseen_protocol = (
        "ranking over the items absent from training only (cold-start items); test masks the user's "
        "valid items; ties ranked pessimistically"
    )

    @classmethod
    def build(cls, config: TopKTaskConfig, train: Any, dataset: Dataset, model_config: Any = None) -> TopKTask:
        return cls(
            dataset,
            batch_size=train.batch_size or cls.default_batch_for(int(dataset.matrix("train").nnz)),
            num_negatives=config.num_negatives,
            negative_pool=config.negative_pool,
            candidates=config.candidates,
            **cls.evaluation_arguments(config, train),
        )

    @classmethod
    def default_batch_for(cls, num_pairs: int) -> int:
        """The batch when ``train.batch_size`` is not set: 2,048 pairs, or fewer on small data so an epoch
        still makes ``min_updates_per_epoch`` updates (1,500 interactions at 2,048 would be one update)."""
        return int(min(cls.default_batch_size, max(64, -(-num_pairs // cls.min_updates_per_epoch))))

    def __init__(
        self,
        dataset: Dataset,
        *,
        batch_size: int = 2048,
        num_negatives: int = 1,
        seed: int = 0,
        ks: Sequence[int] = (10, 20),
        metrics: Sequence[str] = ("recall", "ndcg"),
        eval_batch_size: int = 1024,
        rank: int = 0,
        world_size: int = 1,
        negative_pool: str = "train",
        candidates: str = "all",
        valid_users: int | None = None,
        metric: str = "ndcg@20",
    ) -> None:
        self.dataset = dataset
        self.metric = metric
        self.valid_users, self.seed = valid_users, seed
        self.ks = tuple(ks)
        self.metrics = tuple(metrics)
        self.eval_batch_size = eval_batch_size
        self.batch_size = batch_size
        self.sampler = PairSampler(
            dataset.matrix("train"), batch_size, num_negatives, seed, rank, world_size, negative_pool
        )
        if candidates not in ("all", "unseen"):
            raise ConfigError(f"task.candidates must be 'all' or 'unseen', got {candidates!r}")
        self.candidate_items: np.ndarray | None = None
        if candidates == "unseen":
            seen = np.asarray(dataset.matrix("train").sum(axis=0)).ravel() > 0
            self.candidate_items = np.flatnonzero(~seen)
            if not len(self.candidate_items):
                raise ConfigError(
                    "task.candidates=unseen: every item occurs in training; use a cold-start split "
                    "(data.split.method=cold_item)"
                )
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
    def evaluate(
        self,
        model: Recommender,
        split: str = "valid",
        device: str | torch.device = "cpu",
        shard: tuple[int, int] | None = None,
    ) -> EvalResult:
        """Full ranking of ``split`` (``valid`` or ``test``) with the protocol's masks (``shard``: one
        data-parallel rank's users)."""
        was_training = model.training
        model.eval()
        try:
            scorer, targets = model.scorer(), self.dataset.matrix(split)
            if split == "valid":
                targets = sample_users(targets, self.valid_users, self.seed)
            if shard is not None:
                targets = shard_users(targets, *shard)
            exclude = self.dataset.matrix(*EXCLUDED[split])
            if self.candidate_items is not None:
                scorer, targets, exclude = self._restricted(scorer, targets, exclude)
            return evaluate_full_ranking(
                scorer,
                targets,
                exclude,
                ks=self.ks,
                metrics=self.metrics,
                user_batch_size=self.eval_batch_size,
                device=device,
            )
        finally:
            model.train(was_training)

    def _restricted(self, scorer: Any, targets: sp.csr_matrix, exclude: sp.csr_matrix) -> tuple[Any, Any, Any]:
        """The evaluation restricted to ``candidate_items``: columns renumbered 0..C-1, scores looked up
        through the original item ids. Targets on other items are dropped (counted in a warning)."""
        cand = self.candidate_items
        cand_t = torch.from_numpy(cand)
        dropped = targets.nnz - targets[:, cand].nnz
        if dropped:
            warnings.warn(
                f"task.candidates=unseen: {dropped} targets are items seen in training and are not ranked", stacklevel=3
            )

        def restricted(users: Tensor, items: Tensor | None) -> Tensor:
            return scorer(users, cand_t.to(users.device) if items is None else cand_t.to(items.device)[items])

        return restricted, targets[:, cand].tocsr(), exclude[:, cand].tocsr()

    # ------------------------------------------------------------------ using a trained model
    def recommend(
        self, model: Recommender, user: int, k: int, include_seen: bool = False, with_reasons: bool = False
    ) -> list[Recommendation]:
        """The ``k`` best items for ``user`` by ``model.scorer()``, the user's training, validation and test
        items excluded unless ``include_seen``; reasons are the top-weighted modality of each pair. Under
        ``candidates=unseen`` only the items absent from training are recommended, as they were ranked."""
        return self.recommender(model)(user, k, include_seen, with_reasons)

    def recommender(self, model: Recommender) -> Answer:
        """:meth:`recommend` with the model's scorer (graph propagation included) computed once."""
        with torch.no_grad():
            scorer = model.scorer()
        interacted = self.dataset.matrix("train", "valid", "test")
        cand = self.candidate_items

        def among_candidates(users: Tensor, items: Tensor | None) -> Tensor:
            assert cand is not None
            cand_t = torch.from_numpy(cand).to(users.device)
            return scorer(users, cand_t if items is None else cand_t[items.to(users.device)])

        def answer(user: int, k: int, include_seen: bool = False, with_reasons: bool = False) -> list[Recommendation]:
            seen = None if include_seen else interacted[[user]]
            if cand is None:
                recs = top_items(scorer, user, k, seen)
            else:
                found = top_items(among_candidates, user, min(k, len(cand)), None if seen is None else seen[:, cand])
                recs = [Recommendation(int(cand[r.item]), r.score) for r in found]
            if not with_reasons or not recs:
                return recs
            items = torch.tensor([r.item for r in recs])
            reasons = top_modalities(model, torch.full((len(recs),), user), items)
            return [Recommendation(r.item, r.score, reason) for r, reason in zip(recs, reasons)]

        return answer

    def explain(self, model: Recommender, user: int, item: int | None, out_dir: Path | None) -> Explanation:
        """The attention behind the score of (``user``, ``item``); without an item, the modality weights
        behind each of the user's top 10 recommendations (fusion models with modality attention)."""
        if item is None:
            items = [r.item for r in self.recommend(model, user, 10)]
            return explain_recommendations(model, self.dataset, user, items, out_dir)
        return explain_pair(model, self.dataset, user, item, out_dir)
