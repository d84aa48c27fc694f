"""The ``fusionrec`` command line: parse, call the Python API, print. Nothing else lives here."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import warnings
from pathlib import Path
from typing import List, Optional, Sequence

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fusionrec.errors import FusionrecError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Multimodal recommendation with attention-based fusion.",
)
data_app = typer.Typer(no_args_is_help=True, help="Prepare, inspect and validate data sets.")
list_app = typer.Typer(no_args_is_help=True, help="List registered models, data sets, fusions and tasks.")
app.add_typer(data_app, name="data")
app.add_typer(list_app, name="list")
from fusionrec.cli.features import app as features_app  # noqa: E402  (its encoders load on first use)

app.add_typer(features_app, name="features", help="Extract text and image features into a data set.")
from fusionrec.cli.benchmark import benchmark_cmd  # noqa: E402  (optuna, matplotlib load on first use)

app.command("benchmark")(benchmark_cmd)


def _console(stderr: bool = False) -> Console:
    """A console that does not cut tables at 80 columns when the output is a pipe or a file."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 200)


out = _console()
err = _console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from fusionrec.version import __version__

        out.print(f"fusionrec {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """Multimodal recommendation with attention-based fusion."""


def main() -> None:
    """Entry point: user errors become one red line and exit status 2, never a traceback."""
    from fusionrec.threads import prefer_passive_waiting

    prefer_passive_waiting()  # before any command loads torch
    warnings.formatwarning = lambda message, *_args, **_kwargs: f"warning: {message}\n"  # one line, no source path
    try:
        app()
    except FusionrecError as exc:
        import os

        rank = os.environ.get("RANK", "0") if int(os.environ.get("WORLD_SIZE", "1")) > 1 else "0"
        if rank == "0" or not str(exc):  # in a data-parallel job every rank meets the same error: rank 0 says it
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


# ----------------------------------------------------------------------------------------- list
@list_app.command("models")
def list_models() -> None:
    """Registered models: name, task, paper, modalities."""
    from fusionrec import models  # noqa: F401
    from fusionrec.registry import MODELS

    _table(
        ["model", "task", "paper", "modalities"],
        [[e.name, e.meta.get("task", ""), e.meta.get("paper", ""), e.meta.get("modalities", "")] for e in MODELS],
    )


@list_app.command("datasets")
def list_datasets() -> None:
    """Built-in data sets."""
    from fusionrec.data import builtin  # noqa: F401
    from fusionrec.registry import DATASETS

    _table(
        ["data set", "tasks", "description"],
        [[e.name, e.meta.get("task", ""), e.meta.get("description", "")] for e in DATASETS],
    )


@list_app.command("fusions")
def list_fusions() -> None:
    """Attention fusion blocks: name, equation, seed models that use them."""
    import fusionrec.nn.fusion  # noqa: F401
    from fusionrec.registry import FUSIONS

    _table(
        ["fusion", "equation", "used by"],
        [[e.name, e.meta.get("equation", ""), ", ".join(e.meta.get("used_by", ()))] for e in FUSIONS],
    )


@list_app.command("tasks")
def list_tasks() -> None:
    """Task families: name, description, the keys of their task: section."""
    from fusionrec import tasks  # noqa: F401
    from fusionrec.registry import TASKS

    _table(
        ["task", "description", "task: keys"],
        [[e.name, e.meta.get("description", ""), ", ".join(sorted(e.config_class.model_fields))] for e in TASKS],
    )


@list_app.command("configs")
def list_configs() -> None:
    """Configs shipped with fusionrec (use as -c NAME), tuned on validation."""
    from fusionrec.config import shipped_configs

    _table(["config"], [[name] for name in shipped_configs()])


@list_app.command("formats")
def list_formats() -> None:
    """Data formats the readers recognise (data.format), in the order auto-detection tries them."""
    from fusionrec.data import readers  # noqa: F401
    from fusionrec.registry import READERS

    entries = sorted(READERS, key=lambda e: e.meta.get("order", 100))
    _table(["format", "description"], [[e.name, e.meta.get("description", "")] for e in entries])


# ----------------------------------------------------------------------------------------- data
@data_app.command("prepare")
def data_prepare(
    source: str = typer.Argument(..., help="built-in name (fusionrec list datasets) or a path"),
    format: str = typer.Option("auto", "--format", help="auto or a registered reader: fusionrec, mmrec, recbole, csv"),
    split: str = typer.Option(
        "random", "--split", help="random, loo, temporal, global_time, column, files, cold_item, cold_user"
    ),
    split_path: Optional[str] = typer.Option(
        None, "--split-path", help="folder of train/valid/test files (--split files)"
    ),
    seed: int = typer.Option(2024, "--seed"),
    kcore: int = typer.Option(0, "--kcore"),
    implicit_threshold: Optional[float] = typer.Option(None, "--implicit-threshold"),
    option: List[str] = typer.Option([], "--option", "-o", help="built-in data set option key=value"),
    set_: List[str] = typer.Option([], "--set", help="any other data.* setting, e.g. split.ratios=[0.7,0.1,0.2]"),
    force: bool = typer.Option(False, "--force", help="rebuild even if cached"),
    overrides: Optional[List[str]] = typer.Argument(
        None,
        help="data settings KEY=VALUE, data. prefix optional, e.g. data.columns.user=userId split.ratios=[0.7,0.1,0.2]",
    ),
) -> None:
    """Read, filter, split and validate a data set into the canonical folder (cached).

    The settings used become the defaults of later commands on the same file or folder
    (data info, data validate, train -d) for every setting they do not give."""
    from fusionrec.config import deep_merge, parse_overrides, validate
    from fusionrec.data.config import DataConfig, parse_data_overrides
    from fusionrec.data.prepare import prepare

    tree = {
        "name": source,
        "format": format,
        "kcore": kcore,
        "implicit_threshold": implicit_threshold,
        "split": {"method": split, "seed": seed, "path": split_path},
        "options": parse_overrides(option),
    }
    tree = deep_merge(deep_merge(tree, parse_data_overrides(set_)), parse_data_overrides(overrides or []))
    config = validate(DataConfig, tree, "data")
    folder = prepare(config, force=force, remember=True)
    _print_info(folder)
    out.print(f"prepared: [bold]{folder}[/]")


@data_app.command("info")
def data_info(
    source: str = typer.Argument(..., help="built-in name, path or prepared folder"),
    overrides: Optional[List[str]] = typer.Argument(
        None, help="data settings KEY=VALUE (default: those of the last `data prepare` of this source)"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Users, items, interactions, density, modality coverage, split sizes."""
    from fusionrec.config import validate
    from fusionrec.data.config import DataConfig, parse_data_overrides
    from fusionrec.data.prepare import describe_remembered, prepare, resolve_data_config

    given = validate(DataConfig, {**parse_data_overrides(overrides or []), "name": source}, "data")
    config = resolve_data_config(given)
    folder = prepare(config)
    _print_info(folder, as_json, remembered=None if config is given else describe_remembered(given, config))


@data_app.command("validate")
def data_validate(
    path: str = typer.Argument(..., help="a prepared folder, or any readable source"),
    overrides: Optional[List[str]] = typer.Argument(
        None, help="data settings KEY=VALUE (default: those of the last `data prepare` of this source)"
    ),
) -> None:
    """Check a folder's files against its manifest and the data against the protocol's rules."""
    from fusionrec.config import validate
    from fusionrec.data.config import DataConfig, parse_data_overrides
    from fusionrec.data.prepare import describe_remembered, prepare, resolve_data_config
    from fusionrec.data.store import load_dataset_dir, verify_dataset_dir
    from fusionrec.data.validate import validate_dataset

    given = validate(DataConfig, {**parse_data_overrides(overrides or []), "name": path}, "data")
    config = resolve_data_config(given)
    folder = prepare(config)
    verify_dataset_dir(folder)
    dataset = load_dataset_dir(folder)
    validate_dataset(dataset)
    if config is not given:
        out.print(f"{path}: {describe_remembered(given, config)}", highlight=False)
    out.print(
        f"[green]valid:[/] {folder} (split.method={(dataset.meta.get('split') or {}).get('method', '?')}: "
        + " / ".join(f"{k} {v:,}" for k, v in dataset.split_sizes().items())
        + ")"
    )


def _print_info(folder: Path, as_json: bool = False, remembered: str | None = None) -> None:
    from fusionrec.data.store import load_dataset_dir, read_manifest

    dataset = load_dataset_dir(folder)
    summary = dataset.summary()
    summary["fingerprint"] = read_manifest(folder)["fingerprint"]
    summary["split_settings"] = dataset.meta.get("split")
    summary["cleaning"] = dataset.meta.get("cleaning")
    if remembered:
        summary["remembered"] = remembered
    if as_json:
        out.print_json(json.dumps(summary))
        return
    rows = [
        ["users", f"{summary['users']:,}"],
        ["items", f"{summary['items']:,}"],
        ["interactions", f"{summary['interactions']:,}"],
        ["density", f"{summary['density']:.4%}"],
        ["rating / timestamp", f"{summary['rating']} / {summary['timestamp']}"],
    ]
    for name, m in summary["modalities"].items():
        rows.append([f"modality {name}", f"{m['kind']} {tuple(m['shape'])}, coverage {m['coverage']:.1%}"])
    if summary["kg_triples"]:
        rows.append(["KG", f"{summary['kg_triples']:,} triples, {summary['kg_linked_items']:,} linked items"])
    split = summary["split_settings"] or {}
    if summary["split"]:
        rows.append(
            ["split", f"{split.get('method', '?')}: " + " / ".join(f"{k} {v:,}" for k, v in summary["split"].items())]
        )
    dropped = [
        f"{split[k]:,} {label}"
        for k, label in (
            ("dropped_rows", "rows dropped"),
            ("removed_users", "users removed"),
            ("items_without_train", "items without training rows"),
        )
        if split.get(k)
    ]
    if dropped:
        rows.append(["split counts", ", ".join(dropped)])
    cleaning = summary["cleaning"] or {}
    cleaned = (
        [f"{cleaning['stripped_ids']:,} id(s) stripped of whitespace"] if cleaning.get("stripped_ids") else []
    ) + (
        [
            f"{cleaning['repeated_header_rows']:,} repeated header row(s) dropped (first: "
            f"{cleaning.get('first_repeated_header')})"
        ]
        if cleaning.get("repeated_header_rows")
        else []
    )
    if cleaned:
        rows.append(["cleaning", "; ".join(cleaned)])
    if remembered:
        rows.append(["settings", remembered])
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
    no_test: bool = typer.Option(
        False, "--no-test", help="validate only; the test split is not read (fusionrec evaluate RUN_DIR reads it later)"
    ),
    nproc: int = typer.Option(
        1,
        "--nproc",
        min=1,
        help="data-parallel processes on this machine (torchrun, DDP; the global batch stays train.batch_size). "
        "Several machines: run `torchrun --nnodes ... -m fusionrec train ...` on each (docs/distributed.md)",
    ),
) -> None:
    """Train a model, pick the epoch on validation, evaluate once on test, print the metrics."""
    if nproc > 1:
        from fusionrec.training.distributed import launched_by_torchrun, torchrun_command

        if launched_by_torchrun():
            raise FusionrecError("--nproc is for starting a job; this process already runs under torchrun")
        raise typer.Exit(subprocess.call(torchrun_command(nproc, sys.argv[1:])))
    from fusionrec.api import train

    run = train(
        model, data, config, overrides or [], run_dir=run_dir, resume=resume, progress=not quiet, test=not no_test
    )
    rec = run.record
    if "rank" in rec:  # another rank of a data-parallel job: rank 0 reports
        return
    _metrics_table(f"{rec['model']} on {rec['data']['name']}", rec["metrics"])
    out.print(
        f"status {rec['status']}, best epoch {rec['best_epoch']} of {rec['epochs_run']}, "
        f"{rec['timings']['train_s_per_epoch']} s/epoch, valid eval {rec['timings']['eval_s']} s, "
        f"peak RSS {rec['peak_rss_mb']} MB"
    )
    out.print(f"run: [bold]{run.run_dir}[/]")


