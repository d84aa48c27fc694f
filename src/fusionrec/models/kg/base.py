"""What every knowledge-graph completion model shares: its batch, its query convention and its losses.

Queries: a model scores the query ``(e, q, ?)`` against every entity, where ``q < R`` asks for the
tail of ``(e, q, ?)`` and ``q = r + R`` asks for the head of ``(?, r, e)``. Embedding models answer a
head query with their own scoring function, roles swapped (no extra parameters); MKGformer learns
an inverse relation instead (its input is text).

Training: a model either learns from sampled negatives (``training = "negatives"``: the task draws
``task.num_negatives`` random entities per query as corrupted answers, Bordes et al. 2013) or scores
every entity at once (``training = "1-N"``: Dettmers et al. 2018); the task reads this from the
model's config class.

Shapes:
    B queries, K negatives per query, E entities, D dim.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.batches import _Batch
from fusionrec.models.base import LossOutput, ModelConfig, Recommender

Training = Literal["negatives", "1-N"]


@dataclass(frozen=True)
class KGBatch(_Batch):
    """Queries with their answer. Shapes: entities (B,), relations (B,) in ``[0, 2R)``, targets (B,),
    negatives (B, K) sampled wrong answers or None (1-N models)."""

    entities: Tensor
    relations: Tensor
    targets: Tensor
    negatives: Tensor | None = None


class KGConfig(ModelConfig):
    """Base of the kg models' configs."""

    training: ClassVar[Training] = "negatives"
    dim: int = Field(200, gt=0, description="embedding dimension D (complex models: D complex numbers)")


class KGModel(Recommender):
    """A model of the ``kg`` task: :meth:`score_queries` over all entities, :meth:`score_candidates`
    over given ones; ``score(batch)`` is the former (the ranking families' ``(B, C)`` contract)."""

    num_entities: int
    num_relations: int  # R, the relations of the data; queries use 2R

    @abc.abstractmethod
    def score_queries(self, entities: Tensor, relations: Tensor) -> Tensor:
        """(B, E) scores of every entity as the answer of each query."""

    def score_candidates(self, entities: Tensor, relations: Tensor, candidates: Tensor) -> Tensor:
        """(B, K) scores of ``candidates`` (B, K) as answers; default: gathered from all scores."""
        return self.score_queries(entities, relations).gather(1, candidates)

    def score(self, batch: KGBatch) -> Tensor:
        return self.score_queries(batch.entities, batch.relations)

    def is_inverse(self, relations: Tensor) -> Tensor:
        return relations >= self.num_relations

    def base_relation(self, relations: Tensor) -> Tensor:
        return torch.remainder(relations, self.num_relations)


class BilinearKGModel(KGModel):
    """A model whose score is ``<q(h, r), t>``: a query vector (:meth:`query_vectors`) against the answer's
    embedding, so all entities are scored with one matmul. Trained with the logistic (softplus) loss over
    sampled negatives and an L2 penalty (``regularization``) on the embeddings a batch uses."""

    entity: nn.Embedding
    relation: nn.Embedding
    regularization: float

    @abc.abstractmethod
    def query_vectors(self, entities: Tensor, relations: Tensor) -> Tensor:
        """(B, D) query vectors of (entity, relation) queries, relations in [0, 2R)."""

    def score_queries(self, entities: Tensor, relations: Tensor) -> Tensor:
        return self.query_vectors(entities, relations) @ self.entity.weight.T  # (B, E)

    def score_candidates(self, entities: Tensor, relations: Tensor, candidates: Tensor) -> Tensor:
        return (self.query_vectors(entities, relations)[:, None, :] * self.entity(candidates)).sum(-1)  # (B, K)

    def lookup_embeddings(self) -> tuple[nn.Embedding, ...]:
        return (self.entity, self.relation)  # the loss reads them row by row: train.sparse_embeddings=true is allowed

    def loss(self, batch: KGBatch) -> LossOutput:
        positive, negative = positive_and_negative_scores(self, batch)
        used = [
            self.entity(batch.entities),
            self.relation(self.base_relation(batch.relations)),
            self.entity(batch.targets),
        ]
        penalty = self.regularization * sum(v.pow(2).sum(-1).mean() for v in used)
        return loss_output(softplus_loss(positive, negative), "softplus", penalty)


def positive_and_negative_scores(model: KGModel, batch: KGBatch) -> tuple[Tensor, Tensor]:
    """(B,) scores of the true answers and (B, K) of the sampled negatives."""
    if batch.negatives is None:
        raise ValueError(f"{type(model).__name__} trains on sampled negatives; the batch has none")
    candidates = torch.cat([batch.targets[:, None], batch.negatives], dim=1)  # (B, 1 + K)
    scores = model.score_candidates(batch.entities, batch.relations, candidates)  # (B, 1 + K)
    return scores[:, 0], scores[:, 1:]


def margin_ranking_loss(positive: Tensor, negative: Tensor, margin: float) -> Tensor:
    """``mean(max(0, margin - s(pos) + s(neg)))`` over every (positive, negative) pair (Bordes et al., 2013)."""
    return F.relu(margin - positive[:, None] + negative).mean()


def softplus_loss(positive: Tensor, negative: Tensor) -> Tensor:
    """Logistic loss: ``softplus(-s(pos)) + mean_k softplus(s(neg_k))`` (Trouillon et al., 2016)."""
    return (F.softplus(-positive) + F.softplus(negative).mean(1)).mean()


def self_adversarial_loss(positive: Tensor, negative: Tensor, temperature: float) -> Tensor:
    """RotatE's loss (Sun et al., 2019) on scores that already include the margin ``gamma``:
    ``-log sigmoid(s(pos)) - sum_k p_k log sigmoid(-s(neg_k))``, ``p = softmax(temperature * s(neg))``
    held constant (no gradient through the weights)."""
    weights = torch.softmax(temperature * negative.detach(), dim=1)  # (B, K)
    return (-F.logsigmoid(positive) - (weights * F.logsigmoid(-negative)).sum(1)).mean()


def embedding_table(num: int, dim: int, bound: float | None = None) -> nn.Embedding:
    """An embedding table initialised uniformly in ``[-bound, bound]`` (default Xavier-uniform)."""
    table = nn.Embedding(num, dim)
    if bound is None:
        nn.init.xavier_uniform_(table.weight)
    else:
        nn.init.uniform_(table.weight, -bound, bound)
    return table


def loss_output(loss: Tensor, name: str, regulariser: Tensor | None = None) -> LossOutput:
    parts = {name: loss.detach()}
    if regulariser is not None:
        parts["reg"] = regulariser.detach()
        loss = loss + regulariser
    return LossOutput(loss, parts)
