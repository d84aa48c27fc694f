"""Executing a benchmark: validation-only searches, then one training run per (data, model, seed).

Layout of the output folder ``OUT``::

    OUT/spec.json                                the validated spec
    OUT/search/<data>/<model>/trials.json        finished trials (params, validation value), resumable
    OUT/search/<data>/<model>/trial<NNN>/        one ``fusionrec train`` run directory per trial
    OUT/search/<data>/<model>/best.json          the chosen parameters
    OUT/runs/<data>/<model>/seed<k>/             the final runs, one per seed
    OUT/results.{csv,json,md}, OUT/plots/*.png   the report (fusionrec.benchmark.report)

What is read when: a trial trains with ``test=False`` (the test split is never evaluated, its record
holds no test metrics) and is scored by ``metrics.valid[search.metric]`` of its record only (the
validation value at the epoch early stopping chose); the chosen parameters are then trained for
each seed, each final run evaluates test once, and only those final runs' test metrics (and
per-user test values) reach the report.

Resuming: a run directory that holds a finished ``record.json`` is reused as it is; one holding a
``last.pt`` checkpoint continues from it; a search continues after the trials in ``trials.json``
(each trial's sampler is seeded by the search seed and the trial number, so a resumed search asks
for the same parameters as an uninterrupted one). A run directory made with another configuration
is an error, never silently reused.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from fusionrec.benchmark.spec import BenchmarkSpec, CategoricalParam, Cell, FloatParam, SearchSpec, cells, load_spec
from fusionrec.data.io import write_json
from fusionrec.errors import FusionrecError
from fusionrec.training.device import resolve_device
from fusionrec.training.record import LAST, RECORD

FINISHED = ("early_stopping", "max_epochs", "diverged", "closed_form")
Log = Callable[[str], None]


class MissingBenchExtra(FusionrecError, ImportError):
    """optuna or matplotlib is not installed."""


def require(module: str, what: str) -> ModuleType:
    """Import an optional dependency of the benchmark or fail with the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingBenchExtra(
            f"{what} needs the Python package {module!r}, which is not installed; "
            "install it with: pip install 'fusionrec[bench]'"
        ) from None


@dataclass
class CellResult:
    """One final run: ``record`` is None when the run is missing (``--only-report``) or unfinished."""

    data: str
    model: str
    seed: int
    run_dir: Path
    record: dict[str, Any] | None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.record is not None and self.record.get("status") in FINISHED


