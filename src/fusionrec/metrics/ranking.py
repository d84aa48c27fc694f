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
  denominator is min(n, k) (RecBole, Cornac, most recommender papers); ranx and trec_eval divide
  by n instead, so ``ranx map@k = ours * min(n, k) / n``.
- ``auc``         = fraction of (target, non-target candidate) pairs in which the target scores
  strictly higher: ties count as losses (pessimistic, consistent with the rank rule). NaN for a user
  with no non-target candidate (undefined); such users are left out of the AUC mean.

Shapes:
    ranks: (B, T) int64, -1 padded.  num_candidates: (B,).  Every metric returns (B,) float64.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from fusionrec.errors import ConfigError
from fusionrec.registry import Registry

PAD_RANK = -1
"""Padding value in ``ranks`` (and in padded target-index tensors)."""

METRICS: Registry[Callable[..., Tensor]] = Registry("metric")
"""Ranking metrics by base name; ``meta["k"]`` is ``"required"``, ``"optional"`` or ``"none"``."""

_INF_RANK = torch.iinfo(torch.int64).max


def _as_ranks(ranks: Tensor | np.ndarray | Sequence[Sequence[int]]) -> Tensor:
    r = torch.as_tensor(ranks)
    if r.dim() == 1:
        r = r.unsqueeze(0)
    if r.dim() != 2 or r.dtype.is_floating_point or r.dtype == torch.bool:
        raise ConfigError(f"ranks must be a (B, T) integer tensor padded with -1, got {tuple(r.shape)} {r.dtype}")
    return r.long()


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _num_targets(r: Tensor) -> Tensor:
    return (r >= 0).sum(1)  # (B,)


def _div(num: Tensor, den: Tensor) -> Tensor:
    """num / den in float64 with NaN where den == 0."""
    num = num.double()
    den = den.double()
    return torch.where(den > 0, num / den.clamp(min=1), torch.full_like(num, math.nan))


def _sorted_ranks(r: Tensor) -> Tensor:
    """Ascending ranks with padding moved to the end as a huge value."""
    return torch.where(r >= 0, r, torch.full_like(r, _INF_RANK)).sort(dim=1).values  # (B, T)


def hits_at_k(ranks: Tensor, k: int) -> Tensor:
    """Number of targets ranked in the top k. Shapes: (B, T) -> (B,) float64."""
    r = _as_ranks(ranks)
    k = _check_k(k)
    return ((r >= 0) & (r < k)).sum(1).double()


@METRICS.register("recall", k="required")
def recall_at_k(ranks: Tensor, k: int) -> Tensor:
    """Recall@k = hits in the top k / number of the user's targets."""
    r = _as_ranks(ranks)
    return _div(hits_at_k(r, k), _num_targets(r))


@METRICS.register("precision", k="required")
def precision_at_k(ranks: Tensor, k: int) -> Tensor:
    """Precision@k = hits in the top k / k (k even when fewer than k candidates exist)."""
    r = _as_ranks(ranks)
    h = hits_at_k(r, k) / _check_k(k)
    return torch.where(_num_targets(r) > 0, h, torch.full_like(h, math.nan))


@METRICS.register("hit_rate", k="required")
def hit_rate_at_k(ranks: Tensor, k: int) -> Tensor:
    """HitRate@k = 1 if at least one target is in the top k, else 0."""
    r = _as_ranks(ranks)
    h = (hits_at_k(r, k) > 0).double()
    return torch.where(_num_targets(r) > 0, h, torch.full_like(h, math.nan))


def _discounts(n: int) -> Tensor:
    return 1.0 / torch.log2(torch.arange(n, dtype=torch.float64) + 2.0)  # (n,)


@METRICS.register("ndcg", k="required")
def ndcg_at_k(ranks: Tensor, k: int) -> Tensor:
    """NDCG@k with binary gains; the ideal DCG places min(#targets, k) hits at the top."""
    r = _as_ranks(ranks)
    k = _check_k(k)
    disc = _discounts(k)  # (k,)
    hit = (r >= 0) & (r < k)  # (B, T)
    dcg = torch.where(hit, disc[r.clamp(0, k - 1)], torch.zeros((), dtype=torch.float64)).sum(1)  # (B,)
    ideal = torch.cat([torch.zeros(1, dtype=torch.float64), disc.cumsum(0)])  # (k + 1,)
    idcg = ideal[_num_targets(r).clamp(max=k)]  # (B,)
    return _div(dcg, idcg)


@METRICS.register("mrr", k="optional")
def mrr(ranks: Tensor, k: int | None = None) -> Tensor:
    """Reciprocal rank of the first target, 1 / (min rank + 1); with k, 0 when it is not in the top k."""
    r = _as_ranks(ranks)
    first = torch.where(r >= 0, r, torch.full_like(r, _INF_RANK)).min(1).values  # (B,)
    rr = 1.0 / (first.double() + 1.0)
    if k is not None:
        rr = torch.where(first < _check_k(k), rr, torch.zeros_like(rr))
    return torch.where(_num_targets(r) > 0, rr, torch.full_like(rr, math.nan))


@METRICS.register("map", k="required")
def map_at_k(ranks: Tensor, k: int) -> Tensor:
    """Average precision at k with denominator min(#targets, k) (ranx/trec_eval use #targets)."""
    r = _as_ranks(ranks)
    k = _check_k(k)
    s = _sorted_ranks(r)  # (B, T)
    j = torch.arange(1, s.shape[1] + 1, dtype=torch.float64)  # (T,)
    hit = s < k
    prec = torch.where(hit, j / (s.clamp(max=k).double() + 1.0), torch.zeros((), dtype=torch.float64))
    return _div(prec.sum(1), _num_targets(r).clamp(max=k))


