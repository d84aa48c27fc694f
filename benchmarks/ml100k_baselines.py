"""Baselines on ml-100k under the peer protocol, several seeds, as a Markdown table.

Runs each shipped config (``ml100k/bpr``, ``ml100k/lightgcn``, ``ml100k/vbpr``) on the exact split
of the peer numbers (../shared/fixtures/ml100k-peer-split; full ranking, train+valid masked at test,
epoch chosen on validation NDCG@20) for each seed, then prints mean ± std of test Recall@20 and
NDCG@20 with seconds per epoch. Finished runs are reused (delete the run folder to redo one).

    python benchmarks/ml100k_baselines.py --seeds 1 2 3 --out runs/ml100k-baselines
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from fusionrec.api import train
from fusionrec.data.paths import shared_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["ml100k/bpr", "ml100k/lightgcn", "ml100k/vbpr"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--out", default="runs/ml100k-baselines")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    shared = shared_dir()
    if shared is None:
        raise SystemExit("needs the shared folder with fixtures/ml100k-peer-split (set FUSIONREC_SHARED)")
    split = ["data.split.method=files", f"data.split.path={shared / 'fixtures' / 'ml100k-peer-split'}"]
    if args.threads:
        split.append(f"train.num_threads={args.threads}")
    rows = []
    for config in args.configs:
        records = []
        for seed in args.seeds:
            run_dir = Path(args.out) / f"{config.replace('/', '-')}-seed{seed}"
            record_path = run_dir / "record.json"
            if record_path.exists() and json.loads(record_path.read_text()).get("metrics", {}).get("test"):
                records.append(json.loads(record_path.read_text()))
                continue
            run = train(
                data="ml-100k", config=config, overrides=[*split, f"train.seed={seed}"], run_dir=run_dir, progress=False
            )
            records.append(run.record)
            print(
                f"{config} seed {seed}: {run.test_metrics['recall@20']:.4f} / {run.test_metrics['ndcg@20']:.4f}",
                flush=True,
            )
        rows.append((config, records))
    print(table(rows))


def table(rows) -> str:
    def ms(values):
        return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.4f}"

    lines = [
        "| config | Recall@20 | NDCG@20 | best epochs | s/epoch | test eval s | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for config, recs in rows:
        lines.append(
            f"| {config} | {ms([r['metrics']['test']['recall@20'] for r in recs])} "
            f"| {ms([r['metrics']['test']['ndcg@20'] for r in recs])} "
            f"| {', '.join(str(r['best_epoch']) for r in recs)} "
            f"| {statistics.mean(r['timings']['train_s_per_epoch'] for r in recs):.3f} "
            f"| {statistics.mean(r['timings']['test_eval_s'] for r in recs):.3f} "
            f"| {max(r['peak_rss_mb'] for r in recs):.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
