"""Full-ranking (and opt-in sampled-candidate) evaluation of a scorer, batched and chunked.

Protocol: each user's targets (nonzeros of ``targets``) are ranked among all items that are not
excluded for that user (nonzeros of ``exclude``, e.g. training items, plus validation items when
testing); excluded items are not candidates at all. Ties are ranked pessimistically (see
:mod:`fusionrec.metrics.ranking`): a target loses every tie with a non-target, tied targets are
ordered by ascending item index. Users without a target are skipped and counted.

How ranks are computed exactly with bounded memory (no Python loop over users or items):
users are taken in batches of B, items in chunks of C; per chunk the scorer returns (B, C) scores,
targets and excluded items are set to -inf in place, and

- cut-off metrics (``recall@k``, ``ndcg@k``, ``map@k``, ...; K = the largest k) only need ranks
  below K exactly: the running top-K values of the masked scores are merged chunk by chunk
  (O(B x (C + K)) memory), and a target's count of non-targets scoring >= it, capped at K, is
  ``#(top-K values >= target score)``. This costs about one ``topk`` more than nothing, so full
  evaluation stays close to a bare ``scores = U @ I.T`` + masked ``topk``.
- ``mrr`` (uncut) additionally needs the exact rank of each user's best target: exact already
  when it lies in the top K; for the other users, one more ``>=`` pass over their scores.
- ``auc`` needs every target's exact count: the counts of greater-or-equal candidates are additive
  over chunks; each chunk is sorted and the target scores are located with ``searchsorted``
  (O(C log C) per user: expect several times the cost of the matmul on large catalogues).

With ``item_chunk_size`` set, the target scores are only known after all chunks, so ``auc`` scores
every chunk twice and ``mrr`` re-scores the users whose best target is outside the top K (the
scorer must be deterministic); cut-off metrics need one pass. The results do not depend on the
batch and chunk sizes (tested): only memory and time do.

Scorer contract: ``scorer(users: LongTensor (B,), items: LongTensor (C,) | None) -> Tensor (B, C)``,
``items=None`` meaning all I items in index order. The evaluator writes -inf into the returned
tensor (masking), so a scorer must return a fresh tensor (views are cloned first). Scores must not
be NaN (checked; a clear error names the users).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from fusionrec.errors import ConfigError, DataError, FusionrecError
from fusionrec.metrics.ranking import (
    PAD_RANK,
    MetricSpec,
    RankingMetrics,
    expand_metric_names,
    target_order_ranks,
)

Scorer = Callable[[Tensor, "Tensor | None"], Tensor]

DEFAULT_SCORE_BUDGET = 1 << 24
"""Default number of scores per (B, C) block (64 MiB in float32) when no batch size is given."""

_NEG_INF = -math.inf


@dataclass
class EvalResult:
    """Outcome of an evaluation, for every task family.

    The ranking families evaluate users; other families evaluate other units (a labelled row, a rating,
    an impression, a triple): ``unit`` names it, and ``users`` / ``per_user`` then hold those units' ids and
    values (the field names predate the other families; ``fit``, the run record and the paired significance
    tests read them the same way for every family).

    Attributes:
        metrics: mean over evaluated units, e.g. ``{"recall@20": 0.38, "ndcg@20": 0.32}``.
        per_user: per-unit values (float64), aligned with ``users`` (for paired significance tests).
        users: evaluated unit ids, ascending (user indices of rows of ``targets`` with at least one
            target for the ranking families).
        num_users_evaluated: ``len(users)``.
        num_users_skipped: units not scored (users without any target for the ranking families).
        seconds: wall-clock time of the whole evaluation.
        num_targets_excluded: target entries that were also excluded (so not candidates) and were
            dropped from the targets (full ranking only; a warning is issued when > 0).
        protocol: one line describing candidates, masking and ties.
        unit: what ``users`` counts: ``user`` for the ranking families, else the family's unit
            (``row``, ``rating``, ``impression``, ``triple``, ...).
    """

    metrics: dict[str, float]
    per_user: dict[str, np.ndarray]
    users: np.ndarray
    num_users_evaluated: int
    num_users_skipped: int
    seconds: float
    num_targets_excluded: int = 0
    protocol: str = ""
    unit: str = "user"


# ---------------------------------------------------------------------------------------------------
# Sparse helpers (vectorised over the rows of a batch)


def _binary_csr(m: object, what: str, shape: tuple[int, int] | None = None) -> sp.csr_matrix:
    if not sp.issparse(m):
        raise DataError(f"{what} must be a scipy.sparse matrix (users x items), got {type(m).__name__}")
    c = sp.csr_matrix(m, copy=True)
    c.sum_duplicates()
    c.eliminate_zeros()
    c.data = np.ones_like(c.data, dtype=np.int8)
    c.sort_indices()
    if shape is not None and c.shape != shape:
        raise DataError(f"{what} has shape {c.shape} but targets have shape {shape}; both must be users x items")
    return c


def sample_users(targets: sp.spmatrix, num_users: int | None, seed: int) -> sp.csr_matrix:
    """``targets`` with the rows of only ``num_users`` of its users that have a target (drawn once, without
    replacement, from ``seed``); all of them when ``num_users`` is None or not below their number.

    For validation on data sets where a full pass costs minutes: the same seed gives the same users every
    epoch, so the epochs' scores stay comparable. The other users have no target and are skipped.
    """
    tgt = sp.csr_matrix(targets)
    with_targets = np.flatnonzero(np.diff(tgt.indptr) > 0)
    if num_users is None or num_users >= len(with_targets):
        return tgt
    if num_users <= 0:
        raise ValueError(f"num_users must be positive, got {num_users}")
    keep = np.zeros(tgt.shape[0], dtype=tgt.dtype)
    keep[np.random.default_rng(seed).choice(with_targets, size=num_users, replace=False)] = 1
    sampled = (sp.diags(keep) @ tgt).tocsr()
    sampled.eliminate_zeros()
    return sampled


def _row_lengths(c: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = c.indptr[rows]
    return starts, c.indptr[rows + 1] - starts


def _coords(c: sp.csr_matrix | None, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(local row, column) of the nonzeros of ``c[rows]``; local rows are 0..len(rows)-1."""
    if c is None:
        z = np.zeros(0, dtype=np.int64)
        return z, z
    starts, lens = _row_lengths(c, rows)
    local = np.repeat(np.arange(len(rows)), lens)
    offs = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    return local, c.indices[np.repeat(starts, lens) + offs].astype(np.int64)


