"""Top-K ranking metrics computed from the pessimistic ranks of each user's target items.

Every metric here is a pure function of ``ranks``: a ``(B, T)`` integer tensor holding, for each of
B users, the 0-based rank of each of the user's target items among that user's candidate items,
padded with ``-1`` (:data:`PAD_RANK`) where a user has fewer than T targets. Rows without any target
give NaN for every metric (the accumulator skips and counts them instead).

Tie rule (pessimistic, see :func:`pessimistic_ranks`): a target's rank is
``#(candidates scoring strictly higher) + #(non-target candidates scoring equally)
+ #(other targets scoring equally that come before it in target order)``. Target order is the order
in which the targets are given (the evaluators give them in ascending item index). So a tie between a
target and a non-target is always lost by the target, and tied targets share the positions behind the
tied non-targets without double counting (ranks within a user are distinct). Excluded (masked)
items are not candidates at all. Optimistic or random tie-breaking would inflate scores of models
that output constant or coarse scores; this rule never does.

Definitions (``n`` = number of the user's targets, ``r_1 < r_2 < ...`` their sorted ranks,
``k`` the cut-off, binary relevance):

- ``recall@k``    = #(r < k) / n
- ``precision@k`` = #(r < k) / k  (also when fewer than k candidates exist, as RecBole and ranx do)
- ``hit_rate@k``  = 1 if any r < k else 0
- ``ndcg@k``      = sum_{r < k} 1/log2(r + 2)  /  sum_{i < min(n, k)} 1/log2(i + 2)
- ``mrr``         = 1 / (r_1 + 1);  ``mrr@k`` the same, but 0 when r_1 >= k
- ``map@k``       = sum_{j: r_j < k} (j / (r_j + 1))  /  min(n, k)   (j 1-based). Note: the
  denominator is min(n, k), as in RecBole's MAP@N, so AP@k can reach 1 when a user has more
  than k targets; ranx and trec_eval divide by n instead: ``ranx map@k = ours * min(n, k) / n``.
- ``auc``         = fraction of (target, non-target candidate) pairs in which the target scores
  strictly higher: ties count as losses (pessimistic, consistent with the rank rule). NaN for a user
  with no non-target candidate (undefined); such users are left out of the AUC mean.

Inputs may be NumPy arrays or tensors (moved to the CPU); outputs are NumPy float64 arrays: the
(B, T) work is tiny, and NumPy keeps it single-threaded (small multi-threaded torch ops can stall
for milliseconds on a busy machine).

Shapes:
    ranks: (B, T) int64, -1 padded.  num_candidates: (B,).  Every metric returns (B,) float64.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from fusionrec.errors import ConfigError
from fusionrec.registry import Registry

PAD_RANK = -1
"""Padding value in ``ranks`` (and in padded target-index arrays)."""

METRICS: Registry[Callable[..., np.ndarray]] = Registry("metric")
"""Ranking metrics by base name; ``meta["k"]`` is ``"required"``, ``"optional"`` or ``"none"``."""

_INF_RANK = np.iinfo(np.int64).max
ArrayLike = Tensor | np.ndarray | Sequence[Sequence[int]]


def _np(x: ArrayLike | Sequence[int]) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def _as_ranks(ranks: ArrayLike) -> np.ndarray:
    r = _np(ranks)
    if r.ndim == 1:
        r = r[None, :]
    if r.ndim != 2 or not np.issubdtype(r.dtype, np.integer):
        raise ConfigError(f"ranks must be a (B, T) integer array padded with -1, got shape {r.shape} {r.dtype}")
    return r.astype(np.int64, copy=False)


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _num_targets(r: np.ndarray) -> np.ndarray:
    return (r >= 0).sum(1)  # (B,)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den in float64 with NaN where den == 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.where(den > 0, num / np.maximum(den, 1.0), np.nan)


def _nan_if_empty(values: np.ndarray, r: np.ndarray) -> np.ndarray:
    return np.where(_num_targets(r) > 0, values, np.nan)


def _sorted_ranks(r: np.ndarray) -> np.ndarray:
    """Ascending ranks with padding moved to the end as a huge value. (B, T)"""
    return np.sort(np.where(r >= 0, r, _INF_RANK), axis=1)


def hits_at_k(ranks: ArrayLike, k: int) -> np.ndarray:
    """Number of targets ranked in the top k. Shapes: (B, T) -> (B,) float64."""
    r = _as_ranks(ranks)
    k = _check_k(k)
    return ((r >= 0) & (r < k)).sum(1).astype(np.float64)


@METRICS.register("recall", k="required")
def recall_at_k(ranks: ArrayLike, k: int) -> np.ndarray:
    """Recall@k = hits in the top k / number of the user's targets."""
    r = _as_ranks(ranks)
    return _div(hits_at_k(r, k), _num_targets(r))


