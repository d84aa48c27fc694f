"""CTR speed and memory against data size: the synthetic click log at 10^5, 10^6 and 10^7 rows.

For each size, in a fresh process (so the peak RSS is that size's): generate the log and fit the task's
fields (the in-memory path, no parquet), then train DeepFM (and CMBF, reduced) with Adam for at most
``--max-batches`` batches of 4,096 rows. Prints rows/s (wall and CPU time), seconds per epoch (measured
when the epoch ran in full, else extrapolated from rows/s and marked ``~``), peak RSS, and the log-log
slope of s/epoch against rows.

Usage:
    PYTHONPATH=src .venv/bin/python benchmarks/ctr_scale.py                    # 1e5 1e6 1e7, deepfm + cmbf
    ... --sizes 100000 1000000 --models deepfm --max-batches 300

On a shared machine wall-clock moves with the load: CPU seconds per row are the figure to compare.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time

FIELDS = {
    "user": {"source": "user_id"},
    "item": {"source": "item_id"},
    "segment": {"source": "user"},
    "age": {"source": "user", "kind": "numeric"},
    "category": {"source": "item"},
    "image": {"source": "modality"},
    "text": {"source": "modality"},
}
MODELS = {
    "deepfm": {"embedding_dim": 16},
    "cmbf": {"embedding_dim": 16, "image_tokens": 8, "num_tower_layers": 1, "cross_modal_layers": 1, "dropout": 0.0},
}


def one_size(rows: int, models: list[str], max_batches: int, batch_size: int, sparse: bool) -> dict:
    import torch

    from fusionrec.data.builtin.ctr_synthetic import CTRSyntheticOptions, load_ctr_synthetic
    from fusionrec.data.config import SplitConfig
    from fusionrec.data.splits import apply_split
    from fusionrec.registry import MODELS as REGISTRY
    from fusionrec.tasks.ctr.task import CTRTask, CTRTaskConfig
    from fusionrec.training.config import TrainConfig
    from fusionrec.training.optim import build_optimizer
    from fusionrec.training.record import peak_rss_mb

    torch.set_num_threads(1)
    start = time.perf_counter()
    options = CTRSyntheticOptions(num_users=max(2000, rows // 50), num_items=max(5000, rows // 20), num_rows=rows)
    dataset = apply_split(load_ctr_synthetic(options), SplitConfig(method="random"))
    generated = time.perf_counter() - start
    task = CTRTask.build(CTRTaskConfig(fields=FIELDS), TrainConfig(batch_size=batch_size), dataset, None)
    fitted = time.perf_counter() - start - generated
    out = {"rows": rows, "train_rows": len(task.rows["train"]), "generate_s": generated, "fit_fields_s": fitted}
    for name in models:
        entry = REGISTRY.entry(name)
        model = entry.obj.from_dataset(entry.config(name=name, **MODELS[name]), dataset)
        optimizer = build_optimizer(model, TrainConfig(lr=1e-3, sparse_embeddings=sparse))
        wall, cpu, done = time.perf_counter(), time.process_time(), 0
        for step, batch in enumerate(task.train_batches(1)):
            if step >= max_batches:
                break
            loss = model.loss(batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += len(batch)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        full = done == out["train_rows"]
        out[name] = {
            "rows_trained": done,
            "rows_per_s": done / wall,
            "cpu_us_per_row": 1e6 * cpu / done,
            "s_per_epoch": wall if full else out["train_rows"] * wall / done,
            "measured_epoch": full,
        }
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--models", nargs="+", default=["deepfm", "cmbf"])
    parser.add_argument("--max-batches", type=int, default=250)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--sparse", action="store_true", help="train.sparse_embeddings: sparse table gradients")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.models, args.max_batches, args.batch_size, args.sparse)))
        return
    results = []
    for rows in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(rows), "--max-batches", str(args.max_batches)]
        cmd += ["--batch-size", str(args.batch_size), "--models", *args.models] + (["--sparse"] if args.sparse else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{rows} rows: failed ({(proc.stderr.strip().splitlines() or ['?'])[-1]})")
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print("| rows | generate s | fit fields s | model | rows/s | CPU us/row | s/epoch | peak MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        for name in args.models:
            m = r[name]
            epoch = f"{m['s_per_epoch']:.1f}" if m["measured_epoch"] else f"~{m['s_per_epoch']:.1f}"
            print(
                f"| {r['rows']:,} | {r['generate_s']:.1f} | {r['fit_fields_s']:.1f} | {name} | {m['rows_per_s']:,.0f} | "
                f"{m['cpu_us_per_row']:.1f} | {epoch} | {r['peak_rss_mb']:.0f} |"
            )
    if len(results) > 1:
        for name in args.models:
            xs = [math.log10(r["train_rows"]) for r in results]
            ys = [math.log10(r[name]["s_per_epoch"]) for r in results]
            slope = (ys[-1] - ys[0]) / (xs[-1] - xs[0])
            print(f"{name}: log-log slope of s/epoch against rows {slope:.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
