"""Cold-start items: how well do models rank items that had no training interaction?

Split: ``data.split.method=cold_item`` (20% of the items held out entirely, half for validation and
half for test; every interaction with them is a validation/test target). Training never sees them,
not even as sampled negatives (``task.negative_pool=train``, the default). Evaluation
(``task.candidates=unseen``) ranks, for each user, only the items absent from training: in a full
ranking the ~1,350 warm items outscore every new item for every model and NDCG@20 is ~0 for all, which
says nothing about the new items themselves. The epoch is chosen on validation; test is read once.

ID-only models (BPR, LightGCN) can only rank new items by their untrained initial embeddings:
they are the floor that content must lift.

Usage::

    .venv/bin/python benchmarks/cold_start.py --models bpr lightgcn mgat mario hcgcn mcptr uvcan \
        --seeds 1 --threads 1 --out runs/cold-start [--set train.epochs=40]

Each model uses its shipped ml-100k config when there is one (``-c ml100k/<model>``), else its defaults.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from fusionrec import api
from fusionrec.config import shipped_configs

PROTOCOL = ["data.split.method=cold_item", "task.candidates=unseen", "train.metric=ndcg@20"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["bpr", "lightgcn", "mgat", "mario", "hcgcn", "mcptr", "uvcan"])
    parser.add_argument("--data", default="ml-100k")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides for every run, e.g. train.epochs=40")
    parser.add_argument("--out", type=Path, default=Path("runs/cold-start"))
    args = parser.parse_args()

    rows = []
    for model in args.models:
        config = f"ml100k/{model}" if args.data == "ml-100k" and f"ml100k/{model}" in shipped_configs() else None
        for seed in args.seeds:
            run_dir = args.out / f"{model}-seed{seed}"
            if (run_dir / "record.json").exists():
                record = json.loads((run_dir / "record.json").read_text())
            else:
                overrides = [*PROTOCOL, f"train.seed={seed}", f"train.num_threads={args.threads}", *args.set]
                if model == "random":  # its draw is model.seed, not train.seed: one draw per seed
                    overrides.append(f"model.seed={seed}")
                record = api.train(model, args.data, config, overrides, run_dir=run_dir, progress=False).record
            test = record["metrics"]["test"] or {}
            rows.append({"model": model, "seed": seed, "config": config or "defaults",
                         "recall@20": test.get("recall@20"), "ndcg@20": test.get("ndcg@20"),
                         "best_epoch": record.get("best_epoch"),
                         "s_per_epoch": record["timings"].get("train_s_per_epoch")})
            print(json.dumps(rows[-1]), flush=True)

    print(f"\nCold-start items on {args.data} (ranking only items unseen in training), test, "
          f"mean ± std over seeds {args.seeds}:\n")
    print("| model | config | Recall@20 | NDCG@20 | s/epoch |")
    print("|---|---|---|---|---|")
    for model in args.models:
        mine = [r for r in rows if r["model"] == model]
        cells = []
        for key in ("recall@20", "ndcg@20"):
            values = [r[key] for r in mine if r[key] is not None]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4f} ± {spread:.4f}" if values else "n/a")
        seconds = statistics.mean(r["s_per_epoch"] for r in mine if r["s_per_epoch"])
        print(f"| {model} | {mine[0]['config']} | {cells[0]} | {cells[1]} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
