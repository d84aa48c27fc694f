"""The thin base every model subclasses."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from fusionrec.config import StrictConfig
from fusionrec.data.batches import UserBatch

Scorer = Callable[[Tensor, "Tensor | None"], Tensor]


@dataclass
class LossOutput:
    """A model's training loss and its named parts (logged per epoch)."""

    loss: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)


class ModelConfig(StrictConfig):
    """Base of model configs; ``name`` selects the model in the registry."""

    name: str


class Recommender(nn.Module, abc.ABC):
    """A model: ``loss(batch) -> LossOutput`` for training and ``score(batch) -> (B, C)`` for ranking.

    Models are built by ``from_dataset(config, dataset)``, which reads what they need (sizes,
    features, graphs) and passes tensors to ``__init__``: no file I/O inside modules. A model names
    its task family once, in ``@MODELS.register(name, task="topk", ...)``; batches come from that task.
    """

    @classmethod
    @abc.abstractmethod
    def from_dataset(cls, config: Any, dataset: Any) -> Recommender:
        """Build the model from its config and a prepared Dataset."""

    @abc.abstractmethod
    def loss(self, batch: Any) -> LossOutput:
        """Training loss of one batch."""

    @abc.abstractmethod
    def score(self, batch: Any) -> Tensor:
        """The model's scores for a batch of its family: ``(B, C)`` scores of ``batch.users`` against
        ``batch.items`` (all items when None) for top-K (a ``UserBatch``), ``(B, C)`` next-item scores of
        sequences for the sequential family, one score per row ``(B,)`` for the pointwise families."""

    def scorer(self) -> Scorer:
        """A function ``(users, items | None) -> (B, C)`` for one evaluation pass.

        Models whose scores come from precomputable representations (graph propagation) override
        this to compute them once per evaluation rather than once per user batch.
        """
        return lambda users, items: self.score(UserBatch(users, items))

    def lookup_embeddings(self) -> tuple[nn.Embedding, ...]:
        """The embedding tables that ``loss`` only reads row by row (never as a whole table), which
        may therefore train with sparse gradients (``train.sparse_embeddings``); none by default."""
        return ()

    def on_fit_start(self, task: Any) -> None:
        """Called once by ``fit`` before the first epoch (also on resume) with the run's task, so a model
        with its own inner loop (e.g. MCPTR's pre-training) can follow the task's protocol settings
        (``task.negative_items()``: the items negatives may be drawn from); nothing by default."""

    def on_epoch_start(self, epoch: int) -> None:
        """Called before each training epoch (e.g. to resample a graph); nothing by default."""

    def extra_record(self) -> dict[str, Any]:
        """Model-specific facts for the run record (``record["model_extra"]``, e.g. a pre-training
        history); nothing by default."""
        return {}

    def explain(self, users: Tensor, items: Tensor) -> dict[str, Tensor] | None:
        """Attention weights behind the scores of (user, item) pairs, for models that have them."""
        return None


class EmbeddingScorer:
    """Scores ``<u, i> (+ b_i)`` from a user table (U, D), an item table (I, D) and an optional item bias (I,).

    A scorer (``(users, items | None) -> (B, C)``) that also exposes its factors, so serving can put the
    items in an approximate nearest-neighbour index and ``/similar`` can compare item vectors."""

    def __init__(self, user_emb: Tensor, item_emb: Tensor, item_bias: Tensor | None = None) -> None:
        self.user_emb, self.item_emb, self.item_bias = user_emb, item_emb, item_bias

    def __call__(self, users: Tensor, items: Tensor | None) -> Tensor:
        u = self.user_emb[users]  # (B, D)
        it = self.item_emb if items is None else self.item_emb[items]  # (C, D)
        scores = u @ it.T  # (B, C)
        if self.item_bias is not None:
            scores = scores + (self.item_bias if items is None else self.item_bias[items])
        return scores


def embedding_scorer(user_emb: Tensor, item_emb: Tensor, item_bias: Tensor | None = None) -> Scorer:
    """Scorer for models whose score is ``<u, i> (+ b_i)``. Shapes: user_emb (U, D), item_emb (I, D), item_bias (I,)."""
    return EmbeddingScorer(user_emb, item_emb, item_bias)
