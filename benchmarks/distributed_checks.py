"""The data-parallel checks of docs/distributed.md, on this machine's CPUs (gloo).

1. **Same global batch, 1 vs 2 processes**, on ml-100k: LightGCN (no dropout: the two must agree to
   float rounding) and SASRec (dropout: within seed noise), ``--seeds`` seeds each, test NDCG@20 and
   s/epoch of both. On a 2-core machine two ranks share the cores, so no speed-up is expected here.
2. **Two "nodes" on localhost**: two ``torchrun --nnodes 2 --nproc-per-node 1`` launches meeting at a
   c10d rendezvous finish with the record of the ``--nproc 2`` run (same losses, same test metrics).
3. **kill -9 of one rank mid-epoch, then --resume**: the resumed run ends where the uninterrupted
   one did (same per-epoch losses and test metrics).

    python benchmarks/distributed_checks.py --out runs/distributed-checks [--seeds 3] [--epochs 20]

Writes ``summary.json`` and prints a Markdown summary. State the machine's load with the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scipy.stats import wilcoxon

PYTHON = sys.executable
MODELS = {
    "lightgcn": ["-m", "lightgcn", "-d", "ml-100k"],
    "sasrec": ["-m", "sasrec", "-d", "ml-100k", "data.split.method=loo"],
}


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "record.json").read_text())


def fusionrec(args: list[str], nproc: int = 1) -> None:
    command = [PYTHON, "-m", "fusionrec", "train", "-q", *args]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr[-2000:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def same_batch(out: Path, seeds: int, epochs: int) -> dict:
    rows = {}
    for model, base in MODELS.items():
        per = {}
        for nproc in (1, 2):
            runs = []
            for seed in range(seeds):
                run_dir = out / f"{model}-np{nproc}-s{seed}"
                if not (run_dir / "record.json").exists() or record(run_dir)["status"] == "running":
                    fusionrec([*base, f"train.epochs={epochs}", f"train.seed={seed}", "--run-dir", str(run_dir)], nproc)
                runs.append(record(run_dir))
            per[nproc] = runs
        ndcg = {n: [r["metrics"]["test"]["ndcg@20"] for r in runs] for n, runs in per.items()}
        speed = {n: statistics.mean(r["timings"]["train_s_per_epoch"] for r in runs) for n, runs in per.items()}
        diffs = [a - b for a, b in zip(ndcg[1], ndcg[2], strict=True)]
        p = wilcoxon(ndcg[1], ndcg[2]).pvalue if any(diffs) and len(diffs) >= 3 else 1.0
        rows[model] = {
            "ndcg@20_1proc": ndcg[1],
            "ndcg@20_2proc": ndcg[2],
            "wilcoxon_p": p,
            "s_per_epoch_1proc": speed[1],
            "s_per_epoch_2proc": speed[2],
            "global_batch": per[2][0]["distributed"]["global_batch"],
        }
    return rows


def two_nodes(out: Path, epochs: int) -> dict:
    """Two torchrun launches, one process each, meeting at a rendezvous on localhost."""
    base = [*MODELS["sasrec"], f"train.epochs={epochs}", "train.seed=0"]
    reference = out / "sasrec-np2-s0"
    run_dir = out / "sasrec-2nodes"
    if not (run_dir / "record.json").exists():
        port = free_port()
        launches = [
            subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "torch.distributed.run",
                    "--nnodes=2",
                    "--nproc-per-node=1",
                    f"--node-rank={node}",
                    "--rdzv-backend=c10d",
                    f"--rdzv-endpoint=127.0.0.1:{port}",
                    "--rdzv-id=fusionrec-two-nodes",
                    "-m",
                    "fusionrec",
                    "train",
                    "-q",
                    *base,
                    "--run-dir",
                    str(run_dir),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for node in (0, 1)
        ]
        for launch in launches:
            _, err = launch.communicate()
            if launch.returncode != 0:
                raise SystemExit(f"two-node launch failed:\n{err[-2000:]}")
    a, b = record(run_dir), record(reference)
    return {
        "same_losses": [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]],
        "same_test": a["metrics"]["test"] == b["metrics"]["test"],
        "max_loss_difference": max(abs(x["loss"] - y["loss"]) for x, y in zip(a["history"], b["history"], strict=True)),
        "world_size": a["distributed"]["world_size"],
    }


def rank_pids(parent: int) -> dict[int, int]:
    """{rank: pid} of the worker processes under a torchrun agent (read from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            status = (entry / "status").read_text()
        except OSError:
            continue
        ppid = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")), -1)
        env = dict(item.split(b"=", 1) for item in environ if b"=" in item)
        if b"RANK" in env and b"TORCHELASTIC_RUN_ID" in env and ppid in (parent, *_children(parent)):
            found[int(env[b"RANK"])] = int(entry.name)
    return found


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def kill_and_resume(out: Path, epochs: int) -> dict:
    base = [*MODELS["sasrec"], f"train.epochs={epochs}", "train.seed=0"]
    reference = out / "sasrec-np2-s0"
    run_dir = out / "sasrec-killed"
    killed_in_epoch = None
    if not (run_dir / "record.json").exists() or record(run_dir)["status"] == "running":
        agent = subprocess.Popen(
            [PYTHON, "-m", "fusionrec", "train", "-q", "--nproc", "2", *base, "--run-dir", str(run_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while not (run_dir / "record.json").exists() or record(run_dir).get("epochs_run", 0) < 2:
            time.sleep(0.2)
        time.sleep(0.5 * record(run_dir)["history"][-1]["train_s"])  # into the middle of the next epoch
        killed_in_epoch = record(run_dir)["epochs_run"] + 1
        ranks = {}
        while 1 not in ranks:
            ranks = rank_pids(agent.pid)
        os.kill(ranks[1], signal.SIGKILL)
        agent.wait()
        fusionrec(["--resume", str(run_dir)], nproc=2)
    a, b = record(run_dir), record(reference)
    return {
        "killed_rank": 1,
        "killed_in_epoch": killed_in_epoch,
        "same_losses": [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]],
        "same_test": a["metrics"]["test"] == b["metrics"]["test"],
        "status": a["status"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/distributed-checks"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    summary = {
        "load_average_before": load_before,
        "cores": os.cpu_count(),
        "same_global_batch": same_batch(args.out, args.seeds, args.epochs),
        "two_nodes": two_nodes(args.out, args.epochs),
        "kill_and_resume": kill_and_resume(args.out, args.epochs),
        "load_average_after": os.getloadavg()[0],
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"load average {load_before:.2f} -> {summary['load_average_after']:.2f} on {os.cpu_count()} cores\n")
    print("| model | NDCG@20 1 proc | NDCG@20 2 procs | Wilcoxon p | s/epoch 1 proc | s/epoch 2 procs | global batch |")
    print("|---|---|---|---|---|---|---|")
    for model, row in summary["same_global_batch"].items():
        one = " ".join(f"{v:.4f}" for v in row["ndcg@20_1proc"])
        two = " ".join(f"{v:.4f}" for v in row["ndcg@20_2proc"])
        print(
            f"| {model} | {one} | {two} | {row['wilcoxon_p']:.3f} | {row['s_per_epoch_1proc']:.2f} | "
            f"{row['s_per_epoch_2proc']:.2f} | {row['global_batch']} |"
        )
    print(f"\ntwo nodes on localhost: {summary['two_nodes']}")
    print(f"kill -9 and --resume: {summary['kill_and_resume']}")


if __name__ == "__main__":
    main()
