"""LightGCN at 10^5, 10^6 and 10^7 synthetic interactions: seconds per epoch, evaluation users/s
against a bare matmul + top-k of the same shapes, peak RSS, and the log-log slope of epoch time.

Each size runs in its own process (so its peak RSS is its own), with ``--threads`` threads:

- data: the built-in ``synthetic`` set, users = n / 20, items = n / 50, per-user random 80/10/10 split,
  prepared under a temporary FUSIONREC_HOME (preparation time is reported, not counted);
- training: LightGCN (64-d, 2 layers), one full-graph propagation per step, as ``fusionrec train``
  runs it. The batch is ``train pairs / steps`` (``--steps`` per epoch, default 40 = ml-100k's count at
  batch 2048): with a fixed batch an epoch would cost steps x edges, i.e. grow quadratically with n
  for any full-graph model; scaling the batch keeps the number of propagations per epoch constant;
- evaluation: full ranking (train items masked) of ``--eval-users`` users (all when fewer) from the
  propagated embeddings, against ``scores = U @ I.T`` + masked ``topk`` on the same users and shapes;
  the propagation itself (done once per evaluation) is timed apart (``propagate_s``).

Usage::

    .venv/bin/python benchmarks/perf/scaling.py [--sizes 100000 1000000 10000000] [--threads 2] \
        [--out docs/figures/lightgcn_scaling.png] [--json runs/perf/scaling.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(n: int, threads: int, steps: int, eval_users: int) -> dict:
    import numpy as np
    import torch

    from fusionrec.data import load_dataset
    from fusionrec.metrics.full_ranking import evaluate_full_ranking
    from fusionrec.models.topk.lightgcn import LightGCN, LightGCNConfig
    from fusionrec.tasks.topk import TopKTask
    from fusionrec.training.record import peak_rss_mb

    torch.set_num_threads(threads)
    start = time.perf_counter()
    ds = load_dataset(
        "synthetic",
        options={"num_users": max(n // 20, 2), "num_items": max(n // 50, 2), "num_interactions": n, "seed": 0},
    )
    prepare_s = time.perf_counter() - start
    train_pairs = ds.matrix("train").nnz
    batch = math.ceil(train_pairs / steps)
    torch.manual_seed(0)
    model = LightGCN.from_dataset(LightGCNConfig(), ds)
    task = TopKTask(ds, batch_size=batch, num_negatives=1, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = iter(task.train_batches(1))
    first = next(batches)  # warm-up step (allocations, kernel selection), not timed
    loss = model.loss(first).loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    start = time.perf_counter()
    done = 1
    for b in batches:
        out = model.loss(b)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        done += 1
    epoch_s = (time.perf_counter() - start) * done / max(done - 1, 1)  # the warm-up step counted at average cost

    rng = np.random.default_rng(0)
    targets = ds.matrix("valid")
    users = np.flatnonzero(np.diff(targets.indptr) > 0)
    users = np.sort(rng.choice(users, min(eval_users, len(users)), replace=False))
    keep = np.zeros(targets.shape[0], dtype=bool)
    keep[users] = True
    mask_rows = lambda m: m.multiply(keep[:, None]).tocsr()  # noqa: E731  (only the sampled users are ranked)
    model.eval()
    with torch.no_grad():
        start = time.perf_counter()
        scorer = model.scorer()  # the propagation, once: the bound below starts from its output
        propagate_s = time.perf_counter() - start
        start = time.perf_counter()
        result = evaluate_full_ranking(
            scorer, mask_rows(targets), ds.matrix("train"), ks=(20,), metrics=("recall", "ndcg")
        )
        eval_s = time.perf_counter() - start
        user_emb, item_emb = model.propagate()
        exclude = ds.matrix("train")[users]
        bound_s = bare_topk(user_emb[torch.from_numpy(users)], item_emb, exclude, k=20)
    return {
        "interactions": n,
        "users": ds.num_users,
        "items": ds.num_items,
        "train_pairs": int(train_pairs),
        "batch_size": batch,
        "steps": done,
        "prepare_s": round(prepare_s, 2),
        "epoch_s": round(epoch_s, 3),
        "eval_users": int(len(users)),
        "propagate_s": round(propagate_s, 3),
        "eval_s": round(eval_s, 3),
        "eval_users_per_s": round(len(users) / eval_s, 1),
        "bound_s": round(bound_s, 3),
        "eval_over_bound": round(eval_s / bound_s, 2),
        "ndcg@20": round(result.metrics["ndcg@20"], 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "threads": threads,
    }


def bare_topk(user_emb, item_emb, exclude, k: int, block: int = 1 << 24) -> float:
    """Seconds for ``U @ I.T``, masking the excluded items to -inf and ``topk``, in user blocks of
    about ``block`` scores (the same memory bound as the evaluator's default)."""
    import numpy as np
    import torch

    rows = max(1, block // item_emb.shape[0])
    start = time.perf_counter()
    for lo in range(0, user_emb.shape[0], rows):
        scores = user_emb[lo : lo + rows] @ item_emb.T
        part = exclude[lo : lo + rows].tocoo()
        scores[torch.from_numpy(part.row.astype(np.int64)), torch.from_numpy(part.col.astype(np.int64))] = -math.inf
        torch.topk(scores, k, dim=1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40, help="training steps per epoch (batch = train pairs / steps)")
    parser.add_argument("--eval-users", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=None, help="log-log plot (PNG)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.threads, args.steps, args.eval_users)), flush=True)
        return

    rows = []
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "FUSIONREC_HOME": home, "OMP_NUM_THREADS": str(args.threads)}
        for n in args.sizes:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                str(n),
                "--threads",
                str(args.threads),
                "--steps",
                str(args.steps),
                "--eval-users",
                str(args.eval_users),
            ]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode:
                print(f"size {n}: failed\n{proc.stderr[-3000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)

    print(
        f"\nLightGCN (64-d, 2 layers, {args.steps} full-graph steps per epoch), {args.threads} thread(s), "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs\n"
    )
    print(
        "| interactions | users | items | batch | s/epoch | propagation s | eval users/s | eval / bound | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['interactions']:,} | {r['users']:,} | {r['items']:,} | {r['batch_size']:,} | {r['epoch_s']:.2f} | "
            f"{r['propagate_s']:.2f} | {r['eval_users_per_s']:,.0f} | {r['eval_over_bound']:.2f} | {r['peak_rss_mb']:,.0f} |"
        )
    if len(rows) >= 2:
        import numpy as np

        x = np.log10([r["interactions"] for r in rows])
        y = np.log10([r["epoch_s"] for r in rows])
        slope = float(np.polyfit(x, y, 1)[0])
        pairwise = [round(float((y[i + 1] - y[i]) / (x[i + 1] - x[i])), 3) for i in range(len(rows) - 1)]
        print(
            f"\nlog-log slope of s/epoch vs interactions: {slope:.3f} (fit), between consecutive sizes {pairwise}"
            f" (target <= 1.1)"
        )
        if args.out:
            plot(rows, slope, args.out)
            print(f"plot: {args.out}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))


def plot(rows: list[dict], slope: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["interactions"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.loglog(n, [r["epoch_s"] for r in rows], "o-", label=f"s/epoch (slope {slope:.2f})")
    linear = [rows[0]["epoch_s"] * x / n[0] for x in n]
    ax.loglog(n, linear, ":", color="grey", label="linear from the smallest size")
    ax.set_xlabel("interactions")
    ax.set_ylabel("seconds per epoch")
    ax.set_title("LightGCN epoch time vs data size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
