"""``make demo``: the main job on the embedded data set, end to end, in minutes on two cores."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

# Shipped configs whose hyperparameters were chosen on validation (docs/results.md).
DEMO_RUNS = ("ml100k/bpr", "ml100k/lightgcn", "ml100k/vbpr")


def run_demo(console: Console, quick: bool = False, root: str | Path = "runs/demo") -> list[dict]:
    from fusionrec.api import compare, train
    from fusionrec.data.config import DataConfig
    from fusionrec.data.prepare import prepare
    from fusionrec.data.store import load_dataset_dir

    console.rule("[bold]fusionrec demo: ml-100k, full ranking, epoch chosen on validation NDCG@20")
    folder = prepare(DataConfig(name="ml-100k"))
    summary = load_dataset_dir(folder).summary()
    console.print(f"ml-100k: {summary['users']} users, {summary['items']} items, {summary['interactions']:,} "
                  f"interactions; split {summary['split']}; modalities {list(summary['modalities'])}; "
                  f"{summary['kg_triples']:,} KG triples\n  at {folder}")
    threads = _threads_for_load(console)
    runs = []
    for config in DEMO_RUNS:
        model = config.split("/")[-1]
        overrides = (["train.epochs=3"] if quick else []) + ([f"train.num_threads={threads}"] if threads else [])
        run_dir = Path(root) / model
        if (run_dir / "record.json").exists():
            import shutil

            shutil.rmtree(run_dir)
        console.print(f"\n[bold]training {model}[/] (config {config}) {' '.join(overrides)}")
        run = train(data="ml-100k", config=config, overrides=overrides, run_dir=run_dir)
        test = run.test_metrics
        console.print(f"  {model}: test recall@20 {test.get('recall@20', float('nan')):.4f}, ndcg@20 "
                      f"{test.get('ndcg@20', float('nan')):.4f} (best epoch {run.record['best_epoch']}, "
                      f"{run.record['timings']['train_s_per_epoch']} s/epoch)")
        runs.append(run.run_dir)
    rows = compare(runs)
    from rich.table import Table

    table = Table(title="ml-100k test metrics (train+valid masked, pessimistic ties)")
    for col in ("model", "recall@20", "ndcg@20", "best_epoch", "train_s_per_epoch", "test_eval_s", "run"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["model"], f"{r['recall@20']:.4f}", f"{r['ndcg@20']:.4f}", str(r["best_epoch"]),
                      str(r["train_s_per_epoch"]), str(r["test_eval_s"]), r["run"])
    console.print(table)
    console.print(f"runs are in [bold]{root}[/]; try `fusionrec recommend {runs[1]} --user 1 -k 10`")
    return rows


def _threads_for_load(console: Console) -> int | None:
    """One thread when other work already fills the cores.

    These models run small kernels; on a busy machine, several OpenMP threads per kernel wait on
    each other and an epoch measured 11 s instead of 0.6 s with one thread (BPR, ml-100k, load 8 on
    2 cores).
    """
    import os

    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load >= cores:
        console.print(f"machine busy (load {load:.1f} on {cores} cores): training with 1 thread")
        return 1
    return None
