"""DCN-v2: Wang, Shivanna, Cheng, Jain, Lin, Hong, Chi, "DCN V2: Improved Deep & Cross Network and
Practical Lessons for Web-scale Learning to Rank Systems", WWW 2021.

Cross network ``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l`` (Eq. 1) over the concatenated field vectors
``x_0``, in parallel with a DNN (the "parallel" structure, Fig. 1b); both outputs are concatenated
and mapped to the logit.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.models.ctr.common import CTRBatch, CTRConfig, CTRModel, FieldEmbedding, FieldLayout, layout_of, mlp
from fusionrec.nn.ctr import CrossLayerV2
from fusionrec.registry import MODELS


class DCNV2Config(CTRConfig):
    name: str = "dcn_v2"
    num_cross_layers: int = Field(3, ge=1)
    rank: int | None = Field(None, gt=0, description="low-rank cross matrices (DCN-Mix without experts); None: full")
    hidden_dims: tuple[int, ...] = (256, 128)
    dropout: float = Field(0.1, ge=0, lt=1)


@MODELS.register("dcn_v2", config=DCNV2Config, task="ctr", paper="Wang et al., WWW 2021", modalities="none")
class DCNV2(CTRModel):
    """DCN-v2, parallel structure.

    Args:
        layout: the fitted field layout. embedding_dim: D (16). num_cross_layers: 3. rank: None (full
        W) or the low-rank size. hidden_dims: the DNN ((256, 128)). dropout: 0.1. embedding_reg: 1e-6.

    Shapes:
        batch -> x_0 (B, F*D) -> cross (B, F*D) || deep (B, H) -> (B,).

    Note:
        No mixture of low-rank experts (DCN-Mix); content fields are not inputs.
    """

    def __init__(
        self,
        layout: FieldLayout,
        embedding_dim: int = 16,
        num_cross_layers: int = 3,
        rank: int | None = None,
        hidden_dims: tuple[int, ...] = (256, 128),
        dropout: float = 0.1,
        embedding_reg: float = 1e-6,
    ) -> None:
        super().__init__()
        self.fields_in = FieldEmbedding(layout, embedding_dim, linear=False)
        width = self.fields_in.num_fields * embedding_dim
        self.cross = nn.ModuleList(CrossLayerV2(width, rank) for _ in range(num_cross_layers))
        self.deep, deep_width = mlp(width, hidden_dims, dropout)
        self.out = nn.Linear(width + deep_width, 1)
        self.embedding_reg = embedding_reg

    @classmethod
    def from_dataset(cls, config: DCNV2Config, dataset: Any) -> DCNV2:
        return cls(
            layout_of(dataset, "dcn_v2"),
            config.embedding_dim,
            config.num_cross_layers,
            config.rank,
            config.hidden_dims,
            config.dropout,
            config.embedding_reg,
        )

    def logits(self, batch: CTRBatch) -> Tensor:
        x0 = self.fields_in(batch).flatten(1)  # (B, F*D)
        x = x0
        for layer in self.cross:
            x = layer(x0, x)  # (B, F*D)
        deep = self.deep(x0)  # (B, H)
        return self.out(torch.cat([x, deep], -1)).squeeze(-1)  # (B, F*D + H) -> (B,)
