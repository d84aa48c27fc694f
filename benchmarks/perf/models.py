"""Every registered model: seconds per training epoch, evaluation users per second and peak RSS, from
short runs of ``fusionrec train`` (each in its own process, so its peak RSS is its own).

On ml-100k (default) top-K models train on the peer split (``data.split.method=files``), sequential
models on leave-one-out. With ``--interactions N`` they train on the built-in ``synthetic`` set instead
(N interactions, N / 20 users, N / 50 items; top-K on its per-user random split, sequential on
leave-one-out), so the same table can be made at 10^5, 10^6, ... A run that exceeds ``--timeout``
seconds is stopped and reported as such (its model does not scale to that size on this machine).
Each run trains ``--epochs`` epochs with one validation evaluation per epoch and one test evaluation;
the figures come from its ``record.json``: ``train_s_per_epoch``, ``test_eval_s`` over the number of
test users, and ``peak_rss_mb``. Accuracy after so few epochs means nothing and is not printed.
At 10^7 interactions one full-ranking pass over 500,000 users takes about 20 minutes on one core, so
``--valid-users N --no-test`` validates on N sampled users, skips the test read, and takes the
evaluation rate from the validation passes.

Usage::

    .venv/bin/python benchmarks/perf/models.py [--models bpr lightgcn ...] [--epochs 2] [--threads 1] \
        [--interactions 100000] [--timeout 600] [--steps 40] [--scalable] [--set KEY=VALUE ...] \
        [--valid-users 5000] [--no-test] [--out runs/perf/models] [--json runs/perf/models.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

PEER = ["data.split.method=files", "data.split.path=shared:fixtures/ml100k-peer-split"]
LOO = ["data.split.method=loo", "train.metric=ndcg@10"]
# synthetic items have no genre or year: NOVA-BERT reads their planted cluster as categorical side information
SYNTHETIC = {"nova_bert": ["model.item_side=[cluster]"]}
# --scalable: the settings under which a model's epoch grows linearly with the data (with --steps for the
# top-K batch): sparse embedding gradients for BPR, VBPR and MARank; for the sequential models trained with
# cross-entropy a sampled softmax (100 negatives) instead of the softmax over every item, and for SASRec,
# BERT4Rec and NOVA-BERT those negatives shared by the batch with a sparse item table (embedding_steps.py:
# 100 negatives per target gather more rows per step than the table has; MML and MARank need their own)
SAMPLED_SOFTMAX = ["model.loss=sampled_ce", "model.num_negatives=100"]
SPARSE = ["train.sparse_embeddings=true"]
SHARED = SAMPLED_SOFTMAX + ["model.shared_negatives=true"] + SPARSE
SCALABLE = {
    "bpr": SPARSE,
    "vbpr": SPARSE,
    "marank": SPARSE,
    "sasrec": SHARED,
    "bert4rec": SHARED,
    "nova_bert": SHARED,
    "mml": SAMPLED_SOFTMAX,
}
# other batch sizes that --steps scales like the top-K batch (MCPTR's stage-1 pre-training visits every pair too)
STEPPED = {"mcptr": "model.pretrain_batch_size"}


def registered() -> dict[str, str]:
    from fusionrec import models  # noqa: F401
    from fusionrec.registry import MODELS

    return {name: MODELS.entry(name).meta.get("task", "topk") for name in MODELS.names()}


def eval_users_per_s(record: dict) -> float | None:
    """Users ranked per second: by the test read, or (without one) by the validation passes."""
    timings = record["timings"]
    if timings.get("test_eval_s"):
        return round(record["evaluation"]["test_users"] / timings["test_eval_s"], 1)
    passes = [(h["valid_users"], h["eval_s"]) for h in record["history"] if "eval_s" in h]
    if not passes:
        return None
    return round(sum(u for u, _ in passes) / sum(s for _, s in passes), 1)


def main() -> None:
    tasks = registered()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=sorted(tasks))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--interactions", type=int, default=None, help="synthetic data of this size instead of ml-100k")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before a run is stopped")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="top-K models: batch = interactions / steps, so the steps per epoch stay constant as the "
        "data grows (a full-graph model's epoch is otherwise steps x edges, quadratic)",
    )
    parser.add_argument(
        "--scalable",
        action="store_true",
        help="per-model settings that keep an epoch linear in the data (SCALABLE; --steps 40 by default)",
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="overrides for every run, e.g. train.sparse_embeddings=true",
    )
    parser.add_argument(
        "--valid-users",
        type=int,
        default=None,
        help="validate on this many sampled users (task.valid_users); with --no-test, evaluation "
        "users/s come from those validation passes",
    )
    parser.add_argument("--no-test", action="store_true", help="skip the test read (a full ranking of every user)")
    parser.add_argument("--out", type=Path, default=Path("runs/perf/models"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    fusionrec = Path(sys.executable).with_name("fusionrec")
    if args.scalable and args.steps is None:
        args.steps = 40
    rows = []
    n = args.interactions
    data = (
        ["-d", "ml-100k"]
        if n is None
        else [
            "-d",
            "synthetic",
            f"data.options.num_interactions={n}",
            f"data.options.num_users={max(n // 20, 2)}",
            f"data.options.num_items={max(n // 50, 2)}",
        ]
    )
    for name in args.models:
        sequential = tasks[name] == "sequential"
        split = LOO if sequential else (PEER if n is None else [])
        run_dir = args.out / name
        if not (run_dir / "record.json").exists():
            extra = list(SYNTHETIC.get(name, [])) if n is not None else []
            if args.steps and not sequential:
                batch = -(-(n or 100_000) // args.steps)
                extra += [f"train.batch_size={batch}"] + ([f"{STEPPED[name]}={batch}"] if name in STEPPED else [])
            extra += (SCALABLE.get(name, []) if args.scalable else []) + args.set
            if args.valid_users:
                extra.append(f"task.valid_users={args.valid_users}")
            cmd = [
                str(fusionrec),
                "train",
                "-m",
                name,
                *data,
                *split,
                *extra,
                f"train.epochs={args.epochs}",
                f"train.num_threads={args.threads}",
                "train.patience=100",
                "--run-dir",
                str(run_dir),
                "--quiet",
                *(["--no-test"] if args.no_test else []),
            ]
            try:
                proc = subprocess.run(
                    cmd,
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                    env={**os.environ, "OMP_NUM_THREADS": str(args.threads)},
                )
            except subprocess.TimeoutExpired:
                print(f"{name}: stopped after {args.timeout:.0f} s", file=sys.stderr)
                rows.append({"model": name, "task": tasks[name], "timeout_s": args.timeout})
                continue
            if proc.returncode:
                print(f"{name}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
        record = json.loads((run_dir / "record.json").read_text())
        timings = record["timings"]
        rows.append(
            {
                "model": name,
                "task": tasks[name],
                "train_s_per_epoch": timings.get("train_s_per_epoch"),
                "valid_eval_s": timings.get("eval_s"),
                "test_eval_s": timings.get("test_eval_s"),
                "eval_users_per_s": eval_users_per_s(record),
                "parameters": record.get("parameters"),
                "peak_rss_mb": record.get("peak_rss_mb"),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    where = "ml-100k" if n is None else f"synthetic, {n:,} interactions"
    if args.steps:
        where += f", top-K batch = interactions / {args.steps}"
    if args.scalable:
        where += ", --scalable (sparse embedding gradients, sampled softmax with 100 negatives: see SCALABLE)"
    if args.set:
        where += ", " + " ".join(args.set)
    if args.valid_users:
        where += f", validation on {args.valid_users:,} sampled users"
    if args.no_test:
        where += ", no test read (eval users/s from the validation passes)"
    print(
        f"\n{where}, {args.epochs} epochs per model, {args.threads} thread(s), "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs\n"
    )
    print("| model | task | s/epoch | eval users/s | parameters | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "timeout_s" in r:
            print(f"| {r['model']} | {r['task']} | > {r['timeout_s']:.0f} s (stopped) | - | - | - |")
            continue
        print(
            f"| {r['model']} | {r['task']} | {r['train_s_per_epoch']:.2f} | {r['eval_users_per_s'] or 0:,.0f} | "
            f"{r['parameters']:,} | {r['peak_rss_mb']:,.0f} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
