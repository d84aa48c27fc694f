"""FM: Rendle, "Factorization Machines", ICDM 2010.

``logit = w_0 + sum_f w_f(x_f) + sum_{f<g} <v_f, v_g>`` over the field embeddings, the pairwise
term in O(F D) (:func:`fusionrec.nn.ctr.fm_second_order`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from fusionrec.models.ctr.common import CTRBatch, CTRConfig, CTRModel, FieldEmbedding, FieldLayout, layout_of
from fusionrec.nn.ctr import fm_second_order
from fusionrec.registry import MODELS


class FMConfig(CTRConfig):
    name: str = "fm"


@MODELS.register("fm", config=FMConfig, task="ctr", paper="Rendle, ICDM 2010", modalities="none")
class FM(CTRModel):
    """Factorization machine over field embeddings.

    Args:
        layout: the fitted field layout. embedding_dim: D (16). embedding_reg: L2 on read rows (1e-6).

    Shapes:
        batch -> field vectors (B, F, D) -> logits (B,).

    Note:
        Field-aware inputs: a multi-valued field is one field whose vector is the mean of its values'
        vectors (Rendle's one-hot/multi-hot x with the values' weights summing to 1); content fields
        are not inputs.
    """

    def __init__(self, layout: FieldLayout, embedding_dim: int = 16, embedding_reg: float = 1e-6) -> None:
        super().__init__()
        self.fields_in = FieldEmbedding(layout, embedding_dim)
        self.bias = nn.Parameter(torch.zeros(()))
        self.embedding_reg = embedding_reg

    @classmethod
    def from_dataset(cls, config: FMConfig, dataset: Any) -> FM:
        return cls(layout_of(dataset, "fm"), config.embedding_dim, config.embedding_reg)

    def logits(self, batch: CTRBatch) -> Tensor:
        vectors = self.fields_in(batch)  # (B, F, D)
        return self.bias + self.fields_in.linear(batch) + fm_second_order(vectors)  # (B,)