@METRICS.register("precision", k="required")
def precision_at_k(ranks: ArrayLike, k: int) -> np.ndarray:
    """Precision@k = hits in the top k / k (k even when fewer than k candidates exist)."""
    r = _as_ranks(ranks)
    return _nan_if_empty(hits_at_k(r, k) / _check_k(k), r)


@METRICS.register("hit_rate", k="required")
def hit_rate_at_k(ranks: ArrayLike, k: int) -> np.ndarray:
    """HitRate@k = 1 if at least one target is in the top k, else 0."""
    r = _as_ranks(ranks)
    return _nan_if_empty((hits_at_k(r, k) > 0).astype(np.float64), r)


def _discounts(n: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(n, dtype=np.float64) + 2.0)  # (n,)


@METRICS.register("ndcg", k="required")
def ndcg_at_k(ranks: ArrayLike, k: int) -> np.ndarray:
    """NDCG@k with binary gains; the ideal DCG places min(#targets, k) hits at the top."""
    r = _as_ranks(ranks)
    k = _check_k(k)
    disc = _discounts(k)  # (k,)
    hit = (r >= 0) & (r < k)  # (B, T)
    dcg = np.where(hit, disc[np.clip(r, 0, k - 1)], 0.0).sum(1)  # (B,)
    ideal = np.concatenate([[0.0], np.cumsum(disc)])  # (k + 1,)
    return _div(dcg, ideal[np.minimum(_num_targets(r), k)])


@METRICS.register("mrr", k="optional")
def mrr(ranks: ArrayLike, k: int | None = None) -> np.ndarray:
    """Reciprocal rank of the first target, 1 / (min rank + 1); with k, 0 when it is not in the top k."""
    r = _as_ranks(ranks)
    first = np.where(r >= 0, r, _INF_RANK).min(1, initial=_INF_RANK)  # (B,)
    rr = 1.0 / (first.astype(np.float64) + 1.0)
    if k is not None:
        rr = np.where(first < _check_k(k), rr, 0.0)
    return _nan_if_empty(rr, r)


@METRICS.register("map", k="required")
def map_at_k(ranks: ArrayLike, k: int) -> np.ndarray:
    """Average precision at k with denominator min(#targets, k) (ranx/trec_eval use #targets)."""
    r = _as_ranks(ranks)
    k = _check_k(k)
    s = _sorted_ranks(r)  # (B, T)
    j = np.arange(1, s.shape[1] + 1, dtype=np.float64)  # (T,)
    prec = np.where(s < k, j / (np.minimum(s, k).astype(np.float64) + 1.0), 0.0)
    return _div(prec.sum(1), np.minimum(_num_targets(r), k))


@METRICS.register("auc", k="none", needs_candidates=True)
def auc(ranks: ArrayLike, num_candidates: Tensor | np.ndarray | Sequence[int]) -> np.ndarray:
    """Fraction of (target, non-target candidate) pairs where the target scores strictly higher.

    With pessimistic ranks, the j-th best target (0-based) has exactly ``r_j - j`` non-target
    candidates scoring at least as high as it, so ties count as losses. NaN without negatives.
    """
    r = _as_ranks(ranks)
    c = _np(num_candidates).astype(np.int64).reshape(-1)  # (B,)
    if c.shape[0] != r.shape[0]:
        raise ConfigError(f"num_candidates has {c.shape[0]} rows, ranks has {r.shape[0]}")
    n = _num_targets(r)  # (B,)
    neg = c - n  # (B,)
    s = _sorted_ranks(r)  # (B, T)
    ahead = s - np.arange(s.shape[1])  # non-targets at or above each target
    wins = np.where(s != _INF_RANK, neg[:, None] - ahead, 0).sum(1)
    return _div(wins, n * neg)


# ---------------------------------------------------------------------------------------------------
# Names


@dataclass(frozen=True)
class MetricSpec:
    """A parsed metric name such as ``ndcg@10`` (``base="ndcg", k=10``) or ``auc`` (``k=None``)."""

    base: str
    k: int | None

    @property
    def name(self) -> str:
        return self.base if self.k is None else f"{self.base}@{self.k}"


