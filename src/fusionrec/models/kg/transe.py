"""TransE: relations as translations between entity embeddings.

Paper: Bordes, Usunier, Garcia-Durán, Weston, Yakhnenko, "Translating Embeddings for Modeling
Multi-relational Data", NeurIPS 2013. ``f(h, r, t) = -||h + r - t||_p``, trained with the margin
ranking loss ``max(0, margin - f(pos) + f(neg))`` against sampled corrupted triples.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from fusionrec.models.base import LossOutput
from fusionrec.models.kg.base import (
    KGBatch,
    KGConfig,
    KGModel,
    embedding_table,
    loss_output,
    margin_ranking_loss,
    positive_and_negative_scores,
)
from fusionrec.registry import MODELS


class TransEConfig(KGConfig):
    name: str = "transe"
    norm: int = Field(1, ge=1, le=2, description="p of the distance: 1 (L1, PyKEEN's default) or 2")
    margin: float = Field(1.0, gt=0, description="margin of the ranking loss")


@MODELS.register("transe", config=TransEConfig, task="kg", paper="Bordes et al., NeurIPS 2013", modalities="none")
class TransE(KGModel):
    """TransE (Bordes et al., 2013).

    Args:
        num_entities: E. num_relations: R. dim: D (200). norm: p of the distance (1). margin: 1.0.

    Shapes:
        score_queries: entities (B,), relations (B,) in [0, 2R) -> (B, E).

    Note:
        As in the paper's algorithm, each training step first projects the entities it uses back onto
        the unit sphere; scores also normalise (a no-op for trained rows), so entities never touched by
        training are scored on the sphere too. A head query ``(?, r, t)`` is answered as ``-||t - r - h||``, the same function.
        Initialisation as in the paper: uniform in ``[-6/sqrt(D), 6/sqrt(D)]``, relation vectors then
        scaled to unit L2 norm.
    """

    def __init__(self, num_entities: int, num_relations: int, dim: int = 200, norm: int = 1, margin: float = 1.0):
        super().__init__()
        self.num_entities, self.num_relations, self.norm, self.margin = num_entities, num_relations, norm, margin
        bound = 6 / math.sqrt(dim)
        self.entity = embedding_table(num_entities, dim, bound)
        self.relation = embedding_table(num_relations, dim, bound)
        with torch.no_grad():  # the paper normalises relations once, at initialisation
            self.relation.weight.copy_(F.normalize(self.relation.weight, dim=-1))

    @classmethod
    def from_dataset(cls, config: TransEConfig, dataset) -> TransE:
        return cls(dataset.num_items, len(dataset.meta["relations"]), config.dim, config.norm, config.margin)

    def _queries(self, entities: Tensor, relations: Tensor) -> Tensor:
        sign = 1.0 - 2.0 * self.is_inverse(relations).float()  # head queries translate backwards
        head = F.normalize(self.entity(entities), dim=-1)  # (B, D)
        return head + sign[:, None] * self.relation(self.base_relation(relations))  # (B, D)

    def score_queries(self, entities: Tensor, relations: Tensor) -> Tensor:
        answers = F.normalize(self.entity.weight, dim=-1)  # (E, D)
        return -torch.cdist(self._queries(entities, relations), answers, p=float(self.norm))  # (B, E)

    def score_candidates(self, entities: Tensor, relations: Tensor, candidates: Tensor) -> Tensor:
        answers = F.normalize(self.entity(candidates), dim=-1)  # (B, K, D)
        diff = self._queries(entities, relations)[:, None, :] - answers  # (B, K, D)
        return -diff.norm(p=self.norm, dim=-1)  # (B, K)

    def lookup_embeddings(self) -> tuple[nn.Embedding, ...]:
        return (self.entity, self.relation)  # the loss reads them row by row: train.sparse_embeddings=true is allowed

    def loss(self, batch: KGBatch) -> LossOutput:
        with torch.no_grad():  # the paper's loop: each step first puts the entities it uses back on the unit sphere
            used = torch.cat(
                [batch.entities, batch.targets, *([] if batch.negatives is None else [batch.negatives.flatten()])]
            )
            self.entity.weight[used] = F.normalize(self.entity.weight[used], dim=-1)
        positive, negative = positive_and_negative_scores(self, batch)
        return loss_output(margin_ranking_loss(positive, negative, self.margin), "margin")
