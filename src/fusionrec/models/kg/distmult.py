"""DistMult: a diagonal bilinear score.

Paper: Yang, Yih, He, Gao, Deng, "Embedding Entities and Relations for Learning and Inference in
Knowledge Bases", ICLR 2015. ``f(h, r, t) = <h, r, t> = sum_d h_d r_d t_d``; symmetric in h and t.
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor

from fusionrec.models.kg.base import BilinearKGModel, KGConfig, embedding_table
from fusionrec.registry import MODELS


class DistMultConfig(KGConfig):
    name: str = "distmult"
    regularization: float = Field(1e-5, ge=0, description="weight of the L2 penalty on the batch's embeddings")


@MODELS.register("distmult", config=DistMultConfig, task="kg", paper="Yang et al., ICLR 2015", modalities="none")
class DistMult(BilinearKGModel):
    """DistMult (Yang et al., 2015).

    Args:
        num_entities: E. num_relations: R. dim: D (200). regularization: L2 weight (1e-5).

    Shapes:
        score_queries: entities (B,), relations (B,) in [0, 2R) -> (B, E).

    Note:
        Trained with the logistic (softplus) loss over sampled negatives and an L2 penalty on the
        embeddings a batch uses, as ComplEx's paper trains it; the DistMult paper used a margin
        loss. The score is symmetric, so a head query is answered with the same function.
    """

    def __init__(self, num_entities: int, num_relations: int, dim: int = 200, regularization: float = 1e-5):
        super().__init__()
        self.num_entities, self.num_relations, self.regularization = num_entities, num_relations, regularization
        self.entity = embedding_table(num_entities, dim)
        self.relation = embedding_table(num_relations, dim)

    @classmethod
    def from_dataset(cls, config: DistMultConfig, dataset) -> DistMult:
        return cls(dataset.num_items, len(dataset.meta["relations"]), config.dim, config.regularization)

    def query_vectors(self, entities: Tensor, relations: Tensor) -> Tensor:
        return self.entity(entities) * self.relation(self.base_relation(relations))  # (B, D)