_NAME = re.compile(r"^([a-z_][a-z0-9_]*)(?:@(\d+))?$")


def parse_metric(name: str | MetricSpec) -> MetricSpec:
    """``"recall@20" -> MetricSpec("recall", 20)``; unknown names fail with the valid choices."""
    if isinstance(name, MetricSpec):
        return name
    m = _NAME.match(str(name).strip().lower().replace("-", "_"))
    if m is None:
        raise ConfigError(
            f"cannot parse metric name {name!r}; use <name> or <name>@<k> with name one of: "
            f"{', '.join(METRICS.names())} (e.g. recall@20, ndcg@10, mrr, auc)"
        )
    base, k = m.group(1), m.group(2)
    if base == "hitrate" or base == "hr" or base == "hit":
        base = "hit_rate"
    mode = METRICS.entry(base).meta["k"]  # raises with choices
    if k is None and mode == "required":
        raise ConfigError(f"metric {base!r} needs a cut-off, e.g. {base}@20")
    if k is not None and mode == "none":
        raise ConfigError(f"metric {base!r} takes no cut-off; use {base!r}")
    return MetricSpec(base, None if k is None else _check_k(int(k)))


def expand_metric_names(metrics: Iterable[str | MetricSpec], ks: Iterable[int] = ()) -> list[MetricSpec]:
    """Expand base names over ``ks``: ``(["recall", "mrr", "ndcg@5"], [10, 20])`` gives
    recall@10, recall@20, mrr, ndcg@5. Names that need a cut-off are expanded; names that take none
    or an optional one (``mrr``, ``auc``) and names with an explicit ``@k`` are kept as they are."""
    ks = [_check_k(k) for k in ks]
    out: list[MetricSpec] = []
    for name in metrics:
        if isinstance(name, MetricSpec) or "@" in str(name):
            specs = [parse_metric(name)]
        else:
            base = str(name).strip().lower()
            base = {"hitrate": "hit_rate", "hr": "hit_rate", "hit": "hit_rate"}.get(base, base)
            if METRICS.entry(base).meta["k"] == "required":
                if not ks:
                    raise ConfigError(f"metric {base!r} needs a cut-off: pass ks=(10, 20) or {base}@20")
                specs = [MetricSpec(base, k) for k in ks]
            else:
                specs = [MetricSpec(base, None)]
        for s in specs:
            if s not in out:
                out.append(s)
    if not out:
        raise ConfigError(f"no metrics requested; choose from: {', '.join(METRICS.names())}")
    return out


def compute_metric(spec: str | MetricSpec, ranks: ArrayLike, num_candidates: ArrayLike | None = None) -> np.ndarray:
    """Per-user values of one named metric. Shapes: (B, T) -> (B,) float64."""
    s = parse_metric(spec)
    entry = METRICS.entry(s.base)
    if entry.meta.get("needs_candidates"):
        if num_candidates is None:
            raise ConfigError(f"metric {s.name!r} needs num_candidates (candidates per user)")
        return entry.obj(ranks, num_candidates)
    if entry.meta["k"] == "none" or s.k is None:
        return entry.obj(ranks)
    return entry.obj(ranks, s.k)


# ---------------------------------------------------------------------------------------------------
# Ranks from scores (reference implementation; the evaluators compute the same ranks in chunks)


