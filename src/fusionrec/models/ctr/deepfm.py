"""DeepFM: Guo, Tang, Ye, Li, He, "DeepFM: A Factorization-Machine based Neural Network for CTR
Prediction", IJCAI 2017.

``logit = y_FM + y_DNN``: the FM part (first order + pairwise inner products of the field vectors)
and an MLP on the concatenated field vectors share the same embeddings.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.errors import ConfigError
from fusionrec.models.ctr.common import CTRBatch, CTRConfig, CTRModel, FieldEmbedding, FieldLayout, layout_of, mlp
from fusionrec.nn.ctr import fm_second_order
from fusionrec.registry import MODELS


class DeepFMConfig(CTRConfig):
    name: str = "deepfm"
    hidden_dims: tuple[int, ...] = (256, 128)
    dropout: float = Field(0.1, ge=0, lt=1)
    use_content: bool = Field(False, description="item content vectors (image/text) as dense fields")


@MODELS.register("deepfm", config=DeepFMConfig, task="ctr", paper="Guo et al., IJCAI 2017", modalities="none")
class DeepFM(CTRModel):
    """DeepFM: an FM and a DNN over shared field embeddings.

    Args:
        layout: the fitted field layout. embedding_dim: D (16). hidden_dims: the DNN ((256, 128)).
        dropout: in the DNN (0.1). use_content: project each item content vector (an image or text
        embedding; regions mean pooled) to D and use it as one more field, in the FM and the DNN
        (``deepfm_content``; default False). embedding_reg: L2 on read rows (1e-6).

    Shapes:
        batch -> field vectors (B, F, D) -> FM (B,) + DNN (B, F*D) -> (B,).

    Note:
        The paper's DNN is 400-400-400 with dropout 0.5 on Criteo; the defaults here are smaller.
        A missing content vector gives a zero field vector (its presence is the mask, so the model
        is told, not fed a fabricated image).
    """

    def __init__(
        self,
        layout: FieldLayout,
        embedding_dim: int = 16,
        hidden_dims: tuple[int, ...] = (256, 128),
        dropout: float = 0.1,
        use_content: bool = False,
        embedding_reg: float = 1e-6,
    ) -> None:
        super().__init__()
        self.fields_in = FieldEmbedding(layout, embedding_dim, use_content)
        self.deep, width = mlp(self.fields_in.num_fields * embedding_dim, hidden_dims, dropout)
        self.deep_out = nn.Linear(width, 1)
        self.bias = nn.Parameter(torch.zeros(()))
        self.embedding_reg = embedding_reg

    @classmethod
    def from_dataset(cls, config: DeepFMConfig, dataset: Any) -> DeepFM:
        layout = layout_of(dataset, config.name)
        if config.use_content and not layout.of_kind("content"):
            raise ConfigError(
                f"{config.name} uses item content fields, and task.fields has none; add one, e.g. "
                "task.fields.image.source=modality"
            )
        return cls(
            layout, config.embedding_dim, config.hidden_dims, config.dropout, config.use_content, config.embedding_reg
        )

    def logits(self, batch: CTRBatch) -> Tensor:
        vectors = self.fields_in(batch)  # (B, F, D)
        fm = self.bias + self.fields_in.linear(batch) + fm_second_order(vectors)  # (B,)
        deep = self.deep_out(self.deep(vectors.flatten(1))).squeeze(-1)  # (B,)
        return fm + deep