@app.command("evaluate")
def evaluate_cmd(run_dir: Path, split: str = typer.Option("test", "--split")) -> None:
    """Re-evaluate a run's best checkpoint."""
    from fusionrec.api import evaluate

    _metrics_table(f"{run_dir} ({split})", {split: evaluate(run_dir, split)})


@app.command("recommend")
def recommend_cmd(
    run_dir: Path,
    user: Optional[str] = typer.Option(None, "--user", "-u"),
    k: int = typer.Option(10, "-k"),
    include_seen: bool = typer.Option(False, "--include-seen"),
    reasons: bool = typer.Option(
        False,
        "--why",
        "--modality",
        help="show the model's strongest attention signal per item (a top-K "
        "fusion model's top-weighted modality; a sequential model's most "
        "attended item of the history)",
    ),
    every_user: bool = typer.Option(False, "--all", help="every user's top-k (with --out), batched"),
    out_file: Optional[Path] = typer.Option(None, "--out", help="with --all: a .parquet or .csv file to write"),
) -> None:
    """Top-k items for a user (raw id), with titles where the data set has them; or every user's (--all --out)."""
    if every_user:
        _recommend_all(run_dir, k, out_file)
        return
    if user is None:
        raise FusionrecError("pass --user ID (one user) or --all --out FILE (every user)")
    from fusionrec.api import recommend

    recs = recommend(run_dir, user, k, include_seen, with_reasons=reasons)
    columns = ["rank", "item", "title", "score"] + (["because of"] if reasons else [])
    rows = []
    for r in recs:
        row = [r["rank"], r["item"], r["title"] or "", f"{r['score']:.4f}"]
        if reasons:
            why = r.get("reason")
            row.append(f"{why[0]} ({why[1]:.2f})" if why else "-")
        rows.append(row)
    _table(columns, rows)
    if reasons and recs and all(r.get("reason") is None for r in recs):
        typer.echo(
            f"this model gives no per-item reasons here (no attention over modalities or history, or no image "
            f"for these items); `fusionrec explain {run_dir} --user {shlex.quote(user)} --item ITEM` explains one item",
            err=True,
        )


