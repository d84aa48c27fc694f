"""The ``fusionrec`` command line: parse, call the Python API, print. Nothing else lives here."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from fusionrec.errors import FusionrecError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Multimodal recommendation with attention-based fusion.")
data_app = typer.Typer(no_args_is_help=True, help="Prepare, inspect and validate data sets.")
list_app = typer.Typer(no_args_is_help=True, help="List registered models, data sets, fusions and tasks.")
app.add_typer(data_app, name="data")
app.add_typer(list_app, name="list")
try:  # the features sub-app imports optional extras lazily, but may be absent in a partial install
    from fusionrec.cli.features import app as features_app

    app.add_typer(features_app, name="features", help="Extract text and image features into a data set.")
except ImportError:  # pragma: no cover
    features_app = None
from fusionrec.cli.benchmark import benchmark_cmd  # noqa: E402  (optuna, matplotlib load on first use)

app.command("benchmark")(benchmark_cmd)

out = Console()
err = Console(stderr=True)


def main() -> None:
    """Entry point: user errors become one red line and exit status 2, never a traceback."""
    try:
        app()
    except FusionrecError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


# ----------------------------------------------------------------------------------------- list
@list_app.command("models")
def list_models() -> None:
    """Registered models: name, task, paper, modalities."""
    from fusionrec import models  # noqa: F401
    from fusionrec.registry import MODELS

    _table(["model", "task", "paper", "modalities"],
           [[e.name, e.meta.get("task", ""), e.meta.get("paper", ""), e.meta.get("modalities", "")] for e in MODELS])


@list_app.command("datasets")
def list_datasets() -> None:
    """Built-in data sets."""
    from fusionrec.data import builtin  # noqa: F401
    from fusionrec.registry import DATASETS

    _table(["data set", "tasks", "description"],
           [[e.name, e.meta.get("task", ""), e.meta.get("description", "")] for e in DATASETS])


@list_app.command("fusions")
def list_fusions() -> None:
    """Attention fusion blocks: name, equation, seed models that use them."""
    import fusionrec.nn.fusion  # noqa: F401
    from fusionrec.registry import FUSIONS

    _table(["fusion", "equation", "used by"],
           [[e.name, e.meta.get("equation", ""), ", ".join(e.meta.get("used_by", ()))] for e in FUSIONS])


# ----------------------------------------------------------------------------------------- data
@data_app.command("prepare")
def data_prepare(
    source: str = typer.Argument(..., help="built-in name (fusionrec list datasets) or a path"),
    format: str = typer.Option("auto", "--format", help="auto, mmrec, recbole or csv"),
    split: str = typer.Option("random", "--split", help="random, loo, temporal, global_time, column, files, cold_item, cold_user"),
    split_path: Optional[str] = typer.Option(None, "--split-path", help="folder of train/valid/test files (--split files)"),
    seed: int = typer.Option(2024, "--seed"),
    kcore: int = typer.Option(0, "--kcore"),
    implicit_threshold: Optional[float] = typer.Option(None, "--implicit-threshold"),
    option: List[str] = typer.Option([], "--option", "-o", help="built-in data set option key=value"),
    set_: List[str] = typer.Option([], "--set", help="any other data.* setting, e.g. split.ratios=[0.7,0.1,0.2]"),
    force: bool = typer.Option(False, "--force", help="rebuild even if cached"),
) -> None:
    """Read, filter, split and validate a data set into the canonical folder (cached)."""
    from fusionrec.config import deep_merge, parse_overrides, validate
    from fusionrec.data.config import DataConfig
    from fusionrec.data.prepare import prepare

    tree = {"name": source, "format": format, "kcore": kcore, "implicit_threshold": implicit_threshold,
            "split": {"method": split, "seed": seed, "path": split_path}, "options": parse_overrides(option)}
    config = validate(DataConfig, deep_merge(tree, parse_overrides(set_)), "data")
    folder = prepare(config, force=force)
    _print_info(folder)
    out.print(f"prepared: [bold]{folder}[/]")


@data_app.command("info")
def data_info(source: str = typer.Argument(..., help="built-in name or prepared folder"),
              as_json: bool = typer.Option(False, "--json")) -> None:
    """Users, items, interactions, density, modality coverage, split sizes."""
    from fusionrec.data.config import DataConfig
    from fusionrec.data.prepare import prepare

    folder = prepare(DataConfig(name=source))
    _print_info(folder, as_json)


@data_app.command("validate")
def data_validate(path: str = typer.Argument(..., help="a prepared folder, or any readable source")) -> None:
    """Check a folder's files against its manifest and the data against the protocol's rules."""
    from fusionrec.data.config import DataConfig
    from fusionrec.data.prepare import prepare
    from fusionrec.data.store import load_dataset_dir, verify_dataset_dir
    from fusionrec.data.validate import validate_dataset

    folder = prepare(DataConfig(name=path))
    verify_dataset_dir(folder)
    validate_dataset(load_dataset_dir(folder))
    out.print(f"[green]valid:[/] {folder}")


def _print_info(folder: Path, as_json: bool = False) -> None:
    from fusionrec.data.store import load_dataset_dir, read_manifest

    summary = load_dataset_dir(folder).summary()
    summary["fingerprint"] = read_manifest(folder)["fingerprint"]
    if as_json:
        out.print_json(json.dumps(summary))
        return
    rows = [["users", f"{summary['users']:,}"], ["items", f"{summary['items']:,}"],
            ["interactions", f"{summary['interactions']:,}"], ["density", f"{summary['density']:.4%}"],
            ["rating / timestamp", f"{summary['rating']} / {summary['timestamp']}"]]
    for name, m in summary["modalities"].items():
        rows.append([f"modality {name}", f"{m['kind']} {tuple(m['shape'])}, coverage {m['coverage']:.1%}"])
    if summary["kg_triples"]:
        rows.append(["KG", f"{summary['kg_triples']:,} triples, {summary['kg_linked_items']:,} linked items"])
    if summary["split"]:
        rows.append(["split", " / ".join(f"{k} {v:,}" for k, v in summary["split"].items())])
    rows.append(["fingerprint", summary["fingerprint"]])
    _table([summary["name"], ""], rows)


# ----------------------------------------------------------------------------------------- runs
@app.command("train")
def train_cmd(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="fusionrec list models"),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="built-in name or path"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML with model/data/train sections"),
    overrides: List[str] = typer.Argument(None, help="dotted overrides, e.g. train.lr=1e-3 model.num_layers=3"),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="continue the run in this directory"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    no_test: bool = typer.Option(False, "--no-test", help="validate only; the test split is not read "
                                 "(fusionrec evaluate RUN_DIR reads it later)"),
) -> None:
    """Train a model, pick the epoch on validation, evaluate once on test, print the metrics."""
    from fusionrec.api import train

    run = train(model, data, config, overrides or [], run_dir=run_dir, resume=resume, progress=not quiet,
                test=not no_test)
    rec = run.record
    _metrics_table(f"{rec['model']} on {rec['data']['name']}", rec["metrics"])
    out.print(f"status {rec['status']}, best epoch {rec['best_epoch']} of {rec['epochs_run']}, "
              f"{rec['timings']['train_s_per_epoch']} s/epoch, valid eval {rec['timings']['eval_s']} s, "
              f"peak RSS {rec['peak_rss_mb']} MB")
    out.print(f"run: [bold]{run.run_dir}[/]")


@app.command("evaluate")
def evaluate_cmd(run_dir: Path, split: str = typer.Option("test", "--split")) -> None:
    """Re-evaluate a run's best checkpoint."""
    from fusionrec.api import evaluate

    _metrics_table(f"{run_dir} ({split})", {split: evaluate(run_dir, split)})


