"""Top-k retrieval for ``recommend`` and serving: the k best non-excluded items per user, exact,
batched over users and chunked over items with bounded memory (the same masking blocks as the
full-ranking evaluator, :mod:`fusionrec.metrics.full_ranking`, without any metric)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from fusionrec.errors import ConfigError, DataError, FusionrecError
from fusionrec.metrics.full_ranking import (
    _NEG_INF,
    PAD_RANK,
    Scorer,
    _Batch,
    _batch_size,
    _binary_csr,
    _check_nan,
    _chunks,
    _coords,
    _score,
)


def _topk_lowest_index(vals: Tensor, idx: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k best (value, index) pairs per row, ties broken by lower index. (B, N) -> (B, k)."""
    order = idx.argsort(dim=1, stable=True)
    vals, idx = vals.gather(1, order), idx.gather(1, order)
    order = vals.sort(dim=1, descending=True, stable=True).indices[:, :k]
    return vals.gather(1, order), idx.gather(1, order)


def _topk_rows(s: Tensor, k: int, offset: int) -> tuple[Tensor, Tensor]:
    """Exact top-k of each row of s (B, C), ties by lower column, without sorting whole rows."""
    B, C = s.shape
    thr = s.topk(k, dim=1, sorted=False).values.min(1, keepdim=True).values  # (B, 1) k-th value
    gt = s > thr
    eq = s == thr
    take = gt | (eq & (eq.cumsum(1) <= k - gt.sum(1, keepdim=True)))  # exactly k per row
    col = torch.nonzero(take)[:, 1].reshape(B, k)  # ascending columns
    return _topk_lowest_index(s.gather(1, col), col + offset, k)


def top_k_items(
    scorer: Scorer,
    users: Tensor | np.ndarray | Sequence[int],
    k: int,
    exclude: sp.spmatrix | None = None,
    user_batch_size: int | None = None,
    item_chunk_size: int | None = None,
    num_items: int | None = None,
    device: str | torch.device = "cpu",
    exclude_rows: str = "auto",
) -> tuple[Tensor, Tensor]:
    """Recommend the k best non-excluded items to each user.

    Ties are broken by lower item index (deterministic). Items scoring -inf are treated like
    excluded ones. Where a user has fewer than k candidates, the remaining slots hold index -1 and
    score -inf.

    Args:
        scorer: as for :func:`evaluate_full_ranking`.
        users: (N,) user indices.
        k: number of items per user.
        exclude: sparse, nonzero = never recommend (e.g. already seen items): either (U, I) with
            row u for user u, or (N, I) with row n for ``users[n]``; see ``exclude_rows``.
        num_items: I; needed only without ``exclude`` and with ``item_chunk_size``.
        exclude_rows: ``"user"`` (row = user index), ``"aligned"`` (row n = ``users[n]``) or
            ``"auto"``: aligned when ``exclude`` has N rows, else by user index; an error when both
            readings are possible and differ (pass it explicitly then).

    Returns:
        indices (N, k) int64 and scores (N, k), best first.
    """
    u_all = np.asarray(users.cpu() if isinstance(users, Tensor) else users, dtype=np.int64).reshape(-1)
    k = int(k)
    if k < 1:
        raise ConfigError(f"k must be a positive integer, got {k}")
    exc = None
    exc_rows = u_all
    if exclude is not None:
        exc = _binary_csr(exclude, "exclude")
        num_items = exc.shape[1]
        n_rows = exc.shape[0]
        if exclude_rows not in ("auto", "user", "aligned"):
            raise ConfigError(f"exclude_rows must be 'auto', 'user' or 'aligned', got {exclude_rows!r}")
        by_user_ok = len(u_all) == 0 or (u_all.min() >= 0 and u_all.max() < n_rows)
        mode = exclude_rows
        if mode == "auto":
            if n_rows != len(u_all):
                mode = "user"
            elif not by_user_ok or np.array_equal(u_all, np.arange(n_rows)):
                mode = "aligned"
            else:
                raise ConfigError(
                    f"exclude has {n_rows} rows, as many as users, and its rows could be users or the "
                    "given users in order; pass exclude_rows='user' or exclude_rows='aligned'"
                )
        if mode == "aligned":
            if n_rows != len(u_all):
                raise DataError(f"exclude has {n_rows} rows but {len(u_all)} users were given (exclude_rows='aligned')")
            exc_rows = np.arange(len(u_all))
        elif not by_user_ok:
            raise DataError(f"user indices must lie in [0, {n_rows}) (the rows of exclude)")
    if num_items is None and item_chunk_size is not None:
        raise ConfigError("top_k_items with item_chunk_size needs num_items (or exclude, which has I columns)")
    dev = torch.device(device)
    out_i: list[Tensor] = []
    out_s: list[Tensor] = []
    with torch.no_grad():
        B = _batch_size(user_batch_size, item_chunk_size or num_items or 1 << 14)
        for s0 in range(0, len(u_all), B):
            rows = u_all[s0 : s0 + B]
            u = torch.from_numpy(rows).to(dev)
            first = None
            if num_items is None:  # no chunking: learn I from the first call
                first = scorer(u, None)
                if not isinstance(first, Tensor) or first.dim() != 2:
                    got = tuple(first.shape) if isinstance(first, Tensor) else type(first).__name__
                    raise FusionrecError(f"scorer returned {got}; it must return a (B, C) tensor")
                num_items = int(first.shape[1])
            I = num_items
            if k > I:
                raise ConfigError(f"k={k} is larger than the number of items ({I})")
            spans = _chunks(I, item_chunk_size)
            item_range = None if len(spans) == 1 else torch.arange(I, device=dev)
            batch = _Batch(rows, np.full((len(rows), 1), PAD_RANK), *_coords(exc, exc_rows[s0 : s0 + B]), spans)
            best_v: Tensor | None = None
            best_i: Tensor | None = None
            for j, span in enumerate(spans):
                if first is not None:
                    computed: Tensor = first
                    s, first = _score(lambda *_: computed, u, span, I, item_range), None  # noqa: B023  # (B, I), called at once
                else:
                    s = _score(scorer, u, span, I, item_range)  # (B, C)
                batch.mask_(s, j)
                _check_nan(s, rows, "scores")
                v, i = _topk_rows(s, min(k, s.shape[1]), span[0])
                if best_v is None or best_i is None:
                    best_v, best_i = v, i
                else:
                    best_v, best_i = _topk_lowest_index(torch.cat([best_v, v], 1), torch.cat([best_i, i], 1), k)
            assert best_v is not None and best_i is not None
            out_i.append(best_i.masked_fill(best_v == _NEG_INF, -1))
            out_s.append(best_v)
    if not out_i:
        return torch.zeros(0, k, dtype=torch.long), torch.zeros(0, k)
    return torch.cat(out_i), torch.cat(out_s)
