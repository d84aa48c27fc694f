"""The figures of docs/fashion.md that `fusionrec benchmark` does not print: AUC with 500 sampled negatives
(SAERS's protocol) for every finished run of benchmarks/specs/fashion.yaml, and explanation accuracy on
planted-fashion (attention mass on the ground-truth region and pointing game) of VECF and SAERS against
uniform attention and image-gradient saliency; optionally, region heat maps through `fusionrec explain`.

    python benchmarks/fashion_explain.py runs/bench-fashion [--figures runs/fashion-figures]

Test is read here as in the runs: each run's best checkpoint, the test split; the sampled negatives are
drawn once per user (seed 0) among the items the user never interacted with (train, valid or test), all
of them where fewer than 500 remain (movielens-posters has 188 items, so its AUC is the full AUC).
Explanations are scored on every test interaction whose item holds the user's liked garment.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from scipy.stats import wilcoxon

from fusionrec.api import explain, load_run
from fusionrec.data.builtin.planted_fashion import CLASSES, ground_truth
from fusionrec.metrics.explanation import attention_mass, gradient_saliency, pointing_game, uniform_weights
from fusionrec.metrics.full_ranking import evaluate_sampled

EXPLAINED = ("vecf", "vecf-no-reviews", "saers")
PER_PAIR: dict[Path, tuple[np.ndarray, np.ndarray]] = {}  # run -> per-pair attention mass, pointing


def sampled_auc(run) -> tuple[float, dict[int, float]]:
    ds = run.dataset
    with torch.no_grad():
        result = evaluate_sampled(
            run.model.scorer(),
            ds.matrix("test"),
            ds.matrix("train", "valid", "test"),
            num_negatives=500,
            seed=0,
            metrics=("auc",),
        )
    return result.metrics["auc"], dict(zip(result.users.tolist(), result.per_user["auc"].tolist()))


def explanation_scores(run) -> dict[str, dict[str, float]]:
    """Mean attention mass and pointing game of the model's region attention and of the baselines."""
    ds, model = run.dataset, run.model.eval()
    gt = ground_truth(ds, "test")
    users, items = torch.tensor(gt["user"].to_numpy()), torch.tensor(gt["item"].to_numpy())
    target = gt["gt_region"].to_numpy()
    with torch.no_grad():
        attention = model.explain(users, items)["regions"].numpy()
    mask = model.region_mask[items]
    regions = model.regions[items]
    layout = np.array([[int(c) for c in row.split()] for row in ds.items["layout"]])[items.numpy()]  # (N, R)
    maps = {
        "model attention": attention,
        "uniform": uniform_weights(mask.numpy()),
        "uniform over the 3 garments": uniform_weights(layout >= 0),
        "saliency (gradient)": gradient_saliency(lambda x: model.pair_scores(users, items, x)[0], regions, mask),
        "saliency (gradient x input)": gradient_saliency(
            lambda x: model.pair_scores(users, items, x)[0], regions, mask, mode="grad_x_input"
        ),
    }
    PER_PAIR[run.run_dir] = (attention_mass(attention, target), pointing_game(attention, target))
    if hasattr(model, "semantic_extraction"):  # SAERS: does each part point at the truth on its own?
        liked = torch.tensor(ds.users["liked"].map(list(CLASSES).index).to_numpy())[users]  # (N,)
        with torch.no_grad():
            beta, _, _ = model.semantic_extraction(items)  # (N, K, R)
            alpha = model.explain(users, items)["attributes"]  # (N, K)
        located = beta[torch.arange(len(items)), liked].numpy()  # the liked class's own map (N, R)
        maps["SEN map of the liked class"] = located
        top_attribute = (alpha.argmax(-1) == liked).float().mean()
        print(f"  {run.run_dir}: FPA's top attribute is the user's liked class in {float(top_attribute):.3f} of pairs")
    return {
        name: {"mass": float(attention_mass(w, target).mean()), "pointing": float(pointing_game(w, target).mean())}
        for name, w in maps.items()
    } | {"pairs": {"n": float(len(gt))}}


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return f"{np.mean(values):.4f} ± {std:.4f}" if not math.isnan(std) else f"{np.mean(values):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "bench", type=Path, help="the --out folder of `fusionrec benchmark benchmarks/specs/fashion.yaml`"
    )
    parser.add_argument("--figures", type=Path, default=None, help="write region heat maps here (fusionrec explain)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows: dict[tuple[str, str], dict[str, list[float]]] = {}
    per_user_auc: dict[tuple[str, str, int], dict[int, float]] = {}
    explained: dict[str, dict[str, list[float]]] = {}
    for run_dir in sorted((args.bench / "runs").glob("*/*/seed*")):
        if not (run_dir / "record.json").exists():
            continue
        data, model, seed = run_dir.parts[-3], run_dir.parts[-2], int(run_dir.parts[-1][4:])
        record = json.loads((run_dir / "record.json").read_text())
        test = record.get("metrics", {}).get("test")
        if not isinstance(test, dict):
            continue
        run = load_run(run_dir)
        auc, per_user = sampled_auc(run)
        per_user_auc[(data, model, seed)] = per_user
        cell = rows.setdefault((data, model), {"recall@20": [], "ndcg@20": [], "auc@500": []})
        cell["recall@20"].append(test["recall@20"])
        cell["ndcg@20"].append(test["ndcg@20"])
        cell["auc@500"].append(auc)
        if data == "planted-fashion" and model in EXPLAINED:
            for name, scores in explanation_scores(run).items():
                for metric, value in scores.items():
                    explained.setdefault(f"{model}|{name}", {}).setdefault(metric, []).append(value)
        if args.figures is not None and model in EXPLAINED and seed == 1:
            write_figures(run, run_dir, args.figures / data / model)

    print("| data set | model | Recall@20 | NDCG@20 | AUC (500 sampled negatives) | seeds |")
    print("|---|---|---|---|---|---|")
    for (data, model), cell in rows.items():
        print(
            f"| {data} | {model} | {mean_std(cell['recall@20'])} | {mean_std(cell['ndcg@20'])} | "
            f"{mean_std(cell['auc@500'])} | {len(cell['ndcg@20'])} |"
        )
    print("\nPaired Wilcoxon on per-user sampled AUC (users pooled over seeds), against bpr:")
    for data, model in rows:
        if model == "bpr":
            continue
        a, b = [], []
        for seed in (1, 2, 3):
            mine, ref = per_user_auc.get((data, model, seed)), per_user_auc.get((data, "bpr", seed))
            if mine and ref:
                common = sorted(set(mine) & set(ref))
                a += [mine[u] for u in common]
                b += [ref[u] for u in common]
        if a:
            p = wilcoxon(a, b).pvalue if any(x != y for x, y in zip(a, b)) else 1.0
            print(f"  {data} {model}: mean {np.mean(a):.4f} vs {np.mean(b):.4f}, p = {p:.2g} (n = {len(a)})")
    print("\nExplanation accuracy on planted-fashion test pairs (mean ± std over seeds):")
    print("| model | map | attention mass on the true region | pointing game |")
    print("|---|---|---|---|")
    for key, metrics in explained.items():
        model, name = key.split("|")
        if name == "pairs":
            print(f"| {model} | (pairs scored per seed: {int(np.mean(metrics['n']))}) | | |")
            continue
        print(f"| {model} | {name} | {mean_std(metrics['mass'])} | {mean_std(metrics['pointing'])} |")
    pairs = [
        (PER_PAIR[a], PER_PAIR[b])
        for a in PER_PAIR
        if a.parts[-2] == "vecf"
        for b in PER_PAIR
        if b.parts[-2] == "vecf-no-reviews" and b.parts[-1] == a.parts[-1]
    ]
    if pairs:
        for k, name in enumerate(("attention mass", "pointing game")):
            with_reviews = np.concatenate([p[0][k] for p in pairs])
            without = np.concatenate([p[1][k] for p in pairs])
            test = wilcoxon(with_reviews, without)
            print(
                f"VECF lambda=1 vs lambda=0, {name}: {with_reviews.mean():.4f} vs {without.mean():.4f}, paired Wilcoxon "
                f"p = {test.pvalue:.2g} (test pairs pooled over {len(pairs)} seeds, n = {len(with_reviews)})"
            )


def write_figures(run, run_dir: Path, out: Path) -> None:
    """Heat maps of the first three test pairs (``fusionrec explain`` through the API)."""
    ds = run.dataset
    test = ds.interactions[ds.interactions["split"] == 2].head(3)
    for user, item in zip(test["user"], test["item"]):
        result = explain(run_dir, str(ds.user_ids[user]), str(ds.item_ids[item]), out)
        review = result.details.get("generated review")
        print(f"  {run_dir}: user {ds.user_ids[user]} item {ds.item_ids[item]}: {result.images} {review or ''}")


if __name__ == "__main__":
    main()
