"""Evaluation speed: fusionrec's full-ranking evaluation vs a bare ``U @ I.T`` + masked top-k.

The bare bound does, per batch of users, only ``scores = U[b] @ I.T``, sets the excluded
(user, item) pairs to -inf (coordinates prepared outside the timing) and takes ``topk(K)``: the least
any full-ranking evaluator must do. Ours additionally reads targets/exclusions from CSR matrices per
batch, masks the targets, computes exact pessimistic ranks and the metrics, and keeps per-user values.

Usage:
    PYTHONPATH=src .venv/bin/python benchmarks/eval_speed.py            # both cases (~5 min, 2 cores)
    PYTHONPATH=src .venv/bin/python benchmarks/eval_speed.py --small    # ml-100k-sized case only
    ... --threads 1 --sweep                                             # one thread; batch-size sweep

On a shared machine, timings move with the load: the rounds are interleaved so that every variant
sees the same conditions, and the minimum is the figure to compare.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import scipy.sparse as sp
import torch

from fusionrec.metrics.full_ranking import DEFAULT_SCORE_BUDGET, evaluate_full_ranking

CUT = ("recall", "ndcg")
RICH = ("recall", "ndcg", "precision", "hit_rate", "map", "mrr")


def make_data(U: int, I: int, D: int, n_targets: int, n_exclude: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    user_emb = torch.randn(U, D, generator=g)  # (U, D)
    item_emb = torch.randn(I, D, generator=g)  # (I, D)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, I, size=(U, n_targets + n_exclude))  # with replacement: ~ counts
    rows = np.repeat(np.arange(U), n_targets + n_exclude).reshape(U, -1)

    def mat(r: np.ndarray, c: np.ndarray) -> sp.csr_matrix:
        m = sp.csr_matrix((np.ones(r.size, dtype=np.int8), (r.ravel(), c.ravel())), shape=(U, I))
        m.sum_duplicates()
        m.data[:] = 1
        return m

    targets = mat(rows[:, :n_targets], draws[:, :n_targets])
    exclude = mat(rows[:, n_targets:], draws[:, n_targets:])
    exclude = (exclude - exclude.multiply(targets)).tocsr()
    exclude.eliminate_zeros()
    return user_emb, item_emb, targets, exclude


def dot_scorer(user_emb: torch.Tensor, item_emb: torch.Tensor):
    def scorer(users: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        it = item_emb if items is None else item_emb[items]
        return user_emb[users] @ it.T  # (B, C)

    return scorer


def bare_bound(user_emb, item_emb, exclude: sp.csr_matrix, B: int, K: int) -> float:
    """Seconds for batches of ``s = U[b] @ I.T; s[excluded] = -inf; s.topk(K)``; the flat indices
    of the excluded pairs are prepared before the clock starts (the fastest masking we found)."""
    U, I = exclude.shape
    coo = exclude.tocoo()
    flat = np.sort(coo.row.astype(np.int64) * I + coo.col)
    bounds = np.searchsorted(flat, np.arange(0, U + B, B) * I)
    masks = [torch.from_numpy(flat[a:b] - s0 * I) for s0, a, b in zip(range(0, U, B), bounds[:-1], bounds[1:])]
    ninf = torch.tensor(-torch.inf)
    t0 = time.perf_counter()
    with torch.no_grad():
        for m, s0 in zip(masks, range(0, U, B)):
            s = user_emb[s0 : s0 + B] @ item_emb.T  # (B, I)
            s.view(-1).scatter_(0, m, ninf.expand(m.numel()))
            s.topk(K, dim=1)
    return time.perf_counter() - t0


def ours(scorer, targets, exclude, metrics, B, chunk=None, ks=(10, 20)) -> float:
    res = evaluate_full_ranking(
        scorer, targets, exclude, ks=ks, metrics=metrics, user_batch_size=B, item_chunk_size=chunk
    )
    return res.seconds


def interleaved(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Run every function once per round, rounds repeated: load changes hit all of them alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for label, fn in fns.items():
            times[label].append(fn())
    return times


def run_case(name: str, U: int, I: int, D: int, repeats: int, auc_users: int, sweep: bool) -> None:
    user_emb, item_emb, targets, exclude = make_data(U, I, D, n_targets=10, n_exclude=85)
    scorer = dot_scorer(user_emb, item_emb)
    B = max(1, DEFAULT_SCORE_BUDGET // I)  # the evaluator's default batch size
    print(
        f"\n== {name}: {U} users x {I} items x {D} dims; targets/user {targets.nnz / U:.1f}, "
        f"excluded/user {exclude.nnz / U:.1f}; default user batch {min(B, U)}; "
        f"{repeats} interleaved rounds, min (median) seconds"
    )
    fns = {
        "bare matmul + masked top-20 (1.00x)": lambda: bare_bound(user_emb, item_emb, exclude, B, 20),
        "ours recall,ndcg @10,20 (default)": lambda: ours(scorer, targets, exclude, CUT, None),
        "ours + precision,hit_rate,map @10,20, mrr": lambda: ours(scorer, targets, exclude, RICH, None),
        f"ours default, item chunks of {I // 4}": lambda: ours(scorer, targets, exclude, CUT, None, I // 4),
    }
    times = interleaved(fns, repeats)
    bare = min(next(iter(times.values())))
    for label, ts in times.items():
        print(f"  {label:<44} {min(ts):8.3f} s ({np.median(ts):7.3f})   {min(ts) / bare:5.2f}x")
    if sweep:
        for budget in (1 << 22, 1 << 24, 1 << 26):
            b = max(1, budget // I)
            t = interleaved(
                {
                    "ours": lambda: ours(scorer, targets, exclude, CUT, b),  # noqa: B023  # timed in this iteration
                    "bare": lambda: bare_bound(user_emb, item_emb, exclude, b, 20),  # noqa: B023
                },
                repeats,
            )
            print(f"  batch {min(b, U):>6}: ours {min(t['ours']):.3f} s, bare {min(t['bare']):.3f} s")
    # AUC needs every target's exact rank (a sort per row): measured on a subset of users
    sub = min(auc_users, U)
    t = interleaved(
        {
            "cut": lambda: ours(scorer, targets[:sub], exclude[:sub], CUT, None),
            "auc": lambda: ours(scorer, targets[:sub], exclude[:sub], ("recall", "ndcg", "auc"), None),
        },
        max(1, repeats // 2),
    )
    print(
        f"  + auc on {sub} users: {min(t['auc']):.3f} s vs {min(t['cut']):.3f} s without ({min(t['auc']) / min(t['cut']):.1f}x)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="only the ml-100k-sized case")
    p.add_argument("--users", type=int, default=50_000, help="users in the large case")
    p.add_argument("--items", type=int, default=20_000, help="items in the large case")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--sweep", action="store_true", help="also sweep the user batch size")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs "
        f"({platform.machine()}), load average {load}"
    )
    run_case("ml-100k-sized", 943, 1682, args.dim, repeats=15, auc_users=943, sweep=args.sweep)
    if not args.small:
        run_case("large", args.users, args.items, args.dim, repeats=2, auc_users=2_000, sweep=args.sweep)


if __name__ == "__main__":
    main()
