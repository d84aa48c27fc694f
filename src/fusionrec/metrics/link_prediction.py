"""Filtered link-prediction ranking: MRR, MR and Hits@k with PyKEEN's "realistic" tie handling.

A *query* asks for one side of a triple: ``(h, r, ?)`` (tail prediction) or ``(?, r, t)`` (head
prediction, written as the query ``(t, r + R, ?)`` with ``R`` the number of relations). Its target is
ranked among all entities after the *filter* removes every other entity known to complete the same
query in any split (Bordes et al., 2013, "filtered" setting): those are true answers, not errors.

Ties: with ``g`` candidates scoring strictly above the target and ``e`` others scoring exactly the
same, the optimistic rank is ``g + 1``, the pessimistic ``g + e + 1`` and the realistic rank their
mean, ``g + e / 2 + 1`` (the expected rank under random tie-breaking; PyKEEN's default
``rank_type="realistic"``). A model that scores every entity the same gets rank ``(E + 1) / 2``,
never 1. Metrics are means over queries of ``1 / rank`` (MRR), ``rank`` (MR) and ``rank <= k``
(Hits@k), all on the realistic rank.

Memory: queries are scored in batches of ``B = budget // E`` (at least 1), one ``(B, E)`` block at a time.

Shapes:
    Q queries, E entities, B batch of queries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from fusionrec.errors import FusionrecError

QueryScorer = Callable[[Tensor, Tensor], Tensor]
"""``(entities (B,), relations (B,)) -> scores (B, E)`` of every candidate entity for each query."""

DEFAULT_SCORE_BUDGET = 1 << 23  # scores per (B, E) block: 32 MiB in float32


@dataclass(frozen=True)
class KnownAnswers:
    """Every known (query, answer) pair, sorted by query id, for the filter.

    Query ids are ``entity * num_query_relations + relation``; lookups are vectorised with
    ``searchsorted`` (memory: two int64 arrays as long as the known pairs; no query x entity matrix).
    """

    query_ids: np.ndarray  # (N,) int64, ascending
    answers: np.ndarray  # (N,) int64
    num_query_relations: int

    @classmethod
    def build(
        cls, entities: np.ndarray, relations: np.ndarray, answers: np.ndarray, num_query_relations: int
    ) -> KnownAnswers:
        ids = np.asarray(entities, np.int64) * num_query_relations + np.asarray(relations, np.int64)
        order = np.argsort(ids, kind="stable")
        return cls(ids[order], np.asarray(answers, np.int64)[order], num_query_relations)

    def lookup(self, entities: np.ndarray, relations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, answers)``: for each query ``i`` of the batch, one row ``i`` per known answer."""
        ids = np.asarray(entities, np.int64) * self.num_query_relations + np.asarray(relations, np.int64)
        start = np.searchsorted(self.query_ids, ids, side="left")
        stop = np.searchsorted(self.query_ids, ids, side="right")
        counts = stop - start
        rows = np.repeat(np.arange(len(ids)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return rows, self.answers[np.repeat(start, counts) + offsets]


def tie_ranks(scores: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Optimistic and pessimistic 1-based ranks of ``targets`` among the columns of ``scores``.

    Columns already filtered out must hold ``-inf`` (they then never tie with a finite target).
    Shapes: scores (B, E), targets (B,) -> two (B,) float64 tensors.
    """
    target_scores = scores.gather(1, targets[:, None])  # (B, 1)
    greater = (scores > target_scores).sum(1)  # (B,)
    not_less = (scores >= target_scores).sum(1) - 1  # (B,) minus the target itself
    return (greater + 1).double(), (not_less + 1).double()


def filtered_ranks(
    scorer: QueryScorer,
    entities: np.ndarray,
    relations: np.ndarray,
    targets: np.ndarray,
    known: KnownAnswers,
    *,
    num_entities: int,
    score_budget: int = DEFAULT_SCORE_BUDGET,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Filtered optimistic and pessimistic ranks of each query's target, ``(Q,)`` float64 each.

    Every known answer of a query other than its own target is removed from its candidates
    (``known`` must hold the targets themselves: the standard filter over train, valid and test).
    """
    batch = max(1, score_budget // max(1, num_entities))
    optimistic = np.empty(len(targets))
    pessimistic = np.empty(len(targets))
    for start in range(0, len(targets), batch):
        stop = min(start + batch, len(targets))
        ent, rel, tgt = entities[start:stop], relations[start:stop], targets[start:stop]
        scores = scorer(torch.as_tensor(ent, device=device), torch.as_tensor(rel, device=device))  # (B, E)
        if scores.shape != (stop - start, num_entities):
            raise FusionrecError(
                f"a kg scorer returned {tuple(scores.shape)} scores, expected ({stop - start}, {num_entities})"
            )
        scores = scores.detach().float().clone()
        if torch.isnan(scores).any():
            row = int(torch.isnan(scores).any(1).nonzero()[0])
            raise FusionrecError(f"the model scored NaN for query (entity {int(ent[row])}, relation {int(rel[row])})")
        target_t = torch.as_tensor(tgt, device=scores.device)
        own = scores.gather(1, target_t[:, None])  # (B, 1)
        rows, answers = known.lookup(ent, rel)
        scores[torch.as_tensor(rows, device=scores.device), torch.as_tensor(answers, device=scores.device)] = -math.inf
        scores.scatter_(1, target_t[:, None], own)  # the target itself stays a candidate
        opt, pes = tie_ranks(scores, target_t)
        optimistic[start:stop], pessimistic[start:stop] = opt.cpu().numpy(), pes.cpu().numpy()
    return optimistic, pessimistic


def realistic(optimistic: np.ndarray, pessimistic: np.ndarray) -> np.ndarray:
    """PyKEEN's realistic rank: the mean of the optimistic and pessimistic ranks."""
    return (optimistic + pessimistic) / 2.0


def rank_metrics(ranks: np.ndarray, ks: Sequence[int] = (1, 3, 10)) -> dict[str, float]:
    """``mrr``, ``mr`` and ``hits@k`` (means over the given ranks)."""
    ranks = np.asarray(ranks, np.float64)
    out = {"mrr": float(np.mean(1.0 / ranks)), "mr": float(np.mean(ranks))}
    out.update({f"hits@{k}": float(np.mean(ranks <= k)) for k in ks})
    return out


def per_triple_metrics(
    head_ranks: np.ndarray, tail_ranks: np.ndarray, ks: Sequence[int] = (1, 3, 10)
) -> dict[str, np.ndarray]:
    """Per triple, the mean over its two sides of each metric's summand (their mean over triples is
    the both-sides metric), and its head and tail reciprocal ranks (``head_mrr``, ``tail_mrr``): for
    paired significance tests between runs on the same split, and for joining data-parallel parts."""
    both = np.stack([np.asarray(head_ranks, np.float64), np.asarray(tail_ranks, np.float64)])  # (2, N)
    out = {"mrr": (1.0 / both).mean(0), "mr": both.mean(0)}
    out.update({f"hits@{k}": (both <= k).mean(0) for k in ks})
    out.update({"head_mrr": 1.0 / both[0], "tail_mrr": 1.0 / both[1]})
    return out