@app.command("recommend")
def recommend_cmd(run_dir: Path, user: str = typer.Option(..., "--user", "-u"), k: int = typer.Option(10, "-k"),
                  include_seen: bool = typer.Option(False, "--include-seen"),
                  modality: bool = typer.Option(False, "--modality", help="show the top-weighted modality per item "
                                                "(fusion models)")) -> None:
    """Top-k items for a user (raw id), with titles where the data set has them."""
    from fusionrec.api import recommend

    recs = recommend(run_dir, user, k, include_seen, with_modality=modality)
    columns = ["rank", "item", "title", "score"] + (["top modality"] if modality else [])
    rows = []
    for r in recs:
        row = [r["rank"], r["item"], r["title"] or "", f"{r['score']:.4f}"]
        if modality:
            top = r.get("top_modality")
            row.append(f"{top[0]} ({top[1]:.2f})" if top else "-")
        rows.append(row)
    _table(columns, rows)


@app.command("explain")
def explain_cmd(run_dir: Path, user: str = typer.Option(..., "--user", "-u"),
                item: Optional[str] = typer.Option(None, "--item", "-i", help="the item (top-K models)"),
                out_dir: Path = typer.Option(Path("."), "--out", help="where heat maps (PNG) go")) -> None:
    """Attention behind a score: per-pair modality weights and region maps (top-K models, --item),
    or the self-attention map over the user's sequence as a PNG (sequential models)."""
    from fusionrec.api import load_run
    from fusionrec.explain import explain_pair, sequence_attention

    run = load_run(run_dir)
    if run.model.task == "sequential":
        seq = sequence_attention(run, user, out_dir)
        out.print(f"user {user}: attention over {len(seq['items'])} slots of the sequence behind its next item")
        last = seq["attention"][-1]
        top = sorted(range(len(last)), key=lambda j: -last[j])[:5]
        _table(["attended item", "weight (last slot)"], [[seq["titles"][j], f"{last[j]:.3f}"] for j in top])
        out.print(f"attention heat map: [bold]{seq['image']}[/]")
        return
    if item is None:
        raise FusionrecError("--item is required for top-K models (explain scores one user-item pair)")
    result = explain_pair(run, user, item, out_dir)
    out.print(f"user {user}, item {item}: score {result['score']:.4f}")
    for name, weights in result["weights"].items():
        if isinstance(weights, dict):
            _table([name, "weight"], [[k, v] for k, v in sorted(weights.items(), key=lambda kv: -kv[1])])
        else:
            out.print(f"{name}: {weights}")
    if result["image"]:
        out.print(f"region attention over the item image: [bold]{result['image']}[/]")