def _recommend_all(run_dir: Path, k: int, out_file: Optional[Path]) -> None:
    if out_file is None or out_file.suffix not in (".parquet", ".csv"):
        raise FusionrecError("--all needs --out FILE ending in .parquet or .csv")
    from rich.progress import Progress

    from fusionrec.serving.service import Service

    service = Service.from_run_dir(run_dir, ann="none")
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("recommending", total=service.dataset.num_users)
        frame = service.recommend_all(k, progress=lambda n: bar.advance(task, n))
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(out_file.name + ".partial")
    frame.to_parquet(tmp, index=False) if out_file.suffix == ".parquet" else frame.to_csv(tmp, index=False)
    tmp.replace(out_file)
    out.print(f"{len(frame)} recommendations for {frame['user'].nunique()} users -> {out_file}")


@app.command("serve")
def serve_cmd(
    run_dir: Path,
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    ann: str = typer.Option("auto", "--ann", help="auto, none, flat, ivf, hnsw (FAISS; inner-product models only)"),
    workers: int = typer.Option(1, "--workers", min=1, help="server processes (each loads the run)"),
) -> None:
    """Serve a run over HTTP: /recommend, /similar, /explain, /metadata, /health, the explorer page at /."""
    import logging
    import os

    import uvicorn

    from fusionrec.serving.app import create_app
    from fusionrec.serving.service import Service

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if workers > 1:  # each worker process builds its own service from the environment
        os.environ["FUSIONREC_SERVE_RUN"], os.environ["FUSIONREC_SERVE_ANN"] = str(run_dir), ann
        uvicorn.run(
            "fusionrec.serving.app:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            timeout_graceful_shutdown=10,
        )
        return
    service = Service.from_run_dir(run_dir, ann=ann)
    scoring = service.metadata()["scoring"]
    err.print(f"serving {run_dir} at http://{host}:{port} (explorer at /, API docs at /docs); scoring: {scoring}")
    recall = next((v for k, v in scoring.items() if k.startswith("recall@")), None)
    if recall is not None and recall < 0.8:
        err.print(
            f"[yellow]warning:[/] the {scoring['kind']} index finds only {recall:.0%} of the exact top items; "
            "try --ann ivf or --ann flat, or --ann none for exact scoring"
        )
    uvicorn.run(create_app(service), host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)


