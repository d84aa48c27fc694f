"""Every registered model on ml-100k: seconds per training epoch, evaluation users per second and peak
RSS, from short runs of ``fusionrec train`` (each in its own process, so its peak RSS is its own).

Top-K models train on the peer split (``data.split.method=files``), sequential models on leave-one-out.
Each run trains ``--epochs`` epochs with one validation evaluation per epoch and one test evaluation;
the figures come from its ``record.json``: ``train_s_per_epoch``, ``test_eval_s`` over the number of
test users, and ``peak_rss_mb``. Accuracy after so few epochs means nothing and is not printed.

Usage::

    .venv/bin/python benchmarks/perf/models.py [--models bpr lightgcn ...] [--epochs 2] [--threads 1] \
        [--out runs/perf/models] [--json runs/perf/models.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

PEER = ["data.split.method=files", "data.split.path=/work/shared/fixtures/ml100k-peer-split"]
LOO = ["data.split.method=loo", "train.metric=ndcg@10"]


def registered() -> dict[str, str]:
    from fusionrec import models  # noqa: F401
    from fusionrec.registry import MODELS

    return {name: MODELS.entry(name).meta.get("task", "topk") for name in MODELS.names()}


def main() -> None:
    tasks = registered()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=sorted(tasks))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/perf/models"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    fusionrec = Path(sys.executable).with_name("fusionrec")
    rows = []
    for name in args.models:
        split = LOO if tasks[name] == "sequential" else PEER
        run_dir = args.out / name
        if not (run_dir / "record.json").exists():
            cmd = [str(fusionrec), "train", "-m", name, "-d", "ml-100k", *split, f"train.epochs={args.epochs}",
                   f"train.num_threads={args.threads}", "train.patience=100", "--run-dir", str(run_dir), "--quiet"]
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
            if proc.returncode:
                print(f"{name}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
        record = json.loads((run_dir / "record.json").read_text())
        timings = record["timings"]
        users = record["evaluation"].get("test_users") or 0
        rows.append({"model": name, "task": tasks[name], "train_s_per_epoch": timings.get("train_s_per_epoch"),
                     "valid_eval_s": timings.get("eval_s"), "test_eval_s": timings.get("test_eval_s"),
                     "eval_users_per_s": round(users / timings["test_eval_s"], 1) if timings.get("test_eval_s") else None,
                     "parameters": record.get("parameters"), "peak_rss_mb": record.get("peak_rss_mb")})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\nml-100k, {args.epochs} epochs per model, {args.threads} thread(s), "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs\n")
    print("| model | task | s/epoch | eval users/s | parameters | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['task']} | {r['train_s_per_epoch']:.2f} | {r['eval_users_per_s'] or 0:,.0f} | "
              f"{r['parameters']:,} | {r['peak_rss_mb']:,.0f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
