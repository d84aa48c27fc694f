"""Sequential training speed: seconds per pass over the data (one sample per user sequence).

Trains SASRec (or BERT4Rec / NOVA-BERT) on ml-100k leave-one-out with the settings of the RecBole
side-by-side (2 layers, hidden 64, max length 50, full-softmax CE, batch 128, Adam 1e-3) and prints,
per pass, the wall-clock and CPU seconds of training and the validation NDCG@10 after it. RecBole
1.2.1's SASRec needs 189 s and 4.3 GB per epoch on this kind of machine (PEERS.md), because it
trains on every prefix of every sequence as a separate sample.

Usage:
    PYTHONPATH=src .venv/bin/python benchmarks/sequential_speed.py                 # sasrec, 3 passes
    ... --model bert4rec --passes 2 --threads 2 model.dropout=0.2                  # dotted overrides

On a shared machine the wall-clock time moves with the load; the CPU time (process time, which is
what the work costs on one thread) and the fastest pass are the figures to compare.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from fusionrec.api import build_model, build_task, resolve_config
from fusionrec.data.prepare import prepare
from fusionrec.data.store import load_dataset_dir
from fusionrec.training.optim import build_optimizer
from fusionrec.training.record import peak_rss_mb

SETTINGS = [
    "data.split.method=loo",
    "model.num_layers=2",
    "model.hidden_dim=64",
    "model.max_length=50",
    "model.loss=ce",
    "train.batch_size=128",
    "train.lr=0.001",
    "train.metric=ndcg@10",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sasrec")
    parser.add_argument("--data", default="ml-100k")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. model.fusor=add")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run, model_cfg = resolve_config(args.model, args.data, overrides=[*SETTINGS, *args.overrides])
    dataset = load_dataset_dir(prepare(run.data))
    model = build_model(model_cfg, dataset, run.train.seed)
    task = build_task(run, dataset, model_cfg)
    optimizer = build_optimizer(model, run.train)
    print(
        f"{args.model} on {args.data} ({run.data.split.method}): {dataset.num_users} users, "
        f"{dataset.num_items} items, "
        f"{len(task.sampler.train_users)} training sequences, {task.num_batches} batches/pass; "
        f"{args.threads} thread(s), torch {torch.__version__}, {platform.processor() or platform.machine()}"
    )
    for epoch in range(1, args.passes + 1):
        model.train()
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in task.train_batches(epoch):
            out = model.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        result = task.evaluate(model, "valid")
        print(
            f"pass {epoch}: train {wall:.2f} s wall, {cpu:.2f} s CPU; loss {float(out.loss.detach()):.4f}; "
            f"valid ndcg@10 {result.metrics['ndcg@10']:.4f} hit_rate@10 {result.metrics['hit_rate@10']:.4f} "
            f"(eval {result.seconds:.2f} s)"
        )
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
