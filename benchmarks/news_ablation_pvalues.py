"""Image branch on / off: paired Wilcoxon tests on per-impression test AUC between a model and its text-only
ablation, per seed, Holm-adjusted over all the pairs, from a finished ``fusionrec benchmark`` output.

    python benchmarks/news_ablation_pvalues.py runs/bench-news-posters movielens-posters-news
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import wilcoxon

PAIRS = (("mm_rec", "mm_rec-text"), ("vlsnr", "vlsnr-text"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("data")
    parser.add_argument("--metric", default="auc")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    rows = []
    for full, ablated in PAIRS:
        for seed in args.seeds:
            a = np.load(args.out / "runs" / args.data / full / f"seed{seed}" / "test_per_user.npz")
            b = np.load(args.out / "runs" / args.data / ablated / f"seed{seed}" / "test_per_user.npz")
            assert np.array_equal(a["users"], b["users"]), "impressions differ"
            diff = a[args.metric] - b[args.metric]
            rows.append(
                [
                    full,
                    ablated,
                    seed,
                    len(diff),
                    float(diff.mean()),
                    float(wilcoxon(a[args.metric], b[args.metric]).pvalue),
                ]
            )
    order = np.argsort([r[-1] for r in rows])
    holm, running = [0.0] * len(rows), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(rows) - rank) * rows[i][-1]))
        holm[i] = running
    print(f"| model | ablation | seed | impressions | mean diff ({args.metric}) | p | Holm p |")
    print("|---|---|---|---|---|---|---|")
    for row, adjusted in zip(rows, holm):
        print(f"| {row[0]} | {row[1]} | {row[2]} | {row[3]} | {row[4]:+.4f} | {row[5]:.2e} | {adjusted:.2e} |")


if __name__ == "__main__":
    main()
