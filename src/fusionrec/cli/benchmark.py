"""``fusionrec benchmark SPEC.yaml``: run a benchmark spec, print its table, optionally check it."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from fusionrec.errors import FusionrecError

out = Console()
err = Console(stderr=True)


def benchmark_cmd(
    spec: Path = typer.Argument(..., help="benchmark spec (YAML): models x data sets x seeds, see docs/benchmark.md"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default runs/benchmark/<spec name>)"),
    check: bool = typer.Option(False, "--check", help="exit 1 when a result leaves its expected tolerance"),
    only_report: bool = typer.Option(False, "--only-report", help="train nothing; report the finished runs"),
    jobs: int = typer.Option(
        1, "--jobs", min=1, help="final runs trained in parallel processes (searches stay serial)"
    ),
    models: Optional[List[str]] = typer.Option(
        None,
        "--models",
        help="train only these models of the spec (repeat the option); the report covers every finished run",
    ),
    seeds: Optional[List[int]] = typer.Option(None, "--seeds", help="train only these seeds' final runs (repeat)"),
) -> None:
    """Run (or resume) a benchmark: validation-only searches, one run per seed, report, significance."""
    from fusionrec.benchmark import run_benchmark

    try:
        result = run_benchmark(
            spec,
            out=out_dir,
            check=check,
            only_report=only_report,
            jobs=jobs,
            models=models,
            seeds=seeds,
            log=lambda msg: err.print(msg, markup=False, highlight=False, soft_wrap=True),
        )
    except FusionrecError as exc:  # printed without markup: messages contain [brackets] (pip extras)
        err.print(f"error: {exc}", style="bold red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    report = result.report
    out.print(report.text, markup=False, highlight=False, soft_wrap=True)
    out.print(f"report: {report.markdown}, {report.csv}, {report.json}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"plots: {', '.join(str(p) for p in report.plots)}", markup=False, highlight=False, soft_wrap=True)
    missing = [c for c in result.cells if not c.finished]
    if missing:
        err.print(
            f"{len(missing)} run(s) missing or unfinished: "
            + ", ".join(f"{c.data}/{c.model} seed {c.seed}" for c in missing),
            markup=False,
            soft_wrap=True,
        )
    if result.check is not None:
        failed = [c for c in result.check if not c.ok]
        if failed:
            for line in failed:
                err.print(line.message, markup=False, highlight=False, soft_wrap=True)
            err.print(
                f"check FAILED: {len(failed)} of {len(result.check)} expected values outside tolerance",
                style="bold red",
                markup=False,
                soft_wrap=True,
            )
            raise typer.Exit(1)
        out.print(f"check passed: {len(result.check)} expected values within tolerance", markup=False)