@METRICS.register("auc", k="none", needs_candidates=True)
def auc(ranks: Tensor, num_candidates: Tensor | np.ndarray | Sequence[int]) -> Tensor:
    """Fraction of (target, non-target candidate) pairs where the target scores strictly higher.

    With pessimistic ranks, the j-th best target (0-based) has exactly ``r_j - j`` non-target
    candidates scoring at least as high as it, so ties count as losses. NaN without negatives.
    """
    r = _as_ranks(ranks)
    c = torch.as_tensor(num_candidates).long().reshape(-1)  # (B,)
    if c.shape[0] != r.shape[0]:
        raise ConfigError(f"num_candidates has {c.shape[0]} rows, ranks has {r.shape[0]}")
    n = _num_targets(r)  # (B,)
    neg = c - n  # (B,)
    s = _sorted_ranks(r)  # (B, T)
    j = torch.arange(s.shape[1])  # (T,)
    ahead = s - j  # non-targets at or above each target
    wins = torch.where(s != _INF_RANK, neg[:, None] - ahead, torch.zeros((), dtype=torch.long)).sum(1)
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


_NAME = re.compile(r"^([a-z_]+)(?:@(\d+))?$")


def parse_metric(name: str | MetricSpec) -> MetricSpec:
    """``"recall@20" -> MetricSpec("recall", 20)``; unknown names fail with the valid choices."""
    if isinstance(name, MetricSpec):
        return name
    m = _NAME.match(str(name).strip().lower().replace("-", "_"))
    if m is None:
        raise ConfigError(f"cannot parse metric name {name!r}; use e.g. recall@20, ndcg@10, mrr, auc")
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


def compute_metric(spec: str | MetricSpec, ranks: Tensor, num_candidates: Tensor | None = None) -> Tensor:
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


def target_order_ranks(target_scores: Tensor, valid: Tensor) -> Tensor:
    """Rank of each target among the user's targets: #(targets strictly higher) + #(earlier equal).

    Shapes: target_scores (B, T), valid (B, T) bool, padding at the end of each row -> (B, T) int64.
    """
    ts = target_scores.masked_fill(~valid, -math.inf)
    order = ts.sort(dim=1, descending=True, stable=True).indices  # (B, T), stable keeps target order
    pos = torch.empty_like(order)
    pos.scatter_(1, order, torch.arange(ts.shape[1], device=ts.device).expand_as(order))
    return pos


def pessimistic_ranks(
    scores: Tensor, target_idx: Tensor, candidate_mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Pessimistic 0-based ranks of targets given dense scores (O(B x T x C); for small inputs).

    Args:
        scores: (B, C) scores of every item.
        target_idx: (B, T) column indices of each user's targets, -1 padded, in target order
            (padding only at the end of a row). Targets must be candidates.
        candidate_mask: (B, C) bool, False for excluded items (not candidates). None: all are.

    Returns:
        ranks (B, T) int64, -1 padded, and num_candidates (B,) int64.
    """
    B, C = scores.shape
    t = torch.as_tensor(target_idx, device=scores.device).long()
    valid = t >= 0  # (B, T)
    cand = torch.ones(B, C, dtype=torch.bool, device=scores.device) if candidate_mask is None else candidate_mask.bool()
    is_target = torch.zeros(B, C, dtype=torch.bool, device=scores.device)
    rows = torch.arange(B, device=scores.device)[:, None].expand_as(t)
    is_target[rows[valid], t[valid]] = True
    if not bool(cand[rows[valid], t[valid]].all()):
        raise ConfigError("a target item is masked out (not a candidate); drop it from the targets first")
    ts = scores.gather(1, t.clamp(min=0))  # (B, T)
    nontarget = cand & ~is_target  # (B, C)
    ge = (scores[:, None, :] >= ts[:, :, None]) & nontarget[:, None, :]  # (B, T, C)
    ranks = ge.sum(-1) + target_order_ranks(ts, valid)
    return ranks.masked_fill(~valid, PAD_RANK), cand.sum(1)


# ---------------------------------------------------------------------------------------------------
# Accumulator


class RankingMetrics:
    """Accumulates per-user metric values batch by batch (``update / compute / reset``).

    Users without a target are skipped and counted (``num_skipped``). Per-user values are kept, in
    update order, for paired significance tests (``per_user()``, ``users``).

    Example:
        >>> acc = RankingMetrics(["recall@2", "auc"])
        >>> acc.update(torch.tensor([[0, 3]]), num_candidates=torch.tensor([5]))
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
        ranks: Tensor,
        num_candidates: Tensor | np.ndarray | None = None,
        users: Tensor | np.ndarray | Sequence[int] | None = None,
    ) -> None:
        """Add a batch. Shapes: ranks (B, T) -1 padded, num_candidates (B,), users (B,)."""
        r = _as_ranks(ranks).cpu()
        has = (r >= 0).any(1)  # (B,)
        self.num_skipped += int((~has).sum())
        if users is None:
            u = np.arange(self._count, self._count + r.shape[0])
        else:
            u = np.asarray(torch.as_tensor(users).cpu()).reshape(-1)
            if u.shape[0] != r.shape[0]:
                raise ConfigError(f"users has {u.shape[0]} entries, ranks has {r.shape[0]} rows")
        self._count += r.shape[0]
        if self.needs_candidates and num_candidates is None:
            raise ConfigError("auc needs num_candidates (number of candidate items per user)")
        c = None if num_candidates is None else torch.as_tensor(num_candidates).cpu().reshape(-1)[has]
        r = r[has]
        self._users.append(u[has.numpy()])
        for s in self.specs:
            self._values[s.name].append(compute_metric(s, r, c).numpy())

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

