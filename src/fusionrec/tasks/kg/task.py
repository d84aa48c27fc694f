"""The ``kg`` task: knowledge-graph completion (link prediction) with filtered ranking.

Data: a knowledge-graph completion data set (:func:`fusionrec.data.dataset.build_kg_dataset`):
split triples over one entity index, entity text and features aligned to it.

Training: every training triple gives a tail query ``(h, r, ?)`` -> t and a head query
``(t, r + R, ?)`` -> h (``task.directions=both``), or one of the two drawn per triple and epoch
(``random``, PyKEEN's sLCWA convention of corrupting either side). Models that learn from sampled
negatives get ``task.num_negatives`` uniformly drawn entities per query (not filtered: a drawn
entity may be a true answer, as in Bordes et al. and PyKEEN's basic sampler); 1-N models get none.

Protocol: every triple of the split is asked both ways; each answer is ranked among all entities
with every other known answer of the query (train, valid and test: the standard filtered setting)
removed; ties count as PyKEEN's realistic rank; MRR, MR and Hits@k are means over the 2N ranks.

Leakage rules (tested in ``tests/kg``): training batches, negatives and the model's inputs come from
training triples only; valid and test triples are read by :meth:`evaluate` (the split itself and the
filter, which is the only use of held-out triples outside their own split); ``recommend`` excludes
training answers only; selection uses valid, test is read once at the end of a run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from fusionrec.data.dataset import SPLIT_CODES
from fusionrec.errors import ConfigError, DataError
from fusionrec.metrics.full_ranking import EvalResult
from fusionrec.metrics.link_prediction import (
    DEFAULT_SCORE_BUDGET,
    KnownAnswers,
    filtered_ranks,
    per_triple_metrics,
    rank_metrics,
    realistic,
)
from fusionrec.models.kg.base import KGBatch, KGModel
from fusionrec.registry import TASKS
from fusionrec.tasks.base import Explanation, Recommendation, Task, TaskConfig, WeightGrid, labelled

INVERSE = "^-1"  # a query "ENTITY RELATION^-1" asks for the heads of (?, RELATION, ENTITY)


class KGTaskConfig(TaskConfig):
    """The ``task:`` section of the kg task."""

    num_negatives: int = Field(
        64, gt=0, description="sampled wrong answers per training query (negative-sampling models)"
    )
    directions: Literal["both", "random"] = Field(
        "both", description="training queries per triple: both (tail and head query) or one drawn at random"
    )
    ks: tuple[int, ...] = Field((1, 3, 10), description="cut-offs of hits@k")
    score_budget: int = Field(DEFAULT_SCORE_BUDGET, gt=0, description="scores per evaluation block (memory bound)")


@TASKS.register(
    "kg", config=KGTaskConfig, description="knowledge-graph completion: filtered MRR, MR, Hits@k, both sides"
)
class KGTask(Task):
    name = "kg"
    shards_evaluation = True
    default_batch_size = 512
    default_metric = "mrr"

    @classmethod
    def build(cls, config: KGTaskConfig, train: Any, dataset: Any, model_config: Any) -> KGTask:
        training = getattr(type(model_config), "training", "negatives")
        return cls(
            dataset, config, train.batch_size or cls.default_batch_size, train.seed, train.metric or "mrr", training
        )

    @classmethod
    def check_data(cls, dataset: Any) -> None:
        if not dataset.is_kg_completion:
            raise DataError(
                f"{dataset.name}: the kg task needs split triples over an entity index (a kg data set such as "
                "wn18rr, nations or synthetic-kg, or a folder of train/valid/test triples); this one holds interactions"
            )
        empty = [split for split, size in dataset.kg_split_sizes().items() if size == 0]
        if empty:
            raise DataError(
                f"{dataset.name}: no {empty[0]} triples; the kg task trains, selects and tests on all three"
            )

    @classmethod
    def metric_names(cls, config: KGTaskConfig) -> list[str]:
        return ["mrr", "mr", *(f"hits@{k}" for k in config.ks)]

    @classmethod
    def check_metric(cls, config: Any, metric: str) -> None:
        if metric not in cls.metric_names(config):
            raise ConfigError(f"train.metric={metric!r}: the kg task reports {', '.join(cls.metric_names(config))}")

    @classmethod
    def reported_metrics(cls, config: Any, metric: str) -> list[str]:
        return cls.metric_names(config)

    def higher_is_better(self, metric: str) -> bool:
        return metric != "mr"

    def __init__(
        self, dataset: Any, config: KGTaskConfig, batch_size: int, seed: int, metric: str, training: str = "negatives"
    ) -> None:
        self.dataset, self.config, self.batch_size, self.seed, self.metric = dataset, config, batch_size, seed, metric
        self.training = training
        self.num_entities = dataset.num_items
        self.relations: list[str] = list(dataset.meta["relations"])
        self.num_relations = len(self.relations)
        kg = dataset.kg
        entity_index = pd.Index(dataset.item_ids)
        self.heads = entity_index.get_indexer(kg["head"]).astype(np.int64)
        self.tails = entity_index.get_indexer(kg["tail"]).astype(np.int64)
        self.rels = pd.Index(self.relations).get_indexer(kg["relation"]).astype(np.int64)
        if (self.heads < 0).any() or (self.tails < 0).any() or (self.rels < 0).any():
            raise DataError(f"{dataset.name}: a triple names an entity or relation outside the data set's dictionaries")
        self.splits = kg["split"].to_numpy()
        self.train_rows = np.flatnonzero(self.splits == SPLIT_CODES["train"])
        self.known = self._answers(np.arange(len(kg)))  # the filter: every split (the only use of held-out triples)
        self.train_known = self._answers(self.train_rows)
        negatives = f"{config.num_negatives} uniform negatives per query" if training == "negatives" else "1-N scoring"
        self.protocol = (
            f"filtered ranking of heads and tails among all {self.num_entities:,} entities (filter: train+valid+test "
            f"triples); ties: realistic rank (mean of optimistic and pessimistic); MRR, MR, Hits@{'/'.join(map(str, config.ks))}; "
            f"training: {config.directions} directions, {negatives}"
        )

    def _answers(self, rows: np.ndarray) -> KnownAnswers:
        """Known answers of the triples ``rows``, both ways: (h, r) -> t and (t, r + R) -> h."""
        h, r, t = self.heads[rows], self.rels[rows], self.tails[rows]
        return KnownAnswers.build(
            np.concatenate([h, t]),
            np.concatenate([r, r + self.num_relations]),
            np.concatenate([t, h]),
            2 * self.num_relations,
        )

    # ------------------------------------------------------------------ training
    def _num_queries(self) -> int:
        return len(self.train_rows) * (2 if self.config.directions == "both" else 1)

    @property
    def num_batches(self) -> int:
        return -(-self._num_queries() // self.batch_size)

    def train_queries(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(entities, relations, answers) of one epoch's training queries, shuffled (seed and epoch only)."""
        rng = np.random.default_rng([self.seed, epoch])
        h, r, t = self.heads[self.train_rows], self.rels[self.train_rows], self.tails[self.train_rows]
        if self.config.directions == "both":
            entities, relations, answers = (
                np.concatenate([h, t]),
                np.concatenate([r, r + self.num_relations]),
                np.concatenate([t, h]),
            )
        else:
            head_query = rng.random(len(h)) < 0.5
            entities = np.where(head_query, t, h)
            relations = np.where(head_query, r + self.num_relations, r)
            answers = np.where(head_query, h, t)
        order = rng.permutation(len(entities))
        return entities[order], relations[order], answers[order]

    def train_batches(self, epoch: int) -> Iterator[KGBatch]:
        entities, relations, answers = self.train_queries(epoch)
        rng = np.random.default_rng([self.seed, epoch, 1])
        for start in range(0, len(entities), self.batch_size):
            rows = slice(start, start + self.batch_size)
            negatives = None
            if self.training == "negatives":
                size = (len(entities[rows]), self.config.num_negatives)
                negatives = torch.from_numpy(rng.integers(0, self.num_entities, size))
            yield KGBatch(
                torch.from_numpy(entities[rows]),
                torch.from_numpy(relations[rows]),
                torch.from_numpy(answers[rows]),
                negatives,
            )

    # ------------------------------------------------------------------ evaluation
    def split_rows(self, split: str) -> np.ndarray:
        if split not in ("valid", "test"):
            raise ConfigError(f"the kg task evaluates valid or test, not {split!r}")
        return np.flatnonzero(self.splits == SPLIT_CODES[split])

    def side_ranks(self, model: KGModel, rows: np.ndarray, device: Any = "cpu") -> tuple[np.ndarray, np.ndarray]:
        """Realistic filtered ranks of the heads and of the tails of the triples ``rows``."""
        h, r, t = self.heads[rows], self.rels[rows], self.tails[rows]
        entities, relations, answers = (
            np.concatenate([h, t]),
            np.concatenate([r, r + self.num_relations]),
            np.concatenate([t, h]),
        )
        model.eval()
        with torch.no_grad():
            optimistic, pessimistic = filtered_ranks(
                model.score_queries,
                entities,
                relations,
                answers,
                self.known,
                num_entities=self.num_entities,
                score_budget=self.config.score_budget,
                device=device,
            )
        ranks = realistic(optimistic, pessimistic)
        return ranks[len(rows) :], ranks[: len(rows)]  # head ranks (from the head queries), tail ranks

    def evaluate(
        self, model: Any, split: str = "valid", device: Any = "cpu", shard: tuple[int, int] | None = None
    ) -> EvalResult:
        """Filtered ranking of ``split``'s triples both ways; with ``shard=(rank, world_size)`` every
        ``world_size``-th triple from the ``rank``-th on, for ``merge_results`` to join."""
        start = time.perf_counter()
        everything = self.split_rows(split)
        rows = everything if shard is None else everything[shard[0] :: shard[1]]
        head_ranks, tail_ranks = self.side_ranks(model, rows, device)
        metrics = rank_metrics(np.concatenate([head_ranks, tail_ranks]), self.config.ks)
        metrics["head_mrr"] = rank_metrics(head_ranks, ())["mrr"]
        metrics["tail_mrr"] = rank_metrics(tail_ranks, ())["mrr"]
        return EvalResult(
            metrics,
            per_triple_metrics(head_ranks, tail_ranks, self.config.ks),
            rows,  # row of each triple in the data set's kg table
            len(rows),
            len(everything) - len(rows),  # the other ranks' triples
            time.perf_counter() - start,
            protocol=self.protocol,
            unit="triple",
        )

    # ------------------------------------------------------------------ using a trained model
    def resolve_user(self, dataset: Any, raw: str) -> int:
        """A query ``"ENTITY RELATION"`` (tails of (ENTITY, RELATION, ?)) or ``"ENTITY RELATION^-1"`` (heads of
        (?, RELATION, ENTITY)) -> its index ``entity * 2R + relation``, what :meth:`recommend` and :meth:`explain` take."""
        parts = str(raw).rsplit(None, 1)
        if len(parts) != 2:
            raise ConfigError(
                f"a kg query is 'ENTITY RELATION' or 'ENTITY RELATION{INVERSE}', got {raw!r} "
                f"(relations: {', '.join(self.relations[:5])}, ...)"
            )
        entity, relation = parts
        inverse = relation.endswith(INVERSE)
        relation = relation[: -len(INVERSE)] if inverse else relation
        entity_rows = np.flatnonzero(self.dataset.item_ids.astype(str) == entity.strip())
        if not len(entity_rows):
            raise ConfigError(
                f"unknown entity {entity!r} in {self.dataset.name} (ids look like: {', '.join(map(str, self.dataset.item_ids[:3]))})"
            )
        if relation not in self.relations:
            raise ConfigError(
                f"unknown relation {relation!r} in {self.dataset.name}; relations: {', '.join(self.relations)}"
            )
        return (
            int(entity_rows[0]) * 2 * self.num_relations + self.relations.index(relation) + inverse * self.num_relations
        )

    def _query(self, query: int) -> tuple[int, int]:
        return divmod(int(query), 2 * self.num_relations)

    def describe_query(self, query: int) -> str:
        entity, relation = self._query(query)
        name = self.relations[relation % self.num_relations]
        raw = str(self.dataset.item_ids[entity])
        return f"(?, {name}, {raw})" if relation >= self.num_relations else f"({raw}, {name}, ?)"

    def recommend(
        self, model: Any, user: int, k: int, include_seen: bool = False, with_reasons: bool = False
    ) -> list[Recommendation]:
        """The ``k`` best answers of query index ``user`` (:meth:`resolve_user`); answers known from training
        triples are left out unless ``include_seen`` (held-out triples are never consulted)."""
        entity, relation = self._query(user)
        with torch.no_grad():
            scores = model.eval().score_queries(torch.tensor([entity]), torch.tensor([relation]))[0].float()
        if not include_seen:
            _, seen = self.train_known.lookup(np.array([entity]), np.array([relation]))
            scores[torch.from_numpy(seen)] = -torch.inf
        top = torch.topk(scores, min(k, self.num_entities))
        return [Recommendation(int(i), float(s)) for i, s in zip(top.indices, top.values) if torch.isfinite(s)]

    def explain(self, model: Any, user: int, item: int | None, out_dir: Path | None) -> Explanation:
        """The score of the answer ``item`` (default: the top answer) to query ``user``, the top answers and, for
        MKGformer, the text-to-visual correlation weights and the prefix-guided attention of the visual tokens of
        each M-Encoder layer. Those weights belong to the query: MKGformer reads the head side (query entity,
        relation, description, patches) and meets the answer only in the output layer."""
        titles = self.dataset.item_titles() or [str(i) for i in self.dataset.item_ids]
        entity, relation = self._query(user)
        with torch.no_grad():
            scores = model.eval().score_queries(torch.tensor([entity]), torch.tensor([relation]))[0].float()
        top = torch.topk(scores, min(10, self.num_entities))
        answer = item if item is not None else int(top.indices[0])
        explanation = Explanation(
            f"{self.describe_query(user)} -> {titles[answer]}",
            float(scores[answer]),
            {"top answers": labelled([titles[int(i)] for i in top.indices], top.values.tolist())},
        )
        attention = getattr(model, "query_attention", None)
        if attention is None:
            return explanation
        weights = attention(entity, relation)
        text_labels, visual_labels = weights["text_tokens"], weights["visual_tokens"]
        for name, grid in weights["grids"].items():
            columns = visual_labels if grid.shape[-1] == len(visual_labels) else text_labels + visual_labels
            explanation.grids[name] = WeightGrid(
                list(text_labels if "correlation" in name else visual_labels), columns, grid.tolist()
            )
        explanation.details["answer"] = str(self.dataset.item_ids[answer])
        return explanation