@app.command("explain")
def explain_cmd(
    run_dir: Path,
    user: str = typer.Option(..., "--user", "-u"),
    item: Optional[str] = typer.Option(
        None, "--item", "-i", help="the item, for families that score (user, item) pairs (top-K)"
    ),
    out_dir: Optional[Path] = typer.Option(
        None, "--out", help="where heat maps (PNG) go (default: RUN_DIR/explanations)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the explanation as JSON"),
) -> None:
    """The attention behind a run's score for a user (and item): modality weights, region and sequence
    heat maps, whatever the run's model and task family have."""
    from fusionrec.api import explain

    result = explain(run_dir, user, item, out_dir)
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    out.print(result.subject + ("" if result.score is None else f": score {result.score:.4f}"), highlight=False)
    for name, weights in result.weights.items():
        _table([name, "weight"], [[label, weight] for label, weight in list(weights.items())[:15]])
    for name, grid in result.grids.items():
        _table([name, *grid.columns], [[row, *values] for row, values in zip(grid.rows, grid.values)])
    for name, vector in result.vectors.items():
        out.print(f"{name}: {vector}", highlight=False)
    for name, detail in result.details.items():  # words a model explains with (VECF's generated review)
        if isinstance(detail, str):
            out.print(f"{name}: {detail}", highlight=False)
    for image in result.images:
        out.print(f"heat map: [bold]{image}[/]")


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


def _table(columns: list[str], rows: Sequence[Sequence[object]], title: str | None = None) -> None:
    """Cells are text, never Rich markup (equations such as ``softmax([a; b])`` keep their brackets)."""
    table = Table(title=None if title is None else escape(title), show_lines=False)
    for col in columns:
        table.add_column(escape(col))
    for row in rows:
        table.add_row(*[escape(_fmt(v)) for v in row])
    out.print(table)


def _metrics_table(title: str, metrics: dict[str, dict[str, float] | None]) -> None:
    """One row per metric, one column per split."""
    splits = [name for name, values in metrics.items() if values]
    names = sorted(
        {k for name in splits for k in metrics[name]},  # type: ignore[union-attr]
        key=lambda s: (s.split("@")[0], int(s.split("@")[1]) if "@" in s else 0),
    )
    _table(["metric", *splits], [[n, *[metrics[s].get(n) for s in splits]] for n in names], title)  # type: ignore[union-attr]


if __name__ == "__main__":
    main()