@dataclass
class SearchResult:
    data: str
    model: str
    metric: str
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` produced: the cells, searches, report files and check outcome."""

    spec: BenchmarkSpec
    out: Path
    cells: list[CellResult]
    searches: list[SearchResult]
    report: Any = None
    check: list[Any] | None = None

    @property
    def check_passed(self) -> bool | None:
        return None if self.check is None else all(c.ok for c in self.check)


def run_benchmark(
    spec: str | Path | dict[str, Any] | BenchmarkSpec,
    out: str | Path | None = None,
    *,
    check: bool = False,
    only_report: bool = False,
    jobs: int = 1,
    log: Log | None = None,
    models: list[str] | None = None,
    seeds: list[int] | None = None,
) -> BenchmarkResult:
    """Run (or resume) every cell of ``spec`` under ``out``, then write the report; with ``check``,
    compare the results with the spec's expected values (see :func:`fusionrec.benchmark.report.check`).

    ``models`` trains only those models' cells (the report covers every finished run of the spec), so
    several processes can share one output folder on disjoint models; ``seeds`` likewise restricts
    the final runs trained to those seeds."""
    from fusionrec.benchmark import report as report_mod

    log = log or _stderr
    parsed, base_dir = load_spec(spec)
    unknown = sorted(set(models or ()) - set(parsed.models))
    if unknown:
        raise FusionrecError(f"--models: {', '.join(unknown)} not in the spec (its models: {', '.join(parsed.models)})")
    trained = set(models) if models else set(parsed.models)
    unknown_seeds = sorted(set(seeds or ()) - set(parsed.seeds))
    if unknown_seeds:
        raise FusionrecError(f"--seeds: {unknown_seeds} not in the spec (its seeds: {parsed.seeds})")
    trained_seeds = set(seeds) if seeds else set(parsed.seeds)
    if jobs < 1:
        raise FusionrecError(f"--jobs must be at least 1 (got {jobs})")
    if check and parsed.expected is None:
        raise FusionrecError("--check needs an 'expected' section in the spec (results with value and tolerance)")
    require("matplotlib", "the benchmark report")
    if not only_report and any(m.search is not None for m in parsed.models.values()):
        require("optuna", "a benchmark with a search")
    out_path = Path(out) if out is not None else Path("runs") / "benchmark" / parsed.name
    out_path.mkdir(parents=True, exist_ok=True)

    searches: list[SearchResult] = []
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for cell in cells(parsed, base_dir):
        search = parsed.models[cell.model].search
        if search is None:
            continue
        result = (
            read_search(out_path, cell, search)
            if only_report or cell.model not in trained
            else run_search(parsed, cell, search, out_path, log)
        )
        searches.append(result)
        chosen[(cell.data, cell.model)] = result.best["params"] if result.best else {}

    jobs_list = []
    for cell in cells(parsed, base_dir):
        params = chosen.get((cell.data, cell.model), {})
        for seed in parsed.seeds:
            run_dir = out_path / "runs" / cell.data / cell.model / f"seed{seed}"
            jobs_list.append((cell, seed, params, cell.config(seed, params), run_dir))

    results: list[CellResult] = []
    if only_report:
        for cell, seed, params, _, run_dir in jobs_list:
            record = _read_if_finished(run_dir)
            results.append(CellResult(cell.data, cell.model, seed, run_dir, record, params))
    else:
        mine = [job for job in jobs_list if job[0].model in trained and job[1] in trained_seeds]
        records = _run_all(
            [(tree, run_dir) for _, _, _, tree, run_dir in mine],
            jobs,
            log,
            [f"{c.data}/{c.model} seed {s}" for c, s, _, _, _ in mine],
        )
        done = {str(job[4]): record for job, record in zip(mine, records)}
        for cell, seed, params, _, run_dir in jobs_list:
            record = done[str(run_dir)] if str(run_dir) in done else _read_if_finished(run_dir)
            results.append(CellResult(cell.data, cell.model, seed, run_dir, record, params))

    write_json(out_path / "spec.json", parsed.model_dump(mode="json"))
    outcome = BenchmarkResult(parsed, out_path, results, searches)
    if check:
        outcome.check = report_mod.check(parsed, results)
    outcome.report = report_mod.write_report(parsed, results, searches, out_path, outcome.check)
    return outcome


# ----------------------------------------------------------------------------------------- one run
def train_or_reuse(tree: dict[str, Any], run_dir: str | Path, *, test: bool = True) -> tuple[dict[str, Any], bool]:
    """Train the configuration ``tree`` into ``run_dir``, or reuse / resume what is already there.

    ``test=False`` (search trials) trains without ever evaluating the test split: the record's
    ``metrics.test`` stays empty and no per-user test values are written. Returns the record and
    whether a finished record was reused without training.
    """
    from fusionrec import api

    run_path = Path(run_dir)
    record_path = run_path / RECORD
    if record_path.exists():
        previous = json.loads(record_path.read_text())
        _same_config(tree, previous, run_path)
        if previous.get("status") in FINISHED:
            return previous, True
        if (run_path / LAST).exists():
            run = api.train(resume=run_path, progress=False, test=test)
            return _done(run.record, run_path), False
    run = api.train(config=tree, run_dir=run_path, progress=False, test=test)
    return _done(run.record, run_path), False


def _done(record: dict[str, Any], run_path: Path) -> dict[str, Any]:
    if record.get("status") == "interrupted":
        raise FusionrecError(f"{run_path}: training was interrupted; run the same command again to resume")
    return record


def _same_config(tree: dict[str, Any], record: dict[str, Any], run_path: Path) -> None:
    from fusionrec.api import resolve_config

    want = json.loads(json.dumps(resolve_config(config=tree)[0].model_dump(mode="json")))
    have = json.loads(json.dumps(record.get("config", {})))
    for config in (want, have):  # "auto" is whatever it picks on this machine (runs before it existed say "cpu")
        train = config.get("train") or {}
        if train.get("device") == "auto":
            train["device"] = resolve_device("auto")
    diff = sorted(_diff(want, have))
    if diff:
        shown = ", ".join(diff[:5]) + (" ..." if len(diff) > 5 else "")
        raise FusionrecError(
            f"{run_path}: holds a run of another configuration (differs at {shown}); "
            "delete that folder or pass another --out"
        )


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ; a key on one side only (an option added to or removed from
    the library since the run was made) is not a difference."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in set(a) & set(b):
            out += _diff(a[key], b[key], f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _read_if_finished(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RECORD
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    return record if record.get("status") in FINISHED else None


def _worker(job: tuple[dict[str, Any], str]) -> dict[str, Any]:
    """One run in a worker process (``--jobs`` > 1)."""
    return train_or_reuse(job[0], job[1])[0]


def _executor(jobs: int) -> Executor:
    return ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"))


def _run_all(
    jobs_list: list[tuple[dict[str, Any], Path]], jobs: int, log: Log, names: list[str]
) -> list[dict[str, Any]]:
    records: list[dict[str, Any] | None] = [None] * len(jobs_list)
    pending = []
    for i, (tree, run_dir) in enumerate(jobs_list):
        record = _read_if_finished(run_dir)
        if record is not None:
            _same_config(tree, record, run_dir)
            records[i] = record
            log(f"{names[i]}: finished earlier, reused ({run_dir})")
        else:
            pending.append(i)
    if jobs == 1 or len(pending) <= 1:
        for i in pending:
            log(f"{names[i]}: training ({jobs_list[i][1]})")
            records[i] = train_or_reuse(*jobs_list[i])[0]
            log(f"{names[i]}: {_summary(records[i])}")
    else:
        with _executor(jobs) as pool:
            futures = {i: pool.submit(_worker, (jobs_list[i][0], str(jobs_list[i][1]))) for i in pending}
            log(f"training {len(pending)} runs in {jobs} processes")
            for i, future in futures.items():
                records[i] = future.result()
                log(f"{names[i]}: {_summary(records[i])}")
    return records  # type: ignore[return-value]


def _summary(record: dict[str, Any] | None) -> str:
    if not record:
        return "no record"
    test = record["metrics"].get("test") or {}
    selected_on = (record.get("evaluation") or {}).get("selection", "").rpartition(" ")[2]  # "best epoch by valid X"
    wanted = {selected_on} | {k for k in test if k.endswith("@20") and k.split("@")[0] in ("recall", "ndcg")}
    shown = ", ".join(f"{k} {v:.4f}" for k, v in test.items() if k in wanted) or "not evaluated"
    return (
        f"{record['status']}, best epoch {record.get('best_epoch')} of {record.get('epochs_run')}, "
        f"{record['timings'].get('train_s_per_epoch')} s/epoch; test {shown}"
    )


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------- search
def valid_value(record: dict[str, Any], metric: str) -> float | None:
    """A trial's score: its validation ``metric`` at the chosen epoch. Only ``metrics.valid`` is read."""
    value = (record.get("metrics") or {}).get("valid", {}).get(metric)
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def choose(trials: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The trial with the highest validation value (the earliest trial on a tie); None if all failed."""
    scored = [t for t in trials if t.get("value") is not None]
    if not scored:
        return None
    return max(scored, key=lambda t: (t["value"], -t["number"]))


def _distributions(search: SearchSpec) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for key, p in search.space.items():
        if isinstance(p, FloatParam):
            out[key] = FloatDistribution(p.low, p.high, log=p.log, step=p.step)
        elif isinstance(p, CategoricalParam):
            out[key] = CategoricalDistribution(p.choices)
        else:
            out[key] = IntDistribution(p.low, p.high, log=p.log, step=p.step)
    return out


def _sampler(search: SearchSpec, number: int) -> Any:
    """A sampler seeded by (search seed, trial number): a resumed search asks what an uninterrupted one would."""
    import optuna

    seed = int(np.random.SeedSequence([search.seed, number]).generate_state(1)[0])
    if search.sampler in ("random", "grid"):  # grid: the enqueued combination is asked, the sampler unused
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _search_dir(out: Path, cell: Cell) -> Path:
    return out / "search" / cell.data / cell.model


def read_search(out: Path, cell: Cell, search: SearchSpec) -> SearchResult:
    """The finished trials and the choice of a search, as stored (for ``--only-report``)."""
    path = _search_dir(out, cell) / "trials.json"
    trials = json.loads(path.read_text())["trials"] if path.exists() else []
    complete = len(trials) >= search.trials
    return SearchResult(cell.data, cell.model, search.metric, trials, choose(trials) if complete else None)


def run_search(spec: BenchmarkSpec, cell: Cell, search: SearchSpec, out: Path, log: Log) -> SearchResult:
    """Run (or resume) the Optuna search of one (data, model) cell; every trial is a run directory."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = _search_dir(out, cell)
    path = folder / "trials.json"
    identity = {"search": search.model_dump(mode="json"), "base": cell.config(0)}
    trials: list[dict[str, Any]] = []
    if path.exists():
        stored = json.loads(path.read_text())
        if stored.get("identity") != json.loads(json.dumps(identity)):
            raise FusionrecError(
                f"{path}: written by another search or base configuration of {cell.model}; "
                f"delete {folder} or pass another --out"
            )
        trials = stored["trials"]
    distributions = _distributions(search)
    study = optuna.create_study(direction="maximize")
    for t in trials:
        state = TrialState.COMPLETE if t["value"] is not None else TrialState.FAIL
        study.add_trial(
            create_trial(
                params=t["params"],
                distributions=distributions,
                value=t["value"] if t["value"] is not None else None,
                state=state,
            )
        )
    train_seed = search.train_seed if search.train_seed is not None else spec.seeds[0]
    if len(trials) >= search.trials:
        log(f"{cell.data}/{cell.model}: search finished earlier ({len(trials)} trials), reused")
    for number in range(len(trials), search.trials):
        study.sampler = _sampler(search, number)
        if search.sampler == "grid":
            study.enqueue_trial(search.grid()[number])
        trial = study.ask(distributions)
        params = dict(trial.params)
        run_dir = folder / f"trial{number:03d}"
        tree = cell.config(train_seed, params, search.overrides)
        record, reused = train_or_reuse(tree, run_dir, test=False)  # a trial never evaluates test
        if reused and (record.get("metrics") or {}).get("test"):
            log(
                f"{cell.data}/{cell.model}: trial {number}'s record ({run_dir}) holds test metrics from an older "
                "fusionrec that evaluated test in trials; they are not read (delete the folder to retrain without)"
            )
        value = valid_value(record, search.metric)
        if value is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, value)
        trials.append(
            {
                "number": number,
                "params": params,
                "value": value,
                "status": record.get("status"),
                "best_epoch": record.get("best_epoch"),
                "run_dir": str(run_dir),
            }
        )
        write_json(path, {"identity": identity, "metric": f"valid {search.metric}", "trials": trials})
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
        log(
            f"{cell.data}/{cell.model}: trial {number} ({number + 1} of {search.trials}) {shown}: valid {search.metric} "
            f"{'failed' if value is None else f'{value:.4f}'}{' (reused)' if reused else ''}"
        )
    best = choose(trials)
    if best is None:
        raise FusionrecError(
            f"{cell.data}/{cell.model}: every search trial failed (no finite validation "
            f"{search.metric}); see the runs in {folder}"
        )
    write_json(folder / "best.json", {"metric": f"valid {search.metric}", **best})
    log(f"{cell.data}/{cell.model}: chose trial {best['number']} (valid {search.metric} {best['value']:.4f})")
    return SearchResult(cell.data, cell.model, search.metric, trials, best)