def target_order_ranks(target_scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Rank of each target among the user's targets: #(targets strictly higher) + #(earlier equal).

    Shapes: target_scores (B, T) float, valid (B, T) bool, padding at the end of each row
    -> (B, T) int64 (padding positions get the last places).
    """
    ts = np.where(valid, -np.asarray(target_scores, dtype=np.float64), np.inf)
    order = np.argsort(ts, axis=1, kind="stable")  # ascending -score; stable keeps target order
    pos = np.empty_like(order)
    np.put_along_axis(pos, order, np.broadcast_to(np.arange(ts.shape[1]), order.shape), axis=1)
    return pos


def pessimistic_ranks(
    scores: Tensor | np.ndarray, target_idx: ArrayLike, candidate_mask: Tensor | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pessimistic 0-based ranks of targets given dense scores (O(B x T x C); for small inputs).

    Args:
        scores: (B, C) scores of every item.
        target_idx: (B, T) column indices of each user's targets, -1 padded, in target order
            (padding only at the end of a row). Targets must be candidates.
        candidate_mask: (B, C) bool, False for excluded items (not candidates). None: all are.

    Returns:
        ranks (B, T) int64, -1 padded, and num_candidates (B,) int64.
    """
    S = _np(scores).astype(np.float64)
    B, C = S.shape
    t = _as_ranks(target_idx)
    valid = t >= 0  # (B, T)
    if candidate_mask is None:
        cand = np.ones((B, C), dtype=bool)
    else:
        cand = _np(candidate_mask).astype(bool)
    rows = np.broadcast_to(np.arange(B)[:, None], t.shape)
    is_target = np.zeros((B, C), dtype=bool)
    is_target[rows[valid], t[valid]] = True
    if not cand[rows[valid], t[valid]].all():
        raise ConfigError("a target item is masked out (not a candidate); drop it from the targets first")
    ts = np.take_along_axis(S, np.maximum(t, 0), axis=1)  # (B, T)
    nontarget = cand & ~is_target  # (B, C)
    ge = (S[:, None, :] >= ts[:, :, None]) & nontarget[:, None, :]  # (B, T, C)
    ranks = ge.sum(-1) + target_order_ranks(ts, valid)
    return np.where(valid, ranks, PAD_RANK), cand.sum(1)


# ---------------------------------------------------------------------------------------------------
# Accumulator


class RankingMetrics:
    """Accumulates per-user metric values batch by batch (``update / compute / reset``).

    Users without a target are skipped and counted (``num_skipped``). Per-user values are kept, in
    update order, for paired significance tests (``per_user()``, ``users``).

    Example:
        >>> acc = RankingMetrics(["recall@2", "auc"])
        >>> acc.update(np.array([[0, 3]]), num_candidates=np.array([5]))
        >>> acc.compute()["recall@2"]
        0.5
    """

    def __init__(self, metrics: Iterable[str | MetricSpec], ks: Iterable[int] = ()) -> None:
        self.specs = expand_metric_names(metrics, ks)
        self.names = [s.name for s in self.specs]
        self.needs_candidates = any(METRICS.entry(s.base).meta.get("needs_candidates") for s in self.specs)
        self.reset()

    def reset(self) -> None:
        self._values: dict[str, list[np.ndarray]] = {n: [] for n in self.names}
        self._users: list[np.ndarray] = []
        self.num_skipped = 0
        self._count = 0

    def update(
        self,
        ranks: ArrayLike,
        num_candidates: ArrayLike | None = None,
        users: ArrayLike | None = None,
    ) -> None:
        """Add a batch. Shapes: ranks (B, T) -1 padded, num_candidates (B,), users (B,)."""
        r = _as_ranks(ranks)
        has = (r >= 0).any(1)  # (B,)
        self.num_skipped += int((~has).sum())
        if users is None:
            u = np.arange(self._count, self._count + r.shape[0])
        else:
            u = _np(users).reshape(-1)
            if u.shape[0] != r.shape[0]:
                raise ConfigError(f"users has {u.shape[0]} entries, ranks has {r.shape[0]} rows")
        self._count += r.shape[0]
        if self.needs_candidates and num_candidates is None:
            raise ConfigError("auc needs num_candidates (number of candidate items per user)")
        if num_candidates is None:
            c = None
        else:
            c = _np(num_candidates).reshape(-1)[has]
        r = r[has]
        self._users.append(u[has])
        for s in self.specs:
            self._values[s.name].append(compute_metric(s, r, c))

    @property
    def users(self) -> np.ndarray:
        return np.concatenate(self._users) if self._users else np.zeros(0, dtype=np.int64)

    @property
    def num_users(self) -> int:
        return int(sum(len(u) for u in self._users))

    def per_user(self) -> dict[str, np.ndarray]:
        """Per-user values (float64, aligned with ``users``); NaN where undefined (AUC, no negative)."""
        return {n: (np.concatenate(v) if v else np.zeros(0)) for n, v in self._values.items()}

    def compute(self) -> dict[str, float]:
        """Mean over evaluated users (NaN entries, possible only for AUC, are left out)."""
        out: dict[str, float] = {}
        for n, v in self.per_user().items():
            ok = v[~np.isnan(v)]
            out[n] = float(ok.mean()) if ok.size else math.nan
        return out

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"RankingMetrics({self.names}, users={self.num_users}, skipped={self.num_skipped})"
