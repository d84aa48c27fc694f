"""NOR against the pairwise-compatibility baseline on top-bottom matching, and NOR's comments against retrieval.

    nice -n 10 .venv/bin/python benchmarks/outfit_matching.py --data polyvore-mcn --seeds 1 2 3 \
        --out runs/outfit-matching --json runs/outfit-matching.json

Per seed, both models are trained with the task's matching protocol (``task.protocol=matching``: training
top-bottom pairs of the training outfits, one random training bottom as the negative; epoch chosen on validation
match_auc) and read test once: the true bottom of every test pair ranked among ``--candidates`` bottoms of the
test outfits (AUC and MRR, realistic ties). NOR's greedy comments are scored by corpus BLEU-4 and ROUGE-L F1
against the pair's comment; the retrieval baseline copies the comment of the training pair whose top and bottom
names share the most words (Jaccard) with the test pair. Comments are synthetic (templates over item names).
Paired two-sided Wilcoxon tests on per-pair AUC and reciprocal rank, NOR vs pairwise, per seed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import wilcoxon


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="polyvore-mcn")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--data-options", nargs="*", default=[])
    parser.add_argument("--out", default="runs/outfit-matching")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from fusionrec import api
    from fusionrec.training.record import load_per_user

    out = Path(args.out)
    common = [
        "train.num_threads=1",
        "train.patience=4",
        "train.lr=0.001",
        f"model.dim={args.dim}",
        f"train.epochs={args.epochs}",
        "task.protocol=matching",
        f"task.candidates={args.candidates}",
        *[f"data.options.{o}" for o in args.data_options],
    ]
    rows = []
    retrieval = None
    for seed in args.seeds:
        start = time.perf_counter()
        runs = {
            name: api.train(
                model=name,
                data=args.data,
                overrides=[*common, f"train.seed={seed}"],
                run_dir=out / f"{name}-{seed}",
                progress=False,
            )
            for name in ("nor", "pairwise_compat")
        }
        per = {name: load_per_user(out / f"{name}-{seed}") for name in runs}
        row = {
            "seed": seed,
            "seconds": round(time.perf_counter() - start, 1),
            **{name: dict(run.test_metrics) for name, run in runs.items()},
        }
        for metric in ("match_auc", "match_mrr"):
            a, b = per["nor"][metric], per["pairwise_compat"][metric]
            row[f"p_{metric}"] = float(wilcoxon(a, b).pvalue) if np.any(a != b) else 1.0
        if retrieval is None:
            task = runs["nor"].task
            rows_test = np.flatnonzero(task.pairs["split"].to_numpy() == 2)
            retrieval = task.comment_scores(
                task.retrieval_comments("test"), task.pairs["comment"].to_numpy()[rows_test]
            )
        row["retrieval"] = retrieval
        row["examples"] = list(
            zip(
                runs["nor"].task.pairs["comment"].to_numpy()[rows_test][:3].tolist(),
                getattr(runs["nor"].task, "last_comments", [])[:3],
            )
        )
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {}
    for model, keys in (
        ("nor", ("match_auc", "match_mrr", "bleu", "rouge_l")),
        ("pairwise_compat", ("match_auc", "match_mrr")),
    ):
        for key in keys:
            values = [r[model][key] for r in rows]
            summary[f"{model} {key}"] = (
                float(np.mean(values)),
                float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            )
    assert retrieval is not None
    summary["retrieval bleu"], summary["retrieval rouge_l"] = (retrieval["bleu"], 0.0), (retrieval["rouge_l"], 0.0)
    for key, (mean, std) in summary.items():
        print(f"{key:>24}: {mean:.4f} ± {std:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
