"""What the sequential models share: the config fields the sequential task reads, and small helpers.

The task (:mod:`fusionrec.tasks.sequential`) builds batches from a model config's ``objective``,
``max_length``, ``mask_ratio``, ``loss``/``num_negatives`` and side-information names.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator
from torch import Tensor

from fusionrec.data.batches import PAD_ITEM
from fusionrec.errors import FusionrecError
from fusionrec.models.base import ModelConfig, Scorer

SequenceLoss = Literal["ce", "bce", "bpr", "sampled_ce"]


class SequentialConfig(ModelConfig):
    """Fields every sequential model has.

    ``loss``: ``ce`` (softmax over all items, default), or with ``num_negatives`` sampled negatives
    per target: ``bce`` (SASRec's original loss), ``bpr``, ``sampled_ce``.
    ``inner_dim`` (feed-forward width) and ``attention_dropout`` default per model.
    """

    objective: ClassVar[str] = "next"

    hidden_dim: int = Field(64, gt=0)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(1, ge=1)
    inner_dim: int | None = Field(None, gt=0)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    attention_dropout: float | None = Field(None, ge=0.0, lt=1.0)
    max_length: int = Field(50, ge=2)
    loss: SequenceLoss = "ce"
    num_negatives: int = Field(1, gt=0, description="negatives per target for bce / bpr / sampled_ce")

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> "SequentialConfig":
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"hidden_dim={self.hidden_dim} must be divisible by num_heads={self.num_heads}")
        return self


def embedding_index(tokens: Tensor, num_items: int) -> Tensor:
    """Batch tokens -> rows of an item table laid out as [items..., mask token, padding].

    Items keep their index, the mask token (``I``) is row I, padding (-1) row I + 1. Shapes: (B, L)."""
    return tokens.masked_fill(tokens == PAD_ITEM, num_items + 1)


def no_user_scorer(name: str) -> Scorer:
    """Sequential models score sequences, not user ids: there is no ``(users, items)`` scorer."""
    raise FusionrecError(f"{name} scores user sequences, not user ids; score through the sequential task: "
                         "SequentialTask.scorer(model, split) or model.score(task.score_batch(users))")
