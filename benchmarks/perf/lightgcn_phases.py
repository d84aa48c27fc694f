"""Where a LightGCN training step's time goes at a given size of the ``synthetic`` set: batch sampling,
forward (propagation + BPR loss), backward, Adam, and one propagation (two sparse products) alone; the
mean over 5 steps after a warm-up step, with the batch that gives 40 steps per epoch (as
``benchmarks/perf/scaling.py``).

    .venv/bin/python benchmarks/perf/lightgcn_phases.py 1000000 10000000 [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings


def phases(n: int, steps_per_epoch: int = 40, measured: int = 5) -> dict:
    import torch

    from fusionrec.data import load_dataset
    from fusionrec.models.topk.lightgcn import LightGCN, LightGCNConfig
    from fusionrec.tasks.topk import TopKTask

    ds = load_dataset(
        "synthetic",
        options={"num_users": n // 20, "num_items": n // 50, "num_interactions": n, "seed": 0},
    )
    torch.manual_seed(0)
    model = LightGCN.from_dataset(LightGCNConfig(), ds)
    task = TopKTask(ds, batch_size=math.ceil(ds.matrix("train").nnz / steps_per_epoch), num_negatives=1, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = iter(task.train_batches(1))
    totals = dict.fromkeys(("sample", "forward", "backward", "adam"), 0.0)
    for step in range(measured + 1):  # step 0 warms up
        marks = [time.perf_counter()]
        batch = next(batches)
        marks.append(time.perf_counter())
        loss = model.loss(batch).loss
        marks.append(time.perf_counter())
        optimizer.zero_grad()
        loss.backward()
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        if step:
            for name, start, stop in zip(totals, marks, marks[1:]):
                totals[name] += stop - start
    with torch.no_grad():
        start = time.perf_counter()
        model.propagate()
        propagation = time.perf_counter() - start
    return {
        "interactions": n,
        **{f"{name}_s": round(value / measured, 4) for name, value in totals.items()},
        "propagation_s": round(propagation, 4),
    }


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="+", type=int)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)  # torch's "sparse CSR support is in beta"
    for n in args.sizes:
        print(json.dumps(phases(n)), flush=True)


if __name__ == "__main__":
    main()
