"""Ranking metrics (pure functions + accumulator) and the full-ranking / sampled evaluators.

See :mod:`fusionrec.metrics.ranking` for definitions and the pessimistic tie rule, and
:mod:`fusionrec.metrics.full_ranking` for the protocol and how ranks stay exact in chunks.
"""

from fusionrec.metrics.full_ranking import (
    EvalResult,
    evaluate_full_ranking,
    evaluate_sampled,
    sample_negatives,
    sample_users,
)
from fusionrec.metrics.ranking import (
    METRICS,
    PAD_RANK,
    MetricSpec,
    RankingMetrics,
    auc,
    compute_metric,
    expand_metric_names,
    hit_rate_at_k,
    hits_at_k,
    map_at_k,
    mrr,
    ndcg_at_k,
    parse_metric,
    pessimistic_ranks,
    precision_at_k,
    recall_at_k,
    target_order_ranks,
)

__all__ = [
    "EvalResult",
    "METRICS",
    "MetricSpec",
    "PAD_RANK",
    "RankingMetrics",
    "auc",
    "compute_metric",
    "evaluate_full_ranking",
    "evaluate_sampled",
    "expand_metric_names",
    "hit_rate_at_k",
    "hits_at_k",
    "map_at_k",
    "mrr",
    "ndcg_at_k",
    "parse_metric",
    "pessimistic_ranks",
    "precision_at_k",
    "recall_at_k",
    "sample_negatives",
    "sample_users",
    "target_order_ranks",
]
