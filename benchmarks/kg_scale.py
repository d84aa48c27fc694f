"""Speed and memory of the kg task at 10^4, 10^5 and 10^6 entities (synthetic-kg, no modalities).

    nice -n 10 .venv/bin/python benchmarks/kg_scale.py --sizes 10000 100000 1000000 --json runs/kg-scale.json

Per size, in a fresh process (so peak memory is that size's): build the data set (4 triples per entity,
80/10/10), the task and the model (D = 64); time ``--batches`` training batches of 512 queries with
32 negatives (seconds per epoch extrapolated from them) and the filtered evaluation of ``--queries`` test
queries against every entity (seconds per 1,000 queries, and for the whole test split extrapolated); peak
resident memory of the process. One thread. ``--sparse``: sparse gradients and lazy Adam for the embedding
tables (``train.sparse_embeddings=true``), so a step costs what its batch touches.
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


def measure(num_entities: int, model_name: str, batches: int, queries: int, sparse: bool = False) -> dict:
    from fusionrec.data.builtin.synthetic_kg import SyntheticKGOptions, load_synthetic_kg
    from fusionrec.registry import MODELS
    from fusionrec.tasks.kg.task import KGTask, KGTaskConfig

    torch.set_num_threads(1)
    start = time.perf_counter()
    dataset = load_synthetic_kg(
        SyntheticKGOptions(num_entities=num_entities, num_relations=8, num_clusters=50, modalities=False)
    )
    built = time.perf_counter() - start
    entry = MODELS.entry(model_name)
    config = entry.config(name=model_name, dim=64)
    model = entry.obj.from_dataset(config, dataset)
    task = KGTask(dataset, KGTaskConfig(num_negatives=32, directions="random"), 512, 0, "mrr")
    tables = list(model.lookup_embeddings()) if sparse else []
    for table in tables:
        table.sparse = True  # what train.sparse_embeddings=true does: lazy Adam on the rows a batch touches
    lookup = {id(t.weight) for t in tables}
    dense = [p for p in model.parameters() if id(p) not in lookup]
    optimizers: list[torch.optim.Optimizer] = [torch.optim.Adam(dense, lr=1e-3)] if dense else []
    if tables:
        optimizers.append(torch.optim.SparseAdam([t.weight for t in tables], lr=1e-3))
    iterator = task.train_batches(1)
    start = time.perf_counter()
    for _, batch in zip(range(batches), iterator):
        for optimizer in optimizers:
            optimizer.zero_grad()
        model.loss(batch).loss.backward()
        for optimizer in optimizers:
            optimizer.step()
    per_batch = (time.perf_counter() - start) / batches
    rows = task.split_rows("test")[: max(1, queries // 2)]
    start = time.perf_counter()
    task.side_ranks(model, rows)
    per_query = (time.perf_counter() - start) / (2 * len(rows))
    return {
        "entities": num_entities,
        "model": model_name,
        "sparse_embeddings": sparse,
        "train_triples": len(task.train_rows),
        "build_s": round(built, 2),
        "train_s_per_epoch": round(per_batch * task.num_batches, 1),
        "eval_s_per_1000_queries": round(per_query * 1000, 2),
        "test_eval_s": round(per_query * 2 * len(task.split_rows("test")), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--models", nargs="+", default=["transe", "rotate"])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--sparse", action="store_true", help="sparse gradients + lazy Adam for the embedding tables")
    parser.add_argument("--json", default=None)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # internal: one size and model, printed as JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(int(args.one[0]), args.one[1], args.batches, args.queries, args.sparse)))
        return
    results = []
    for size in args.sizes:
        for model in args.models:
            cmd = [
                sys.executable,
                __file__,
                "--one",
                str(size),
                model,
                "--batches",
                str(args.batches),
                "--queries",
                str(args.queries),
                *(["--sparse"] if args.sparse else []),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            results.append(json.loads(out))
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
