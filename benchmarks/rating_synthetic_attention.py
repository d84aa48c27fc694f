"""Does NRPA's personalised word attention find the words that drive the rating?

On ``synthetic-reviews`` (ratings driven by planted aspect words, ``data/builtin/synthetic_reviews.py``)
train NRPA, then for every held-out (user, item) pair take the top-weighted word of each review in the
user's and the item's documents and count how often it is a planted aspect word, against chance (the
share of planted words among all document words). Both rates are printed, per side and together.

    nice -n 10 python benchmarks/rating_synthetic_attention.py [--reviews 10000] [--epochs 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from fusionrec import api


def hit_rates(run) -> tuple[dict[str, float], float]:
    """Share of top-weighted words that are planted (per side), and the chance rate."""
    planted = list(run.dataset.meta["aspect_words"])
    task, corpus = run.task, run.task.corpus
    words = np.array(corpus.words, dtype=object)
    test = run.dataset.split_frame("test")
    users, items = test["user"].to_numpy().astype(np.int64), test["item"].to_numpy().astype(np.int64)
    weights = task._attention(run.model, users, items)
    rates, hits, total = {}, 0, 0
    for side, docs in (("user", corpus.user_docs[users]), ("item", corpus.item_docs[items])):
        top = weights[f"{side}_words"].argmax(-1)  # (B, R): position of each review's top-weighted word
        real = docs >= 0
        top_words = words[corpus.tokens[np.where(real, docs, -1), top][real]]
        side_hits = int(np.isin(top_words, planted).sum())
        rates[side] = side_hits / max(1, int(real.sum()))
        hits, total = hits + side_hits, total + int(real.sum())
    rates["both"] = hits / max(1, total)
    tokens = corpus.tokens[:-1]
    return rates, float(np.isin(words[tokens[tokens > 0]], planted).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    overrides = [
        f"data.options.num_reviews={args.reviews}",
        f"data.options.num_users={max(50, args.reviews // 50)}",
        f"data.options.num_items={max(30, args.reviews // 100)}",
        "data.options.aspect_share=0.1",
        "model.word_dim=32",
        "model.num_filters=32",
        "model.max_reviews=8",
        "model.max_words=24",
        "model.dropout=0.0",
        "train.lr=0.005",
        f"train.epochs={args.epochs}",
        "train.patience=5",
        "train.batch_size=128",
        "train.num_threads=1",
        f"train.seed={args.seed}",
    ]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = api.train("nrpa", "synthetic-reviews", overrides=overrides, run_dir=Path(tmp) / "nrpa", progress=False)
        rates, chance = hit_rates(run)
    test = run.record["metrics"]["test"]
    print(
        f"synthetic-reviews, {run.dataset.num_interactions:,} reviews; NRPA test MSE {test['mse']:.3f} "
        f"(best epoch {run.record['best_epoch']}, {time.perf_counter() - start:.0f} s)"
    )
    print(
        f"top-weighted word is a planted aspect word: user documents {rates['user']:.1%}, item documents "
        f"{rates['item']:.1%}, both {rates['both']:.1%}; chance {chance:.1%} ({rates['both'] / chance:.1f}x)"
    )


if __name__ == "__main__":
    main()