def _padded(c: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Column indices of ``c[rows]`` as a (B, T) array, ascending per row, -1 padded at the end."""
    starts, lens = _row_lengths(c, rows)
    out = np.full((len(rows), max(int(lens.max(initial=0)), 1)), PAD_RANK, dtype=np.int64)
    local, cols = _coords(c, rows)
    offs = np.arange(len(cols)) - np.repeat(np.cumsum(lens) - lens, lens)
    out[local, offs] = cols
    return out


def _chunks(num_items: int, item_chunk_size: int | None) -> list[tuple[int, int]]:
    if item_chunk_size is None or item_chunk_size >= num_items:
        return [(0, num_items)]
    if item_chunk_size < 1:
        raise ConfigError(f"item_chunk_size must be a positive integer or None, got {item_chunk_size}")
    return [(a, min(a + item_chunk_size, num_items)) for a in range(0, num_items, item_chunk_size)]


def _batch_size(user_batch_size: int | None, num_cols: int) -> int:
    if user_batch_size is None:
        return max(1, DEFAULT_SCORE_BUDGET // max(num_cols, 1))
    if user_batch_size < 1:
        raise ConfigError(f"user_batch_size must be a positive integer or None, got {user_batch_size}")
    return int(user_batch_size)


def _score(scorer: Scorer, users: Tensor, span: tuple[int, int], num_items: int, item_range: Tensor | None) -> Tensor:
    a, b = span
    items = None if (a, b) == (0, num_items) else item_range[a:b]  # type: ignore[index]
    s = scorer(users, items)
    if not isinstance(s, Tensor) or s.shape != (users.shape[0], b - a):
        got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
        raise FusionrecError(
            f"scorer returned {got} for {users.shape[0]} users x {b - a} items; it must return a (B, C) tensor"
        )
    if not s.is_floating_point():
        s = s.float()
    elif s._is_view() or s.requires_grad or not s.is_contiguous():
        s = s.detach().clone(memory_format=torch.contiguous_format)  # never write into the caller's storage
    return s


class _Batch:
    """One batch of B users and the flat indices its (B, C) score blocks need, per item chunk.

    Prepared once per batch in NumPy; masking is a 1-D ``scatter_`` into the contiguous block
    (several times faster than 2-D advanced indexing on CPU), target scores one ``gather``.

    Shapes: tpad (B, T) column indices of targets, -1 padded; masked pairs (r, c) as two (M,)
    arrays in row-major order (as read from a CSR matrix), so the flat indices are ascending.
    """

    def __init__(
        self, rows: np.ndarray, tpad: np.ndarray, mr: np.ndarray, mc: np.ndarray, spans: list[tuple[int, int]]
    ) -> None:
        self.rows, self.tpad, self.spans = rows, tpad, spans
        self.valid = tpad >= 0  # (B, T)
        whole = len(spans) == 1
        self.mask_idx: list[Tensor] = []
        self.tgt_col: list[Tensor] = []
        self.tgt_in: list[Tensor | None] = []
        for a, b in spans:
            C = b - a
            sel = slice(None) if whole else (mc >= a) & (mc < b)
            self.mask_idx.append(torch.from_numpy(mr[sel] * C + (mc[sel] - a)))  # ascending if (mr, mc) is
            inside = self.valid & (tpad >= a) & (tpad < b)  # (B, T)
            self.tgt_col.append(torch.from_numpy(np.where(inside, tpad - a, 0)))
            self.tgt_in.append(None if whole else torch.from_numpy(inside))

    def mask_(self, s: Tensor, j: int) -> None:
        """Set the excluded and target pairs of chunk j to -inf, in place. s: (B, C)."""
        idx = self.mask_idx[j].to(s.device)
        if idx.numel():
            s.view(-1).scatter_(0, idx, torch.full((), _NEG_INF, dtype=s.dtype, device=s.device).expand(idx.numel()))

    def mask_rows_(self, s: Tensor, j: int, rows: np.ndarray) -> None:
        """As :meth:`mask_` for a block s (N, C) holding only the given rows (ascending) of the batch."""
        C = s.shape[1]
        idx = self.mask_idx[j].numpy()
        r, c = np.divmod(idx, C)
        keep = np.isin(r, rows)
        flat = np.searchsorted(rows, r[keep]) * C + c[keep]  # ascending
        if flat.size:
            t = torch.from_numpy(flat).to(s.device)
            s.view(-1).scatter_(0, t, torch.full((), _NEG_INF, dtype=s.dtype, device=s.device).expand(t.numel()))

    def gather(self, out: Tensor, s: Tensor, j: int) -> Tensor:
        """``out`` (B, T) with the scores of the targets in chunk j filled in from s (B, C);
        entries of targets outside chunk j keep their value (padding: whatever the gather gives)."""
        g = s.gather(1, self.tgt_col[j].to(s.device))  # (B, T)
        inside = self.tgt_in[j]
        return g if inside is None else torch.where(inside.to(s.device), g, out)


def _check_nan(x: Tensor | np.ndarray, users: np.ndarray, what: str) -> None:
    if isinstance(x, Tensor) and _on_cpu(x):
        x = x.numpy()
    bad = torch.isnan(x) if isinstance(x, Tensor) else np.isnan(x)
    if bool(bad.any()):
        bad_rows = bad.reshape(bad.shape[0], -1).any(1)
        idx = np.flatnonzero(bad_rows.cpu().numpy() if isinstance(bad_rows, Tensor) else bad_rows)[:5]
        raise FusionrecError(f"scorer returned NaN {what} for users {users[idx].tolist()}; fix the model's scores")


def _needs(specs: Sequence[MetricSpec]) -> tuple[str, int]:
    """Which exact ranks are needed ('cap' / 'first' / 'all') and the largest cut-off K (>= 1)."""
    bases = {s.base for s in specs if s.k is None}
    mode = "all" if "auc" in bases else "first" if "mrr" in bases else "cap"
    ks = [s.k for s in specs if s.k is not None]
    return mode, max(ks) if ks else 1


# ---------------------------------------------------------------------------------------------------
# Full ranking


def evaluate_full_ranking(
    scorer: Scorer,
    targets: sp.spmatrix,
    exclude: sp.spmatrix | None = None,
    ks: Iterable[int] = (10, 20),
    metrics: Iterable[str] = ("recall", "ndcg"),
    user_batch_size: int | None = None,
    item_chunk_size: int | None = None,
    device: str | torch.device = "cpu",
) -> EvalResult:
    """Rank every user's targets among all non-excluded items and average ranking metrics.

    Args:
        scorer: ``scorer(users (B,), items (C,) | None) -> (B, C)`` scores; None means all items.
        targets: (U, I) sparse, nonzero = target item of that user (e.g. test interactions).
        exclude: (U, I) sparse, nonzero = not a candidate for that user (e.g. train + valid items).
            A target that is also excluded is dropped from the targets (warned, counted).
        ks: cut-offs for the names in ``metrics`` that need one.
        metrics: base names expanded over ``ks`` (``recall, ndcg, precision, hit_rate, map``,
            ``mrr@k``), or full names (``ndcg@5``, ``mrr``, ``auc``). See ``ranking.METRICS``.
        user_batch_size: users per batch (default: about 2**24 scores per block).
        item_chunk_size: items per chunk (default None: all items at once). The result does not
            depend on it (ranks are exact); only memory and, for ``mrr``/``auc``, time do.
        device: where user indices (and masks) are placed; scores stay on the scorer's device.

    Returns:
        EvalResult with means, per-user values and counts.

    Shapes:
        per batch: scores (B, C), targets (B, T), running top-K (B, K), counts (B, T).
    """
    t0 = time.perf_counter()
    specs = expand_metric_names(metrics, ks)
    tgt = _binary_csr(targets, "targets")
    U, I = tgt.shape
    exc = None if exclude is None else _binary_csr(exclude, "exclude", (U, I))
    dropped = 0
    if exc is not None:
        overlap = tgt.multiply(exc).tocsr()
        overlap.eliminate_zeros()
        dropped = int(overlap.nnz)
        if dropped:
            warnings.warn(
                f"{dropped} target (user, item) pairs are also excluded (not candidates); they are "
                "dropped from the targets. Remove them from the split or from `exclude` to silence this.",
                stacklevel=2,
            )
            tgt = _binary_csr(tgt - overlap, "targets")
    n_targets = np.diff(tgt.indptr)  # (U,)
    n_excluded = np.zeros(U, dtype=np.int64) if exc is None else np.diff(exc.indptr)
    masked = tgt if exc is None else _binary_csr(tgt + exc, "targets + exclude")  # set to -inf
    num_candidates = I - n_excluded  # (U,)
    users = np.flatnonzero(n_targets > 0)
    mode, K = _needs(specs)
    Kp = min(K, I)
    spans = _chunks(I, item_chunk_size)
    B = _batch_size(user_batch_size, spans[0][1] - spans[0][0])
    dev = torch.device(device)
    item_range = torch.arange(I, device=dev) if len(spans) > 1 else None
    acc = RankingMetrics(specs)

    with torch.no_grad():
        for s0 in range(0, len(users), B):
            rows = users[s0 : s0 + B]  # (B,)
            u = torch.from_numpy(rows).to(dev)
            batch = _Batch(rows, _padded(tgt, rows), *_coords(masked, rows), spans)
            n_nt = num_candidates[rows] - n_targets[rows]  # (B,) non-target candidates
            ranks = _full_batch_ranks(scorer, u, batch, n_nt, I, item_range, mode, Kp)
            acc.update(ranks, num_candidates[rows], users=rows)

    per_user = acc.per_user()
    return EvalResult(
        metrics=acc.compute(),
        per_user=per_user,
        users=acc.users,
        num_users_evaluated=acc.num_users,
        num_users_skipped=int(U - len(users)),
        seconds=time.perf_counter() - t0,
        num_targets_excluded=dropped,
        protocol=(
            f"full ranking over {I} items, {0 if exc is None else exc.nnz} excluded (user, item) pairs "
            "not candidates, pessimistic ties, users without targets skipped"
        ),
    )


def shard_users(targets: sp.spmatrix, rank: int, world_size: int) -> sp.csr_matrix:
    """``targets`` keeping every ``world_size``-th user that has a target, from the ``rank``-th on (the
    other rows emptied): one rank's part of a data-parallel evaluation, joined by :func:`merge_results`."""
    tgt = _binary_csr(targets, "targets")
    users = np.flatnonzero(np.diff(tgt.indptr) > 0)
    keep = np.zeros(tgt.shape[0], dtype=bool)
    keep[users[rank::world_size]] = True
    return _binary_csr(sp.diags(keep.astype(np.float32)) @ tgt, "targets")


def merge_results(parts: Sequence[EvalResult]) -> EvalResult:
    """One result from the results of disjoint user shards (:func:`shard_users`) of one evaluation:
    per-user values joined in user order, means recomputed over all users (NaN left out, as in
    :meth:`RankingMetrics.compute`), so the result equals the unsharded evaluation's."""
    users = np.concatenate([p.users for p in parts])
    order = np.argsort(users, kind="stable")
    per_user = {name: np.concatenate([p.per_user[name] for p in parts])[order] for name in parts[0].per_user}
    metrics = {}
    for name, values in per_user.items():
        finite = values[~np.isnan(values)]
        metrics[name] = float(finite.mean()) if finite.size else math.nan
    evaluated = sum(p.num_users_evaluated for p in parts)
    return EvalResult(
        metrics=metrics,
        per_user=per_user,
        users=users[order],
        num_users_evaluated=evaluated,
        num_users_skipped=parts[0].num_users_evaluated + parts[0].num_users_skipped - evaluated,
        seconds=max(p.seconds for p in parts),
        num_targets_excluded=sum(p.num_targets_excluded for p in parts),
        protocol=parts[0].protocol,
        unit=parts[0].unit,
    )


def _full_batch_ranks(
    scorer: Scorer,
    u: Tensor,
    batch: _Batch,
    n_nt: np.ndarray,
    I: int,
    item_range: Tensor | None,
    mode: str,
    Kp: int,
) -> np.ndarray:
    """Pessimistic ranks (B, T), -1 padded: exact below Kp; exact everywhere for mode 'all'; for
    mode 'first' also exact for each user's best target. The (B, C) work runs in torch on the
    scorer's device; the small (B, T) / (B, T, K) work in NumPy. n_nt: (B,) non-target candidates."""
    spans, rows, valid = batch.spans, batch.rows, batch.valid
    whole = len(spans) == 1
    ts = top = cnt = s = None
    for j, span in enumerate(spans):
        s = _score(scorer, u, span, I, item_range)  # (B, C)
        if ts is None:
            ts = torch.full(valid.shape, _NEG_INF, dtype=s.dtype, device=s.device)  # (B, T)
        ts = batch.gather(ts, s, j)
        batch.mask_(s, j)
        if mode == "all" and whole:
            _check_nan(s, rows, "scores")
            cnt = _count_ge(s, ts)  # (B, T) exact
        else:
            t = s.topk(min(Kp, s.shape[1]), dim=1, sorted=False).values  # (B, K)
            if top is not None:
                t = torch.cat([top, t], 1)
                t = t.topk(min(Kp, t.shape[1]), dim=1, sorted=False).values
            top = t
    assert ts is not None and s is not None
    ts_np = _host(ts)  # (B, T) float64
    _check_nan(np.where(valid, ts_np, 0.0), rows, "target scores")
    tpart = target_order_ranks(ts_np, valid)  # (B, T)
    n_nt = n_nt[:, None]  # (B, 1)

    if mode == "all":
        if cnt is None:  # chunked: second pass now that all target scores are known
            cnt = np.zeros(ts.shape, dtype=np.int64)
            for j, span in enumerate(spans):
                s = _score(scorer, u, span, I, item_range)
                batch.mask_(s, j)
                _check_nan(s, rows, "scores")
                cnt += _count_ge(s, ts)
        ranks = np.minimum(cnt, n_nt) + tpart
        return np.where(valid, ranks, PAD_RANK)

    assert top is not None
    top_np = _host(top)  # (B, K)
    _check_nan(top_np, rows, "scores")
    cnt_np = (top_np[:, None, :] >= ts_np[:, :, None]).sum(-1)  # (B, T), capped at Kp
    capped = cnt_np >= Kp if Kp < I else np.zeros(cnt_np.shape, dtype=bool)
    ranks = np.minimum(cnt_np, n_nt) + tpart
    if mode == "first":
        # Exact rank of each user's best target (for uncut MRR). Already exact unless capped; for
        # the capped users only, one more >= pass over their scores (a re-score when chunked).
        bpos = (tpart == 0) & valid  # (B, T) the best target of each row
        need = np.flatnonzero((capped & bpos).any(1))
        r1 = (np.where(bpos, ranks, 0)).sum(1, keepdims=True)  # (B, 1)
        if need.size:
            best_all = np.where(valid, ts_np, -np.inf).max(1, keepdims=True)  # (B, 1)
            c1 = np.zeros((len(need), 1), dtype=np.int64)
            few = whole and 2 * len(need) < len(valid)  # else count all rows, keep the needed ones
            sub = torch.from_numpy(need).to(s.device)
            for j, span in enumerate(spans):
                if not whole:
                    s_j = _score(scorer, u[sub.to(u.device)], span, I, item_range)  # (N, C)
                    batch.mask_rows_(s_j, j, need)
                    c1 += _count_ge(s_j, _like(best_all[need], s_j))
                elif few:
                    s_j = s.index_select(0, sub)  # s is the masked block from above
                    c1 += _count_ge(s_j, _like(best_all[need], s_j))
                else:
                    c1 += _count_ge(s, _like(best_all, s))[need]
            r1[need] = np.minimum(c1, n_nt[need])
        ranks = np.where(capped, np.maximum(r1 + 1, Kp) + tpart, ranks)
        ranks = np.where(bpos, r1, ranks)
    return np.where(valid, ranks, PAD_RANK)


def _host(x: Tensor) -> np.ndarray:
    """A small tensor as a float64 NumPy array (exact for every float dtype)."""
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    return x.detach().cpu().numpy().astype(np.float64)


def _like(x: np.ndarray, s: Tensor) -> Tensor:
    return torch.from_numpy(x).to(device=s.device, dtype=s.dtype)


def _on_cpu(s: Tensor) -> bool:
    return s.device.type == "cpu" and s.dtype in (torch.float32, torch.float64)


def _count_ge(s: Tensor, thr: Tensor) -> np.ndarray:
    """#(entries of row b of s >= thr[b, t]). s: (B, C), thr: (B, T) same dtype -> (B, T) int64.

    One threshold per row: a comparison pass. Several: sort each row once and ``searchsorted``.
    On the CPU both run in NumPy (its SIMD sort and bool reductions are several times faster than
    torch's on CPU); elsewhere in torch.
    """
    C = s.shape[1]
    if _on_cpu(s):
        sn, tn = s.numpy(), thr.cpu().numpy()
        if tn.shape[1] == 1:
            return np.count_nonzero(sn >= tn, axis=1)[:, None].astype(np.int64)
        srt = torch.from_numpy(np.sort(sn, axis=1))  # (B, C) ascending
        return C - torch.searchsorted(srt, thr.contiguous(), right=False).numpy()
    if thr.shape[1] == 1:
        return (s >= thr).sum(1, keepdim=True).cpu().numpy()
    srt = s.sort(dim=1).values
    return (C - torch.searchsorted(srt, thr.contiguous(), right=False)).cpu().numpy()


# ---------------------------------------------------------------------------------------------------
# Sampled-candidate evaluation (opt-in)


def sample_negatives(
    targets: sp.spmatrix,
    exclude: sp.spmatrix | None,
    users: np.ndarray,
    num_negatives: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw, per user, ``num_negatives`` distinct items uniformly from the items that are neither
    targets nor excluded (all of them when fewer remain). Vectorised: uniform random keys for every
    (user, item), forbidden items pushed last, the smallest keys kept.

    The keys are drawn row after row from ``rng``, so the sample of a user does not depend on how
    users are batched, only on the seed and on the users evaluated before it.

    Returns:
        (B, N) int64 item indices, -1 padded, in the order drawn.
    """
    tgt = _binary_csr(targets, "targets")
    exc = None if exclude is None else _binary_csr(exclude, "exclude_for_negatives", tgt.shape)
    return _sample_rows(tgt, exc, np.asarray(users, dtype=np.int64), num_negatives, rng)


def _sample_rows(
    tgt: sp.csr_matrix, exc: sp.csr_matrix | None, rows: np.ndarray, num_negatives: int, rng: np.random.Generator
) -> np.ndarray:
    I = tgt.shape[1]
    keys = torch.from_numpy(rng.random((len(rows), I)))  # (B, I) float64 in [0, 1)
    for c in (tgt, exc):
        r, col = _coords(c, rows)
        keys[torch.from_numpy(r), torch.from_numpy(col)] = 2.0  # forbidden
    n = min(num_negatives, I)
    v, i = keys.topk(n, dim=1, largest=False, sorted=True)  # (B, N)
    return i.masked_fill(v >= 2.0, PAD_RANK).numpy()


def evaluate_sampled(
    scorer: Scorer,
    targets: sp.spmatrix,
    exclude_for_negatives: sp.spmatrix | None = None,
    num_negatives: int = 100,
    seed: int = 0,
    ks: Iterable[int] = (10, 20),
    metrics: Iterable[str] = ("recall", "ndcg"),
    user_batch_size: int | None = None,
    item_chunk_size: int | None = None,
    device: str | torch.device = "cpu",
) -> EvalResult:
    """Rank each user's targets among its targets plus ``num_negatives`` sampled negatives.

    Opt-in protocol (full ranking is the default and preferred: sampled metrics are biased and may
    order models differently). Negatives: see :func:`sample_negatives` (seeded with ``seed``,
    reproducible, never a target or an excluded item). Ties are pessimistic as in full ranking.
    The scorer is called on all items (or item chunks) and the candidates' scores gathered.

    Returns:
        EvalResult; ``auc`` here is the sampled AUC (pairs with the drawn negatives).
    """
    t0 = time.perf_counter()
    specs = expand_metric_names(metrics, ks)
    if isinstance(num_negatives, bool) or int(num_negatives) < 1:
        raise ConfigError(f"num_negatives must be a positive integer, got {num_negatives}")
    tgt = _binary_csr(targets, "targets")
    U, I = tgt.shape
    exc = None if exclude_for_negatives is None else _binary_csr(exclude_for_negatives, "exclude_for_negatives", (U, I))
    n_targets = np.diff(tgt.indptr)
    users = np.flatnonzero(n_targets > 0)
    rng = np.random.default_rng(seed)
    spans = _chunks(I, item_chunk_size)
    whole = len(spans) == 1
    B = _batch_size(user_batch_size, spans[0][1] - spans[0][0])
    dev = torch.device(device)
    item_range = None if whole else torch.arange(I, device=dev)
    acc = RankingMetrics(specs)

    with torch.no_grad():
        for s0 in range(0, len(users), B):
            rows = users[s0 : s0 + B]
            u = torch.from_numpy(rows).to(dev)
            neg_np = _sample_rows(tgt, exc, rows, int(num_negatives), rng)  # (B, N)
            cand_np = np.concatenate([_padded(tgt, rows), neg_np], 1)  # (B, T + N)
            T = cand_np.shape[1] - neg_np.shape[1]
            batch = _Batch(rows, cand_np, np.zeros(0, np.int64), np.zeros(0, np.int64), spans)
            cs = None
            for j, span in enumerate(spans):
                s = _score(scorer, u, span, I, item_range)  # (B, C)
                if cs is None:
                    cs = torch.full(cand_np.shape, _NEG_INF, dtype=s.dtype, device=s.device)  # (B, T + N)
                cs = batch.gather(cs, s, j)
            assert cs is not None
            cs_np = _host(cs)
            ts, ns = cs_np[:, :T], cs_np[:, T:]  # (B, T), (B, N)
            valid, nvalid = cand_np[:, :T] >= 0, cand_np[:, T:] >= 0
            _check_nan(np.where(valid, ts, 0.0), rows, "target scores")
            _check_nan(np.where(nvalid, ns, 0.0), rows, "scores")
            cnt = ((ns[:, None, :] >= ts[:, :, None]) & nvalid[:, None, :]).sum(-1)  # (B, T)
            ranks = np.where(valid, cnt + target_order_ranks(ts, valid), PAD_RANK)
            acc.update(ranks, valid.sum(1) + nvalid.sum(1), users=rows)

    return EvalResult(
        metrics=acc.compute(),
        per_user=acc.per_user(),
        users=acc.users,
        num_users_evaluated=acc.num_users,
        num_users_skipped=int(U - len(users)),
        seconds=time.perf_counter() - t0,
        protocol=(
            f"sampled candidates: targets + {num_negatives} uniform negatives per user (seed {seed}) "
            "from items neither target nor excluded, pessimistic ties, users without targets skipped"
        ),
    )
