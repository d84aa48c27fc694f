"""ComplEx: a bilinear score over complex embeddings, able to model asymmetric relations.

Paper: Trouillon, Welbl, Riedel, Gaussier, Bouchard, "Complex Embeddings for Simple Link
Prediction", ICML 2016. ``f(h, r, t) = Re(<h, r, conj(t)>)``, trained with the logistic loss over
sampled negatives and an L2 penalty.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from fusionrec.models.kg.base import BilinearKGModel, KGConfig, embedding_table
from fusionrec.registry import MODELS


class ComplExConfig(KGConfig):
    name: str = "complex"
    regularization: float = Field(1e-5, ge=0, description="weight of the L2 penalty on the batch's embeddings")


def complex_product(a: Tensor, b: Tensor) -> Tensor:
    """Elementwise product of complex vectors stored as ``[real | imaginary]`` halves of the last dim."""
    a_re, a_im = a.chunk(2, dim=-1)
    b_re, b_im = b.chunk(2, dim=-1)
    return torch.cat([a_re * b_re - a_im * b_im, a_re * b_im + a_im * b_re], dim=-1)


def conjugate(a: Tensor) -> Tensor:
    real, imaginary = a.chunk(2, dim=-1)
    return torch.cat([real, -imaginary], dim=-1)


@MODELS.register("complex", config=ComplExConfig, task="kg", paper="Trouillon et al., ICML 2016", modalities="none")
class ComplEx(BilinearKGModel):
    """ComplEx (Trouillon et al., 2016).

    Args:
        num_entities: E. num_relations: R. dim: D complex numbers (200), stored as 2D reals.
        regularization: L2 weight (1e-5).

    Shapes:
        score_queries: entities (B,), relations (B,) in [0, 2R) -> (B, E).

    Note:
        ``Re(<h, r, conj(t)>) = <h * r, t>`` over the 2D reals, so all entities are scored with one
        matmul. A head query ``(?, r, t)`` uses ``Re(<h, r, conj(t)>) = Re(<t, conj(r), conj(h)>)``:
        the same function with the conjugate relation (no extra parameters).
    """

    def __init__(self, num_entities: int, num_relations: int, dim: int = 200, regularization: float = 1e-5):
        super().__init__()
        self.num_entities, self.num_relations, self.regularization = num_entities, num_relations, regularization
        self.entity = embedding_table(num_entities, 2 * dim)
        self.relation = embedding_table(num_relations, 2 * dim)

    @classmethod
    def from_dataset(cls, config: ComplExConfig, dataset) -> ComplEx:
        return cls(dataset.num_items, len(dataset.meta["relations"]), config.dim, config.regularization)

    def _relations(self, relations: Tensor) -> Tensor:
        vectors = self.relation(self.base_relation(relations))  # (B, 2D)
        return torch.where(self.is_inverse(relations)[:, None], conjugate(vectors), vectors)

    def query_vectors(self, entities: Tensor, relations: Tensor) -> Tensor:
        return complex_product(self.entity(entities), self._relations(relations))  # (B, 2D)
