"""``make demo``: the main job on the embedded data set, end to end, in minutes on two cores.

Two parts, both on ml-100k (from the recbole wheel, offline):

1. the baselines on the usual split (BPR, LightGCN, VBPR with their shipped configs);
2. what fusion is for: new items. Under the cold-item split, items held out of training are ranked
   among themselves (``task.candidates=unseen``); an ID-only model (BPR) knows nothing about them, a
   fusion model (MARIO: attention over the text and genre modalities) ranks them from their content.
   One of its recommendations is then explained: the modality weights behind each of a user's top
   items, as a table and as a heat map written into the run folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Shipped configs whose hyperparameters were chosen on validation (docs/results.md).
WARM_RUNS = ("ml100k/bpr", "ml100k/lightgcn", "ml100k/vbpr")
COLD_RUNS = ("ml100k/bpr", "ml100k/mario")
COLD_ITEMS = ["data.split.method=cold_item", "task.candidates=unseen"]
# At most 20 epochs for the cold-item part, as in docs/results.md's cold-start table.
COLD_BUDGET = ["train.epochs=20", "train.eval_every=2", "train.patience=3"]
# The modalities are the data set's built-in ones (LSA text, genres), never whatever a cache holds.
PINNED_FEATURES = ["model.modalities=[text,genre]"]


def run_demo(console: Console, quick: bool = False, root: str | Path = "runs/demo") -> list[dict]:
    from fusionrec.api import compare, explain
    from fusionrec.data.config import DataConfig
    from fusionrec.data.prepare import prepare
    from fusionrec.data.store import load_dataset_dir

    console.rule("[bold]fusionrec demo: ml-100k, full ranking, epoch chosen on validation NDCG@20")
    folder = prepare(DataConfig(name="ml-100k"))
    dataset = load_dataset_dir(folder)
    require_builtin_modalities(dataset, ("text", "genre"))
    summary = dataset.summary()
    console.print(
        f"ml-100k: {summary['users']} users, {summary['items']} items, {summary['interactions']:,} "
        f"interactions; split {summary['split']}; modalities {list(summary['modalities'])}; "
        f"{summary['kg_triples']:,} KG triples\n  at {folder}",
        highlight=False,
    )
    quick_budget = ["train.epochs=3"] if quick else []
    root = Path(root)

    console.rule("[bold]1. baselines, random split")
    warm = [_train(console, config, root / "warm" / config.split("/")[-1], quick_budget) for config in WARM_RUNS]
    rows = compare(warm)
    _print_table(console, "ml-100k test metrics (train+valid masked, pessimistic ties)", rows)

    console.rule("[bold]2. new items: ID-only against fusion, cold-item split")
    console.print(
        "20% of the items never occur in training; each user's held-out items are ranked among those new items only.",
        highlight=False,
    )
    cold = []
    for config in COLD_RUNS:
        extra = COLD_ITEMS + (quick_budget or COLD_BUDGET) + (PINNED_FEATURES if "mario" in config else [])
        cold.append(_train(console, config, root / "cold" / config.split("/")[-1], extra))
    cold_rows = compare(cold)
    _print_table(console, "new items (cold-item split, unseen items only)", cold_rows)

    console.rule("[bold]3. why: the modality weights behind MARIO's recommendations")
    user = "1"
    why = explain(cold[-1], user)
    grid = next(iter(why.grids.values()))
    table = Table(title=escape(why.subject))
    for column in ("recommended item", *grid.columns):
        table.add_column(escape(column))
    for row, values in zip(grid.rows, grid.values):
        table.add_row(escape(row), *[f"{v:.2f}" for v in values])
    console.print(table)
    for image in why.images:
        console.print(f"heat map: [bold]{escape(image)}[/]")
    console.print(
        f"\nruns are in [bold]{root}[/]; try `fusionrec recommend {cold[-1]} --user 1 --why` or "
        f"`fusionrec explain {cold[-1]} --user 1 --item 50`",
        highlight=False,
    )
    return rows + cold_rows


def require_builtin_modalities(dataset: Any, names: tuple[str, ...]) -> None:
    """The demo's numbers are for ml-100k's own modalities (LSA text, genres). The features cache is
    shared: if someone extracted other features into the prepared folder (``fusionrec features extract``),
    stop with one line instead of silently training on them."""
    from fusionrec.errors import FusionrecError
    from fusionrec.features.provenance import modality_provenance

    provenance = modality_provenance(dataset)
    for name in names:
        record = provenance.get(name)
        if record is None or record["origin"] != "builtin":
            got = "missing" if record is None else f"{record['origin']} by {record['encoder']}"
            raise FusionrecError(
                f"the demo pins ml-100k's built-in {name!r} modality, but the prepared folder's is {got}; rebuild "
                "it with `fusionrec data prepare ml-100k --force` (extracted features are lost) or run the demo "
                "with FUSIONREC_HOME set to an empty folder"
            )


def _train(console: Console, config: str, run_dir: Path, overrides: list[str]) -> Path:
    from fusionrec.api import train

    if (run_dir / "record.json").exists():
        shutil.rmtree(run_dir)
    console.print(f"\n[bold]training {config.split('/')[-1]}[/] (config {config}) {escape(' '.join(overrides))}")
    run = train(data="ml-100k", config=config, overrides=overrides, run_dir=run_dir)
    test = run.test_metrics
    console.print(
        f"  test recall@20 {test.get('recall@20', float('nan')):.4f}, ndcg@20 "
        f"{test.get('ndcg@20', float('nan')):.4f} (best epoch {run.record['best_epoch']}, "
        f"{run.record['timings']['train_s_per_epoch']} s/epoch, {run.record['threads']['count']} thread(s): "
        f"{run.record['threads']['chosen_by']})",
        highlight=False,
    )
    return run.run_dir


def _print_table(console: Console, title: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=title)
    for col in ("model", "recall@20", "ndcg@20", "best_epoch", "train_s_per_epoch", "test_eval_s", "run"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["model"],
            f"{r['recall@20']:.4f}",
            f"{r['ndcg@20']:.4f}",
            str(r["best_epoch"]),
            str(r["train_s_per_epoch"]),
            str(r["test_eval_s"]),
            r["run"],
        )
    console.print(table)
