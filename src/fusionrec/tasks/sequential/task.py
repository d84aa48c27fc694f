"""Sequential next-item recommendation.

Protocol: each user's interactions are ordered by time (``data.split.method=loo``: the last is the
test target and the one before it the validation target; ``temporal`` / ``global_time``: the
per-user or global tail; ``cold_user``: users with few interactions are held out as new users,
whose earlier interactions are the input and whose last is the target). The model reads the user's
sequence before the target: the training sequence when validating, training + validation items
when testing (a new user: its own earlier items), truncated to the model's ``max_length`` most
recent items, and ranks *all* items. With ``task.mask_history`` (default) the items of the user's
whole input history are not candidates; without it they are ranked too (RecBole's sequential
convention). Every target of the split counts (one under leave-one-out; several under a temporal
split, where Recall and NDCG average over them). Ties are ranked pessimistically.

Training: one sample per user sequence per epoch (not one per prefix; ``task.sequence_windows=all``:
every window): next-item (SASRec: every slot predicts the item after it) or Cloze (BERT4Rec: a random
share of slots is masked and predicted). What the batches hold is the model's typed request,
:class:`fusionrec.models.sequential.common.SequenceSampling` (``model_config.sampling()``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import Tensor

from fusionrec.data.batches import SequenceBatch
from fusionrec.data.dataset import Dataset
from fusionrec.data.sequences import side_info, user_sequences, view
from fusionrec.errors import ConfigError
from fusionrec.metrics.full_ranking import EvalResult, Scorer, evaluate_full_ranking, sample_users, shard_users
from fusionrec.models.base import Recommender
from fusionrec.models.sequential.common import SequentialConfig
from fusionrec.registry import TASKS
from fusionrec.tasks.base import Answer, Explanation, Recommendation, model_device
from fusionrec.tasks.ranking import RankingConfig, RankingTask, top_items
from fusionrec.tasks.sequential.explain import attention_reasons, sequence_explanation
from fusionrec.tasks.sequential.sampler import SequenceSampler


class SequentialTaskConfig(RankingConfig):
    """The ``task:`` section of sequential runs."""

    moved_from_train: ClassVar[tuple[str, ...]] = RankingConfig.moved_from_train + ("mask_history", "sequence_windows")

    negative_pool: Literal["train", "all"] = Field(
        "train",
        description="items drawn as negatives for sampled losses: those occurring in training (as top-K), or all items",
    )
    mask_history: bool = Field(
        True,
        description="rank only items outside the user's input history (false: "
        "RecBole's sequential convention, history items are ranked too)",
    )
    sequence_windows: Literal["last", "all"] = Field(
        "last",
        description="training samples: each user's last max_length items (the papers' samplers), "
        "or all windows of max_length targets, so an epoch uses every training interaction once",
    )


@TASKS.register(
    "sequential",
    config=SequentialTaskConfig,
    description="next-item ranking over all items from time-ordered user sequences",
)
class SequentialTask(RankingTask):
    """Loaders and the full-ranking next-item protocol for the models registered with ``task="sequential"``."""

    name = "sequential"
    default_metric = "ndcg@20"
    default_batch_size = 128  # user sequences

    @classmethod
    def build(
        cls, config: SequentialTaskConfig, train: Any, dataset: Dataset, model_config: Any = None
    ) -> SequentialTask:
        if not isinstance(model_config, SequentialConfig):
            raise ConfigError(
                f"the sequential task needs a sequential model's config (a SequentialConfig), "
                f"got {type(model_config).__name__}"
            )
        want = model_config.sampling()
        return cls(
            dataset,
            objective=want.objective,
            max_length=want.max_length,
            mask_ratio=want.mask_ratio,
            num_negatives=want.num_negatives,
            shared_negatives=want.shared_negatives,
            item_side=want.item_side,
            behaviour_side=want.behaviour_side,
            batch_size=train.batch_size or cls.default_batch_size,
            mask_history=config.mask_history,
            windows=config.sequence_windows,
            negative_pool=config.negative_pool,
            **cls.evaluation_arguments(config, train),
        )

    def __init__(
        self,
        dataset: Dataset,
        *,
        objective: Literal["next", "cloze"] = "next",
        max_length: int = 50,
        mask_ratio: float = 0.2,
        num_negatives: int = 0,
        shared_negatives: bool = False,
        item_side: Sequence[str] = (),
        behaviour_side: Sequence[str] = (),
        batch_size: int = 128,
        seed: int = 0,
        ks: Sequence[int] = (10, 20),
        metrics: Sequence[str] = ("hit_rate", "ndcg", "mrr", "recall"),
        eval_batch_size: int = 1024,
        mask_history: bool = True,
        windows: Literal["last", "all"] = "last",
        valid_users: int | None = None,
        metric: str = "ndcg@20",
        negative_pool: Literal["train", "all"] = "train",
    ) -> None:
        self.dataset = dataset
        self.metric = metric
        self.valid_users, self.seed = valid_users, seed
        self.ks = tuple(ks)
        self.metrics = tuple(metrics)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.mask_history = mask_history
        self.sequences = user_sequences(dataset)
        self.sampler = SequenceSampler(
            self.sequences,
            dataset.num_items,
            objective=objective,
            max_length=max_length,
            mask_ratio=mask_ratio,
            num_negatives=num_negatives,
            shared_negatives=shared_negatives,
            side=side_info(dataset, tuple(item_side), tuple(behaviour_side)),
            batch_size=batch_size,
            seed=seed,
            windows=windows,
            negative_pool=negative_pool,
        )
        if not len(self.sampler.train_users):
            raise ConfigError(
                f"{dataset.name}: no user has a training sequence to learn from "
                f"({'two items' if objective == 'next' else 'one item'} needed)"
            )
        self.protocol = (
            f"next-item full ranking over all items; input = the last {max_length} items before the target "
            f"(valid: train items; test: train + valid items; new users: their earlier items); "
            + ("the input history's items are masked" if mask_history else "history items are not masked")
            + "; ties ranked pessimistically"
        )

    @property
    def num_batches(self) -> int:
        return len(self.sampler)

    def train_batches(self, epoch: int) -> Iterator[SequenceBatch]:
        return self.sampler.epoch(epoch)

    def score_batch(self, users: Tensor, items: Tensor | None = None, split: str = "valid") -> SequenceBatch:
        """The input sequences of ``users`` for predicting their ``split`` targets (``valid``,
        ``test``, or ``next``: after all their interactions), scored against ``items`` (all if None)."""
        rows = np.asarray(torch.as_tensor(users).cpu(), dtype=np.int64).reshape(-1)
        return self.sampler.score_batch(rows, split, items)

    def scorer(self, model: Recommender, split: str = "valid") -> Scorer:
        """``(users, items | None) -> (B, C)`` scores of ``model`` from each user's ``split`` input."""
        device = model_device(model)

        def score(users: Tensor, items: Tensor | None) -> Tensor:
            return model.score(self.score_batch(users, items, split).to(device))  # type: ignore[arg-type]

        return score

    @torch.no_grad()
    def attention_maps(self, model: Recommender, users: Tensor, split: str = "next") -> dict[str, Tensor]:
        """The model's attention maps over each user's ``split`` input sequence (default: all its
        interactions, i.e. the sequence behind its next recommendation), in eval mode, plus
        ``items`` (B, L): the tokens the maps refer to (-1 padding, ``num_items`` = the slot to predict)."""
        was_training = model.training
        model.eval()
        try:
            batch = self.score_batch(users, None, split)
            maps = model.explain(batch.to(model_device(model)))  # type: ignore[call-arg,arg-type]  # sequences
        finally:
            model.train(was_training)
        return {"items": batch.items, **(maps or {})}

    def targets(self, split: str) -> sp.csr_matrix:
        """(U, I) binary matrix of each user's ``split`` targets."""
        _, _, begin, end = view(self.sequences, split)
        return self._ranges_matrix(begin, end)

    def _targets_evaluated(self, split: str) -> sp.csr_matrix:
        targets = self.targets(split)
        return sample_users(targets, self.valid_users, self.seed) if split == "valid" else targets

    def history(self, split: str) -> sp.csr_matrix:
        """(U, I) binary matrix of the items in each user's whole (untruncated) ``split`` input."""
        begin, end, _, _ = view(self.sequences, split)
        return self._ranges_matrix(begin, end)

    def _ranges_matrix(self, begin: np.ndarray, end: np.ndarray) -> sp.csr_matrix:
        lengths = end - begin
        users = np.repeat(np.arange(len(begin)), lengths)
        offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        rows = np.repeat(begin, lengths) + offsets  # every row of every range
        data = np.ones(len(rows), dtype=np.float32)
        m = sp.csr_matrix((data, (users, self.sequences.items[rows])), shape=(len(begin), self.dataset.num_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    @torch.no_grad()
    def evaluate(
        self,
        model: Recommender,
        split: str = "valid",
        device: str | torch.device = "cpu",
        shard: tuple[int, int] | None = None,
    ) -> EvalResult:
        """Full ranking of each user's ``split`` targets (``valid`` or ``test``) from its input sequence
        (``shard``: one data-parallel rank's users)."""
        if split not in ("valid", "test"):
            raise ConfigError(f"split must be valid or test, got {split!r}")
        was_training = model.training
        model.eval()
        try:
            targets = self._targets_evaluated(split)
            return evaluate_full_ranking(
                self.scorer(model, split),
                targets if shard is None else shard_users(targets, *shard),
                self.history(split) if self.mask_history else None,
                ks=self.ks,
                metrics=self.metrics,
                user_batch_size=self.eval_batch_size,
                device=device,
            )
        finally:
            model.train(was_training)

    # ------------------------------------------------------------------ using a trained model
    def recommend(
        self, model: Recommender, user: int, k: int, include_seen: bool = False, with_reasons: bool = False
    ) -> list[Recommendation]:
        """The ``k`` best next items after everything ``user`` did (its whole sequence), its items
        excluded unless ``include_seen``. The reason is the most attended item of the sequence (the
        same for every candidate: the attention reads the history, not the candidate)."""
        return self.recommender(model)(user, k, include_seen, with_reasons)

    def recommender(self, model: Recommender) -> Answer:
        """:meth:`recommend` with the interacted-items matrix built once."""
        interacted = self.dataset.matrix("train", "valid", "test")
        scorer = self.scorer(model, "next")

        def answer(user: int, k: int, include_seen: bool = False, with_reasons: bool = False) -> list[Recommendation]:
            recs = top_items(scorer, user, k, None if include_seen else interacted[[user]])
            if not with_reasons or not recs:
                return recs
            reason = attention_reasons(self.attention_maps(model, torch.tensor([user])), self.dataset)
            return [Recommendation(r.item, r.score, reason) for r in recs]

        return answer

    @torch.no_grad()
    def recommend_from_history(
        self, model: Recommender, items: list[int], k: int, with_reasons: bool = False
    ) -> list[Recommendation]:
        """The ``k`` best next items after ``items`` (a new user's history, most recent last; its last
        ``max_length`` items are read), the history's items excluded. The reason is the most attended item."""
        if not items:
            raise ConfigError("a history-only recommendation needs at least one item in the history")
        was_training = model.training
        model.eval()
        try:
            device = model_device(model)

            def score(users: Tensor, candidates: Tensor | None) -> Tensor:
                batch = self.sampler.history_batch([np.asarray(items)], candidates)
                return model.score(batch.to(device))  # type: ignore[arg-type]  # sequences, not user ids

            seen = sp.csr_matrix(
                (np.ones(len(set(items)), dtype=np.float32), ([0] * len(set(items)), sorted(set(items)))),
                shape=(1, self.dataset.num_items),
            )
            recs = top_items(score, 0, k, seen)
            if not with_reasons or not recs:
                return recs
            batch = self.sampler.history_batch([np.asarray(items)])
            maps = model.explain(batch.to(device))  # type: ignore[call-arg,arg-type]  # sequences
        finally:
            model.train(was_training)
        reason = attention_reasons({"items": batch.items, **(maps or {})}, self.dataset)
        return [Recommendation(r.item, r.score, reason) for r in recs]

    def explain(self, model: Recommender, user: int, item: int | None, out_dir: Path | None) -> Explanation:
        """The self-attention over ``user``'s sequence behind its next recommendation (``item`` is not
        needed: the attention does not depend on the candidate), as a heat map in ``out_dir``."""
        maps = self.attention_maps(model, torch.tensor([user]))
        names = getattr(model, "names", None) or getattr(model, "modality_names", None) or ()
        return sequence_explanation(maps, self.dataset, user, type(model).__name__, out_dir, names=tuple(names))