@app.command("compare")
def compare_cmd(run_dirs: List[Path], metric: List[str] = typer.Option(["recall@20", "ndcg@20"], "--metric")) -> None:
    """Side-by-side test metrics and timings of several runs."""
    from fusionrec.api import compare

    rows = compare(run_dirs, metric)
    cols = ["model", "data", "seed", *metric, "best_epoch", "train_s_per_epoch", "test_eval_s", "peak_rss_mb", "run"]
    _table(cols, [[_fmt(r[c]) for c in cols] for r in rows])


@app.command("demo")
def demo_cmd(quick: bool = typer.Option(False, "--quick", help="a few epochs only, for a smoke test")) -> None:
    """Prepare ml-100k; train BPR, LightGCN and VBPR (text); print the comparison."""
    from fusionrec.demo import run_demo

    run_demo(out, quick=quick)


# ----------------------------------------------------------------------------------------- output
def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def _table(columns: list[str], rows: list[list[object]], title: str | None = None) -> None:
    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*[_fmt(v) for v in row])
    out.print(table)


def _metrics_table(title: str, metrics: dict[str, dict[str, float] | None]) -> None:
    """One row per metric, one column per split."""
    splits = [name for name, values in metrics.items() if values]
    names = sorted({k for name in splits for k in metrics[name]},  # type: ignore[union-attr]
                   key=lambda s: (s.split("@")[0], int(s.split("@")[1]) if "@" in s else 0))
    _table(["metric", *splits], [[n, *[metrics[s].get(n) for s in splits]] for n in names], title)  # type: ignore[union-attr]

if __name__ == "__main__":
    main()
