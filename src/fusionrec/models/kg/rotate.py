"""RotatE: relations as rotations in the complex plane.

Paper: Sun, Deng, Nie, Tang, "RotatE: Knowledge Graph Embedding by Relational Rotation in Complex
Space", ICLR 2019. ``f(h, r, t) = gamma - ||h ∘ r - t||`` with ``|r_d| = 1`` (``r_d = exp(i theta_d)``)
and the distance the sum of the complex moduli; trained with self-adversarial negative sampling.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.models.base import LossOutput
from fusionrec.models.kg.base import (
    KGBatch,
    KGConfig,
    KGModel,
    embedding_table,
    loss_output,
    positive_and_negative_scores,
    self_adversarial_loss,
)
from fusionrec.registry import MODELS

_DISTANCE_BUDGET = (
    1 << 16
)  # floats of one (B, chunk, D) block when scoring all entities: cache-sized (4x faster than 64 MiB)


class RotatEConfig(KGConfig):
    name: str = "rotate"
    gamma: float = Field(6.0, gt=0, description="margin gamma of the score (Sun et al.: 6 on WN18RR)")
    temperature: float = Field(0.5, ge=0, description="self-adversarial temperature alpha (0: uniform weights)")


def rotation(phases: Tensor) -> tuple[Tensor, Tensor]:
    """Unit complex numbers ``exp(i phase)`` as (real, imaginary)."""
    return torch.cos(phases), torch.sin(phases)


@MODELS.register("rotate", config=RotatEConfig, task="kg", paper="Sun et al., ICLR 2019", modalities="none")
class RotatE(KGModel):
    """RotatE (Sun et al., 2019).

    Args:
        num_entities: E. num_relations: R. dim: D complex numbers (200). gamma: 6.0. temperature: 0.5.

    Shapes:
        score_queries: entities (B,), relations (B,) in [0, 2R) -> (B, E).

    Note:
        Relations are stored as phases, so ``|r_d| = 1`` holds by construction. A head query
        ``(?, r, t)`` uses ``||h ∘ r - t|| = ||t ∘ conj(r) - h||`` (a rotation by ``-theta``).
        Initialisation as the official code: entities uniform in ``±(gamma + 2) / D``, phases uniform
        in ``[-pi, pi]``. Scoring all entities is chunked over entities to bound memory.
    """

    def __init__(
        self, num_entities: int, num_relations: int, dim: int = 200, gamma: float = 6.0, temperature: float = 0.5
    ):
        super().__init__()
        self.num_entities, self.num_relations = num_entities, num_relations
        self.gamma, self.temperature = gamma, temperature
        self.entity = embedding_table(num_entities, 2 * dim, (gamma + 2.0) / dim)
        self.phase = embedding_table(num_relations, dim, math.pi)

    @classmethod
    def from_dataset(cls, config: RotatEConfig, dataset) -> RotatE:
        return cls(dataset.num_items, len(dataset.meta["relations"]), config.dim, config.gamma, config.temperature)

    def _queries(self, entities: Tensor, relations: Tensor) -> tuple[Tensor, Tensor]:
        sign = 1.0 - 2.0 * self.is_inverse(relations).float()
        rot_re, rot_im = rotation(sign[:, None] * self.phase(self.base_relation(relations)))  # (B, D) each
        e_re, e_im = self.entity(entities).chunk(2, dim=-1)  # (B, D) each
        return e_re * rot_re - e_im * rot_im, e_re * rot_im + e_im * rot_re

    @staticmethod
    def _distance(q_re: Tensor, q_im: Tensor, answers: Tensor) -> Tensor:
        a_re, a_im = answers.chunk(2, dim=-1)  # (..., K, D)
        return torch.sqrt((q_re - a_re) ** 2 + (q_im - a_im) ** 2 + 1e-12).sum(-1)

    def score_queries(self, entities: Tensor, relations: Tensor) -> Tensor:
        q_re, q_im = self._queries(entities, relations)  # (B, D)
        chunk = max(1, _DISTANCE_BUDGET // max(1, q_re.numel()))
        parts = [
            self._distance(q_re[:, None, :], q_im[:, None, :], block[None])  # (B, chunk)
            for block in self.entity.weight.split(chunk)
        ]
        return self.gamma - torch.cat(parts, dim=1)  # (B, E)

    def score_candidates(self, entities: Tensor, relations: Tensor, candidates: Tensor) -> Tensor:
        q_re, q_im = self._queries(entities, relations)
        return self.gamma - self._distance(q_re[:, None, :], q_im[:, None, :], self.entity(candidates))  # (B, K)

    def lookup_embeddings(self) -> tuple[nn.Embedding, ...]:
        return (self.entity, self.phase)  # the loss reads them row by row: train.sparse_embeddings=true is allowed

    def loss(self, batch: KGBatch) -> LossOutput:
        positive, negative = positive_and_negative_scores(self, batch)
        return loss_output(self_adversarial_loss(positive, negative, self.temperature), "self_adversarial")
