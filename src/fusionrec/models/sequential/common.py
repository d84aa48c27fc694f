"""What the sequential models share: their config base, the typed request a model makes of the
sequential task's sampler (:class:`SequenceSampling`), and small helpers.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator
from torch import Tensor, nn

from fusionrec.data.batches import PAD_ITEM, SequenceBatch
from fusionrec.errors import FusionrecError
from fusionrec.models.base import LossOutput, ModelConfig, Recommender, Scorer
from fusionrec.nn.losses import item_prediction_loss
from fusionrec.nn.sequence import item_scores, last_slot, target_slots

SequenceLoss = Literal["ce", "bce", "bpr", "sampled_ce"]


@dataclass(frozen=True)
class SequenceSampling:
    """What a sequential model needs in its training and scoring batches (read by the sequential task).

    ``objective``: ``next`` (every slot predicts the item after it) or ``cloze`` (a ``mask_ratio``
    share of slots is masked and predicted); ``max_length`` most recent items per input;
    ``num_negatives`` per target (0: none, the full softmax), shared by the batch with
    ``shared_negatives``; ``item_side`` / ``behaviour_side``: side information carried in the batch
    (:func:`fusionrec.data.sequences.side_info`)."""

    objective: Literal["next", "cloze"] = "next"
    max_length: int = 50
    mask_ratio: float = 0.2
    num_negatives: int = 0
    shared_negatives: bool = False
    item_side: tuple[str, ...] = ()
    behaviour_side: tuple[str, ...] = ()


class SequentialConfig(ModelConfig):
    """Fields every sequential model has.

    ``loss``: ``ce`` (softmax over all items, default), or with ``num_negatives`` sampled negatives
    per target: ``bce`` (SASRec's original loss), ``bpr``, ``sampled_ce``.
    ``inner_dim`` (feed-forward width) and ``attention_dropout`` default per model.
    """

    objective: ClassVar[Literal["next", "cloze"]] = "next"

    hidden_dim: int = Field(64, gt=0)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(1, ge=1)
    inner_dim: int | None = Field(None, gt=0)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    attention_dropout: float | None = Field(None, ge=0.0, lt=1.0)
    max_length: int = Field(50, ge=2)
    loss: SequenceLoss = "ce"
    num_negatives: int = Field(1, gt=0, description="negatives per target for bce / bpr / sampled_ce")
    shared_negatives: bool = Field(
        False,
        description="draw num_negatives items per batch, shared by every target (scored by one matrix "
        "product; a target's own item is masked), instead of num_negatives per target: "
        "the cheap sampled softmax for large catalogues",
    )

    # models that score each target against its own negatives (MARank, MML) set this and refuse shared ones
    per_target_negatives: ClassVar[bool] = False

    @model_validator(mode="after")
    def _shared_negatives_supported(self) -> SequentialConfig:
        if self.shared_negatives and self.per_target_negatives:
            raise ValueError(
                f"{self.name} scores each target against its own negatives; shared_negatives is for "
                "SASRec, BERT4Rec and NOVA-BERT"
            )
        return self

    def sampling(self) -> SequenceSampling:
        """The batches this model trains and scores on (configs with more fields extend it)."""
        return SequenceSampling(
            objective=self.objective,
            max_length=self.max_length,
            num_negatives=0 if self.loss == "ce" else self.num_negatives,
            shared_negatives=self.shared_negatives,
        )

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> SequentialConfig:
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"hidden_dim={self.hidden_dim} must be divisible by num_heads={self.num_heads}")
        return self


class ClozeConfig(SequentialConfig):
    """Config of a model trained by Cloze (masked-item) prediction: ``mask_ratio`` of the slots."""

    objective: ClassVar[Literal["next", "cloze"]] = "cloze"
    mask_ratio: float = Field(0.2, gt=0.0, lt=1.0, description="share of slots masked in Cloze training")

    def sampling(self) -> SequenceSampling:
        return replace(super().sampling(), mask_ratio=self.mask_ratio)


def embedding_index(tokens: Tensor, num_items: int) -> Tensor:
    """Batch tokens -> rows of an item table laid out as [items..., mask token, padding].

    Items keep their index, the mask token (``I``) is row I, padding (-1) row I + 1. Shapes: (B, L)."""
    return tokens.masked_fill(tokens == PAD_ITEM, num_items + 1)


def no_user_scorer(name: str) -> Scorer:
    """Sequential models score sequences, not user ids: there is no ``(users, items)`` scorer."""
    raise FusionrecError(
        f"{name} scores user sequences, not user ids; score through the sequential task: "
        "SequentialTask.scorer(model, split) or model.score(task.score_batch(users))"
    )


class ItemPredictionModel(Recommender):
    """Loss and scores of a sequence encoder whose slots predict items through the item table.

    Subclasses provide ``encode(batch) -> ((B, L, D), maps)``, ``item_embedding`` (an ``nn.Embedding``
    whose first I rows are the items), ``item_weight`` (those rows, (I, D)), ``loss_kind``,
    optionally ``item_bias`` (I,) and ``transform(hidden)``, the head between a slot's state and the
    item table (identity by default). Training scores the target slots, ranking the last slot.
    """

    item_embedding: nn.Embedding
    loss_kind: str

    @property
    @abc.abstractmethod
    def item_weight(self) -> Tensor:
        """The item rows of ``item_embedding`` (I, D)."""

    @abc.abstractmethod
    def encode(self, batch: SequenceBatch) -> tuple[Tensor, Any]:
        """Slot states (B, L, D) and the model's attention maps."""

    def transform(self, hidden: Tensor) -> Tensor:
        return hidden

    def lookup_embeddings(self) -> tuple[nn.Embedding, ...]:
        """With a sampled loss the item table (``item_embedding``: items first, then the mask token and
        padding) is read row by row, by the inputs, the targets and their negatives, so it may train with
        sparse gradients; the full softmax (``ce``) reads all of it."""
        return () if self.loss_kind == "ce" else (self.item_embedding,)

    def loss(self, batch: SequenceBatch) -> LossOutput:
        assert batch.targets is not None, f"{type(self).__name__}.loss needs a training batch with targets"
        hidden, _ = self.encode(batch)
        h, targets, negatives = target_slots(hidden, batch.targets, batch.negatives)  # (T, D), (T,), (T, N)
        loss = item_prediction_loss(
            self.transform(h),
            self.item_weight,
            targets,
            negatives,
            self.loss_kind,
            getattr(self, "item_bias", None),
            lookup=self.item_embedding,
        )
        return LossOutput(loss, {self.loss_kind: loss.detach()})

    def score(self, batch: SequenceBatch) -> Tensor:
        hidden, _ = self.encode(batch)
        return item_scores(
            self.transform(last_slot(hidden)), self.item_weight, batch.candidates, getattr(self, "item_bias", None)
        )  # (B, C)

    def scorer(self) -> Scorer:
        return no_user_scorer(type(self).__name__)
