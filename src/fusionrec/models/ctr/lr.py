"""Logistic regression over the CTR fields: the additive baseline.

``logit = b + sum_f w_f(x_f)``: one weight per categorical code, the mean weight of a sequence's
tokens, ``w_f x_f`` per numeric field. No interactions between fields.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from fusionrec.models.ctr.common import CTRBatch, CTRConfig, CTRModel, FieldEmbedding, FieldLayout, layout_of
from fusionrec.registry import MODELS


class LRConfig(CTRConfig):
    name: str = "lr"


@MODELS.register("lr", config=LRConfig, task="ctr", paper="logistic regression (CTR baseline)", modalities="none")
class LR(CTRModel):
    """Logistic regression on the field codes.

    Args:
        layout: the task's fitted field layout. embedding_reg: L2 on the weights a batch reads.

    Shapes:
        batch -> logits (B,).

    Note:
        Content fields (image/text vectors) are not inputs; ``deepfm_content`` shows what they add.
    """

    def __init__(self, layout: FieldLayout, embedding_reg: float = 0.0) -> None:
        super().__init__()
        self.fields_in = FieldEmbedding(layout, 1, vectors=False)
        self.bias = nn.Parameter(torch.zeros(()))
        self.embedding_reg = embedding_reg

    @classmethod
    def from_dataset(cls, config: LRConfig, dataset: Any) -> LR:
        return cls(layout_of(dataset, "lr"), config.embedding_reg)

    def logits(self, batch: CTRBatch) -> Tensor:
        return self.bias + self.fields_in.linear(batch)  # (B,)
