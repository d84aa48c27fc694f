"""Speed and memory of the news task on 10^4, 10^5 and 10^6 synthetic impressions (news-synthetic).

For each size, in a fresh process: generating and saving the data set (prepare), loading it, building the
task (tokenising titles, ragged arrays), training batches of NRMS, MM-Rec and VLSNR (seconds per batch of
64 samples, extrapolated to one epoch), the evaluation of validation impressions (timed on up to
``--eval-impressions`` of them, extrapolated), and the process's peak RSS.

    OMP_NUM_THREADS=1 python benchmarks/news_scale.py --sizes 10000 100000 1000000

Prints one JSON line per size and a table at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

MODELS = ("nrms", "mm_rec", "vlsnr")


def one(size: int, batches: int, eval_impressions: int) -> dict:
    import numpy as np
    import torch

    from fusionrec.data import load_dataset
    from fusionrec.data.config import DataConfig
    from fusionrec.data.prepare import prepare
    from fusionrec.registry import MODELS as REGISTRY
    from fusionrec.tasks.news.task import NewsTask, NewsTaskConfig
    from fusionrec.training.config import TrainConfig

    torch.set_num_threads(1)
    options = {"num_impressions": size, "num_users": max(1000, size // 10), "num_news": max(2000, size // 50)}
    out: dict = {"impressions": size, **{k: v for k, v in options.items() if k != "num_impressions"}}
    start = time.perf_counter()
    prepare(DataConfig(name="news-synthetic", options=options))
    out["prepare_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    dataset = load_dataset("news-synthetic", options=options)
    out["load_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    task = NewsTask.build(NewsTaskConfig(), TrainConfig(batch_size=64, seed=0), dataset)
    out["task_s"] = round(time.perf_counter() - start, 2)
    out["train_samples"] = int(len(task.sample_row))
    valid = task.split_rows("valid")
    out["valid_impressions"] = int(len(valid))
    rows = valid[:eval_impressions]
    for name in MODELS:
        config = REGISTRY.entry(name).config(name=name)
        model = REGISTRY.get(name).from_dataset(config, dataset)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        it = task.train_batches(1)
        next(it)  # warm-up
        start = time.perf_counter()
        for _ in range(batches):
            opt.zero_grad()
            model.loss(next(it)).loss.backward()
            opt.step()
        per_batch = (time.perf_counter() - start) / batches
        out[f"{name}_s_per_batch"] = round(per_batch, 4)
        out[f"{name}_s_per_epoch_est"] = round(per_batch * task.num_batches, 1)
        model.eval()
        start = time.perf_counter()
        with torch.no_grad():
            for chunk in task._chunks(rows):
                model.score(task.impression_batch(chunk))
        seconds = time.perf_counter() - start
        out[f"{name}_eval_s_est"] = round(seconds * len(valid) / max(len(rows), 1), 1)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    del np
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--eval-impressions", type=int, default=2000)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.batches, args.eval_impressions)), flush=True)
        return
    home = os.environ.get("FUSIONREC_HOME") or tempfile.mkdtemp(prefix="news-scale-")
    rows = []
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(size), "--batches", str(args.batches)]
        cmd += ["--eval-impressions", str(args.eval_impressions)]
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "FUSIONREC_HOME": home})
        if done.returncode:
            print(done.stderr[-2000:], file=sys.stderr)
            continue
        line = done.stdout.strip().splitlines()[-1]
        print(line, flush=True)
        rows.append(json.loads(line))
    keys = ["impressions", "prepare_s", "load_s", "task_s", "train_samples"]
    keys += [f"{m}_{k}" for m in MODELS for k in ("s_per_batch", "s_per_epoch_est", "eval_s_est")] + ["peak_rss_mb"]
    for key in keys:
        print(f"{key:24s}" + "".join(f"{r.get(key, ''):>14}" for r in rows))


if __name__ == "__main__":
    main()
