"""Speed and memory of the rating family at 10^4, 10^5 and 10^6 synthetic reviews.

For each size, in a fresh process (so peak memory is that size's own): generate ``synthetic-reviews``
and split it, build the review corpus (vocabulary and documents from training reviews), then time
NRPA and biased MF on ``--batches`` training batches of 128 and one prediction pass over up to 20,000
held-out ratings. s/epoch is the measured seconds per batch times the batches of one epoch (an
extrapolation from ``--batches`` batches). One thread.

    nice -n 10 python benchmarks/rating_scale.py [--sizes 10000 100000 1000000] [--batches 30]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch


def measure(size: int, batches: int) -> dict:
    from fusionrec.data.builtin.synthetic_reviews import SyntheticReviewOptions, load_synthetic_reviews
    from fusionrec.data.config import SplitConfig
    from fusionrec.data.reviews import review_corpus
    from fusionrec.data.splits import apply_split
    from fusionrec.models.rating.biased_mf import BiasedMF, BiasedMFConfig
    from fusionrec.models.rating.nrpa import NRPA, NRPAConfig
    from fusionrec.tasks.rating import RatingTask, RatingTaskConfig
    from fusionrec.training.config import TrainConfig

    torch.set_num_threads(1)
    out: dict = {"reviews": size}
    start = time.perf_counter()
    options = SyntheticReviewOptions(num_reviews=size, num_users=max(500, size // 20), num_items=max(300, size // 50))
    dataset = apply_split(load_synthetic_reviews(options), SplitConfig(seed=0))
    out["generate_split_s"] = time.perf_counter() - start
    for name, config, cls in (
        ("nrpa", NRPAConfig(word_dim=32, num_filters=32, max_reviews=8, max_words=24), NRPA),
        ("biased_mf", BiasedMFConfig(), BiasedMF),
    ):
        start = time.perf_counter()
        if name == "nrpa":
            review_corpus(dataset, config.documents())
            out["corpus_s"] = time.perf_counter() - start
        torch.manual_seed(0)
        model = cls.from_dataset(config, dataset)
        task = RatingTask.build(RatingTaskConfig(), TrainConfig(batch_size=128, seed=0), dataset, config)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        steps, start = 0, time.perf_counter()
        for batch in task.train_batches(1):
            loss = model.loss(batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if steps == batches:
                break
        per_batch = (time.perf_counter() - start) / steps
        out[f"{name}_s_per_epoch"] = per_batch * task.num_batches
        rows = np.flatnonzero(task.split_codes == 2)[:20_000]
        start = time.perf_counter()
        task.predict(model, task.users[rows], task.items[rows])
        out[f"{name}_predict_per_1k_s"] = (time.perf_counter() - start) / len(rows) * 1000
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.batches)))
        return
    print(
        "| reviews | generate + split s | corpus s | NRPA s/epoch | biased MF s/epoch | NRPA predict s/1k | peak RSS MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--batches", str(args.batches)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"| {size:,} | {r['generate_split_s']:.1f} | {r['corpus_s']:.1f} | {r['nrpa_s_per_epoch']:.0f} | "
            f"{r['biased_mf_s_per_epoch']:.1f} | {r['nrpa_predict_per_1k_s']:.3f} | {r['peak_rss_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
