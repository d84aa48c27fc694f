"""Cold-start items: how well do models rank items that had no training interaction?

Split: ``data.split.method=cold_item`` (20% of the items held out entirely, half for validation and
half for test; every interaction with them is a validation/test target). Training never sees them,
not even as sampled negatives (``task.negative_pool=train``, the default). Evaluation
(``task.candidates=unseen``) ranks, for each user, only the items absent from training: in a full
ranking the ~1,350 warm items outscore every new item for every model and NDCG@20 is ~0 for all, which
says nothing about the new items themselves. The epoch is chosen on validation; test is read once.

ID-only models (BPR, LightGCN) can only rank new items by their untrained initial embeddings:
they are the floor that content must lift. ``random`` (uniform scores, ``model.seed`` = the seed) is
chance; ``mostpop`` and ``ease`` score every new item 0 (no training interaction, so a zero count and a
zero column of B), a tie that the evaluator ranks pessimistically: they score 0 by construction.

Usage::

    .venv/bin/python benchmarks/cold_start.py --models random mostpop ease bpr lightgcn mgat mcptr hcgcn \
        mario uvcan --seeds 1 2 3 --threads 1 --out runs/cold-start [--set train.epochs=40]

Each model uses its shipped ml-100k config when there is one (``-c ml100k/<model>``), else its defaults.
A run whose folder already holds a ``record.json`` is read, not retrained: several processes with
disjoint ``--models`` may fill one ``--out``, and a last call with every model prints the whole table.

The table: test Recall@20 and NDCG@20, mean ± sample std over seeds; the ratio of each model's mean
NDCG@20 to the reference's (``--reference``, default BPR); and per seed a two-sided Wilcoxon
signed-rank test on per-user NDCG@20 against the reference run of the same seed (same split, same
users), Holm-adjusted over every (model, seed) comparison of the table, with the sign of the mean
per-user difference.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from fusionrec import api
from fusionrec.benchmark import holm, paired_wilcoxon
from fusionrec.config import shipped_configs
from fusionrec.training.record import load_per_user

PROTOCOL = ["data.split.method=cold_item", "task.candidates=unseen", "train.metric=ndcg@20"]
METRIC = "ndcg@20"


def run_one(model: str, seed: int, args: argparse.Namespace) -> dict:
    config = f"ml100k/{model}" if args.data == "ml-100k" and f"ml100k/{model}" in shipped_configs() else None
    run_dir = args.out / f"{model}-seed{seed}"
    if (run_dir / "record.json").exists():
        record = json.loads((run_dir / "record.json").read_text())
    else:
        overrides = [*PROTOCOL, f"train.seed={seed}", f"train.num_threads={args.threads}", *args.set]
        if model == "random":  # its draw is model.seed, not train.seed: one draw per seed
            overrides.append(f"model.seed={seed}")
        record = api.train(model, args.data, config, overrides, run_dir=run_dir, progress=False).record
    test = record["metrics"]["test"] or {}
    return {
        "model": model,
        "seed": seed,
        "config": config or "defaults",
        "run_dir": str(run_dir),
        "recall@20": test.get("recall@20"),
        "ndcg@20": test.get("ndcg@20"),
        "best_epoch": record.get("best_epoch"),
        "status": record.get("status"),
        "s_per_epoch": record["timings"].get("train_s_per_epoch"),
    }


def significance(rows: list[dict], reference: str) -> dict[tuple[str, int], dict]:
    """Wilcoxon on per-user NDCG@20, each (model, seed) against the reference's run of that seed; Holm over all."""
    ref = {r["seed"]: load_per_user(r["run_dir"]) for r in rows if r["model"] == reference}
    tests = {}
    for r in rows:
        if r["model"] == reference or r["seed"] not in ref:
            continue
        mine, theirs = load_per_user(r["run_dir"]), ref[r["seed"]]
        tests[(r["model"], r["seed"])] = paired_wilcoxon(mine["users"], mine[METRIC], theirs["users"], theirs[METRIC])
    for key, p in zip(tests, holm([t["p"] for t in tests.values()])):
        tests[key]["holm_p"] = float(p)
    return tests


def fmt_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    if p >= 0.01:
        return f"{p:.2g}"
    exponent = math.floor(math.log10(p)) if p > 0 else -300
    return f"< 1e{exponent + 1}" if p < 1e-4 else f"{p:.0e}".replace("e-0", "e-")


def mean_std(values: list[float]) -> str:
    if not values:
        return "n/a"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["random", "mostpop", "ease", "bpr", "lightgcn", "mgat", "mcptr", "hcgcn", "mario", "uvcan"],
    )
    parser.add_argument("--data", default="ml-100k")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reference", default="bpr", help="the model every other is tested against (default bpr)")
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides for every run, e.g. train.epochs=40")
    parser.add_argument("--out", type=Path, default=Path("runs/cold-start"))
    args = parser.parse_args()

    rows = []
    for model in args.models:
        for seed in args.seeds:
            rows.append(run_one(model, seed, args))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "run_dir"}), flush=True)

    tests = significance(rows, args.reference) if args.reference in args.models else {}
    ref_values = [r[METRIC] for r in rows if r["model"] == args.reference and r[METRIC] is not None]
    ref_mean = statistics.mean(ref_values) if ref_values else math.nan

    print(
        f"\nCold-start items on {args.data} (ranking only items unseen in training), test, "
        f"mean ± std over seeds {args.seeds}; ratio: mean NDCG@20 / {args.reference}'s; "
        f"Holm p: two-sided Wilcoxon on per-user NDCG@20 against {args.reference}, per seed, "
        f"Holm over {len(tests)} comparisons (sign of the mean difference in brackets):\n"
    )
    print(
        f"| model | config | Recall@20 | NDCG@20 | ratio to {args.reference} | best epochs | s/epoch | "
        f"Holm p vs {args.reference} per seed |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for model in args.models:
        mine = [r for r in rows if r["model"] == model]
        ndcgs = [r[METRIC] for r in mine if r[METRIC] is not None]
        ratio = statistics.mean(ndcgs) / ref_mean if ndcgs and ref_mean > 0 else math.nan
        seconds = [r["s_per_epoch"] for r in mine if r["s_per_epoch"]]
        closed = all(r["status"] == "closed_form" for r in mine)
        epochs = "-" if closed else ", ".join(str(r["best_epoch"]) for r in mine)
        if model == args.reference:
            sig = "reference"
        else:
            cells = []
            for r in mine:
                t = tests.get((model, r["seed"]))
                if t is None:
                    cells.append("n/a")
                else:
                    sign = (
                        "" if t["mean_diff"] == 0 or t["holm_p"] >= 0.05 else (" (+)" if t["mean_diff"] > 0 else " (-)")
                    )
                    cells.append(fmt_p(t["holm_p"]) + sign)
            sig = ", ".join(cells)
        print(
            f"| {model} | {mine[0]['config']} | {mean_std([r['recall@20'] for r in mine if r['recall@20'] is not None])} "
            f"| {mean_std(ndcgs)} | {ratio:.2f} | {epochs} | "
            f"{'closed form' if closed else (f'{statistics.mean(seconds):.2f}' if seconds else 'n/a')} | {sig} |"
        )


if __name__ == "__main__":
    main()
