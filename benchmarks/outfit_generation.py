"""POG against non-personalised FOM on personalised outfit generation (synthetic users over real Polyvore items).

    nice -n 10 .venv/bin/python benchmarks/outfit_generation.py --data polyvore-mcn --seeds 1 2 3 \
        --out runs/outfit-generation --json runs/outfit-generation.json

Per seed: POG (one fit: FOM pre-training, Gen initialised from it, then Per + Gen on the training users; epoch
chosen on validation hit@10) and FOM alone (trained on outfits, epoch chosen on validation FITB), both evaluated
once on the test users with the task's generation protocol (``task.protocol=generation``): rank of each target
item among ``--candidates`` same-category test items given the history and the previous target items (hit@1,
hit@10, MRR), and greedy generation of the whole outfit from the same pools (gen_hit: share of the target's items
picked). FOM ignores the history. The generated outfits are then scored by a *judge* FOM trained once with seed 0
(not any of the compared models): the mean judge compatibility of POG's, FOM's and the real target outfits.
Paired two-sided Wilcoxon tests on per-record values, POG vs FOM, per seed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import wilcoxon


def judge_scores(judge, outfits: list[list[int]]) -> np.ndarray:
    from fusionrec.tasks.outfit.task import _pad

    scores = []
    with torch.no_grad():
        for start in range(0, len(outfits), 256):
            items, mask = _pad(outfits[start : start + 256])
            scores.append(judge.eval().outfit_scores(items, mask).numpy())
    return np.concatenate(scores)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="polyvore-mcn")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=20, help="POG stage-2 epochs")
    parser.add_argument("--pretrain-epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--data-options", nargs="*", default=[])
    parser.add_argument("--out", default="runs/outfit-generation")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from fusionrec import api
    from fusionrec.registry import MODELS
    from fusionrec.tasks.outfit.task import OutfitTask, OutfitTaskConfig
    from fusionrec.training.config import TrainConfig
    from fusionrec.training.record import load_per_user

    out = Path(args.out)
    common = [
        "train.num_threads=1",
        f"train.patience={args.patience}",
        "train.lr=0.001",
        f"model.dim={args.dim}",
        f"task.candidates={args.candidates}",
        *[f"data.options.{o}" for o in args.data_options],
    ]
    judge = api.train(
        model="fom",
        data=args.data,
        overrides=[*common, "train.seed=0", f"train.epochs={args.pretrain_epochs}"],
        run_dir=out / "judge-fom",
        progress=False,
        test=False,
    )
    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        pog = api.train(
            model="pog",
            data=args.data,
            overrides=[
                *common,
                f"train.seed={seed}",
                f"train.epochs={args.epochs}",
                f"model.pretrain_epochs={args.pretrain_epochs}",
            ],
            run_dir=out / f"pog-{seed}",
            progress=False,
        )
        pog_generated = list(pog.task.last_generated)
        pog_per = load_per_user(out / f"pog-{seed}")
        fom = api.train(
            model="fom",
            data=args.data,
            overrides=[*common, f"train.seed={seed}", f"train.epochs={args.pretrain_epochs}"],
            run_dir=out / f"fom-{seed}",
            progress=False,
            test=False,
        )
        task = OutfitTask.build(
            OutfitTaskConfig(protocol="generation", candidates=args.candidates),
            TrainConfig(seed=seed),
            fom.dataset,
            MODELS.entry("fom").config(name="fom"),
        )
        fom_result = task.evaluate(fom.model, "test")  # the non-personalised generator's one test read
        fom_generated = list(task.last_generated)
        _, targets, _ = task.generation_questions(2)
        assert len(pog_generated) == len(targets), "POG's last evaluation was not its test evaluation"
        row = {
            "seed": seed,
            "seconds": round(time.perf_counter() - start, 1),
            "pog": dict(pog.test_metrics),
            "fom": dict(fom_result.metrics),
            "records": len(targets),
            "pog_best_epoch": pog.record.get("best_epoch"),
            "fom_pretrain_loss": pog.record.get("model_extra", {}).get("fom_pretrain_loss", [])[-1:],
        }
        for name, generated in (("pog", pog_generated), ("fom", fom_generated), ("target", targets)):
            row[f"judge_{name}"] = float(judge_scores(judge.model, generated).mean())
        for metric in ("hit@10", "gen_hit", "mrr"):
            a, b = np.asarray(pog_per[metric]), fom_result.per_user[metric]
            diff = a - b
            row[f"p_{metric}"] = float(wilcoxon(a, b).pvalue) if np.any(diff != 0) else 1.0
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {}
    for key in ("hit@1", "hit@10", "mrr", "gen_hit"):
        for model in ("pog", "fom"):
            values = [r[model][key] for r in rows]
            summary[f"{model} {key}"] = (
                float(np.mean(values)),
                float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            )
    for name in ("pog", "fom", "target"):
        values = [r[f"judge_{name}"] for r in rows]
        summary[f"judge {name}"] = (float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)
    for key, (mean, std) in summary.items():
        print(f"{key:>16}: {mean:.4f} ± {std:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
