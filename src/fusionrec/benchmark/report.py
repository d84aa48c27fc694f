"""The benchmark report: CSV and JSON of every cell, a Markdown table, plots, paired significance.

Significance: for every model against the spec's reference on the same data set and seed, a
two-sided Wilcoxon signed-rank test over the per-user test values of ``spec.metric`` (the users of
the two runs are matched through their ``users`` arrays; users missing from either run are left
out and counted), then Holm's step-down correction over all those comparisons together.

Only final runs are reported: their test metrics are read here, once, after every choice was made.
Search trials are shown by their parameters and validation value only (they never compute test).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.benchmark.spec import BenchmarkSpec
from fusionrec.data.io import write_bytes, write_json, write_with
from fusionrec.errors import FusionrecError
from fusionrec.training.record import load_per_user


# ----------------------------------------------------------------------------------------- statistics
def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as the input; NaN stays NaN and is not counted).

    Sorted ascending, the i-th smallest of m p-values (i from 0) becomes
    ``max over j <= i of min(1, (m - j) * p_(j))``.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    running = 0.0
    for rank, i in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def align_users(
    users_a: np.ndarray, values_a: np.ndarray, users_b: np.ndarray, values_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The users both runs evaluated and their two values, paired by user id (any order in, ascending out)."""
    for users, name in ((users_a, "first"), (users_b, "second")):
        if len(np.unique(users)) != len(users):
            raise FusionrecError(f"per-user results of the {name} run list a user twice; they cannot be paired")
    common, ia, ib = np.intersect1d(users_a, users_b, assume_unique=True, return_indices=True)
    return common, np.asarray(values_a)[ia], np.asarray(values_b)[ib]


def paired_wilcoxon(
    users_a: np.ndarray, values_a: np.ndarray, users_b: np.ndarray, values_b: np.ndarray
) -> dict[str, Any]:
    """Two-sided Wilcoxon signed-rank test of a against b over the users both evaluated.

    Returns ``users`` (paired), ``dropped`` (users in only one run), ``mean_diff`` (a - b),
    ``statistic`` and ``p``. Identical values for every user give p = 1.
    """
    from scipy.stats import wilcoxon

    common, a, b = align_users(users_a, values_a, users_b, values_b)
    dropped = len(users_a) + len(users_b) - 2 * len(common)
    out: dict[str, Any] = {
        "users": int(len(common)),
        "dropped": int(dropped),
        "mean_diff": float(np.mean(a - b)) if len(common) else math.nan,
    }
    if len(common) == 0:
        return {**out, "statistic": math.nan, "p": math.nan}
    if not np.any(a != b):
        return {**out, "statistic": 0.0, "p": 1.0}
    res = wilcoxon(a, b, alternative="two-sided")
    return {**out, "statistic": float(res.statistic), "p": float(res.pvalue)}


def significance(spec: BenchmarkSpec, results: Sequence[Any]) -> list[dict[str, Any]]:
    """Every model vs the reference on the same data set and seed, Holm-adjusted together."""
    if spec.reference is None:
        return []
    by_key = {(r.data, r.model, r.seed): r for r in results}
    rows = []
    for r in results:
        if r.model == spec.reference:
            continue
        ref = by_key.get((r.data, spec.reference, r.seed))
        row: dict[str, Any] = {
            "data": r.data,
            "model": r.model,
            "seed": r.seed,
            "reference": spec.reference,
            "metric": spec.metric,
            # what the paired values are: users for the ranking families, rows / ratings / ... for the others
            "unit": ((r.record or {}).get("evaluation") or {}).get("test_unit") or "user",
        }
        if ref is None or not (r.finished and ref.finished):
            rows.append(
                {
                    **row,
                    "users": 0,
                    "dropped": 0,
                    "mean_diff": math.nan,
                    "statistic": math.nan,
                    "p": math.nan,
                    "note": "missing run",
                }
            )
            continue
        try:
            mine, theirs = load_per_user(r.run_dir), load_per_user(ref.run_dir)
            test = paired_wilcoxon(mine["users"], mine[spec.metric], theirs["users"], theirs[spec.metric])
            rows.append({**row, **test, "note": ""})
        except (FusionrecError, KeyError) as exc:
            rows.append(
                {
                    **row,
                    "users": 0,
                    "dropped": 0,
                    "mean_diff": math.nan,
                    "statistic": math.nan,
                    "p": math.nan,
                    "note": f"no per-user values ({exc})",
                }
            )
    adjusted = holm([row["p"] for row in rows])
    for row, p_holm in zip(rows, adjusted):
        row["p_holm"] = float(p_holm)
        row["significant"] = bool(p_holm < spec.alpha) if not math.isnan(p_holm) else None
    return rows


# ----------------------------------------------------------------------------------------- tables
def cell_rows(spec: BenchmarkSpec, results: Sequence[Any]) -> list[dict[str, Any]]:
    """One flat row per final run (what results.csv holds)."""
    rows = []
    metrics = list(dict.fromkeys([*spec.metrics, spec.metric]))
    for r in results:
        rec = r.record or {}
        test = (rec.get("metrics") or {}).get("test") or {}
        valid = (rec.get("metrics") or {}).get("valid") or {}
        timings = rec.get("timings") or {}
        rows.append(
            {
                "data": r.data,
                "model": r.model,
                "seed": r.seed,
                "status": rec.get("status", "missing"),
                "run_dir": str(r.run_dir),
                "params": json.dumps(r.params, sort_keys=True) if r.params else "",
                "best_epoch": rec.get("best_epoch"),
                "epochs_run": rec.get("epochs_run"),
                **{f"valid_{m}": valid.get(m) for m in metrics},
                **{f"test_{m}": test.get(m) for m in metrics},
                "train_s_per_epoch": timings.get("train_s_per_epoch"),
                "valid_eval_s": timings.get("eval_s"),
                "test_eval_s": timings.get("test_eval_s"),
                "peak_rss_mb": rec.get("peak_rss_mb"),
            }
        )
    return rows


def summary_rows(spec: BenchmarkSpec, results: Sequence[Any], sig: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (data, model): mean and std over seeds of each test metric, epochs, seconds, p-values."""
    out = []
    for data in spec.datasets:
        for model in spec.models:
            runs = [r for r in results if r.data == data and r.model == model and r.finished]
            row: dict[str, Any] = {
                "data": data,
                "model": model,
                "seeds": [r.seed for r in runs],
                "best_epochs": [r.record.get("best_epoch") for r in runs],
            }
            for m in dict.fromkeys([*spec.metrics, spec.metric]):
                values = [
                    r.record["metrics"]["test"][m]
                    for r in runs
                    if (r.record["metrics"].get("test") or {}).get(m) is not None
                ]
                row[m] = {
                    "mean": statistics.mean(values) if values else None,
                    "std": statistics.stdev(values) if len(values) > 1 else (0.0 if values else None),
                    "values": values,
                }
            secs = [r.record["timings"].get("train_s_per_epoch") for r in runs]
            secs = [s for s in secs if s is not None]
            row["train_s_per_epoch"] = statistics.mean(secs) if secs else None
            mine = [s for s in sig if s["data"] == data and s["model"] == model]
            row["p"] = [s["p"] for s in mine]
            row["p_holm"] = [s["p_holm"] for s in mine]
            out.append(row)
    return out


def _ms(stat: dict[str, Any], num_seeds: int) -> str:
    """``mean ± std``; with fewer finished seeds than the spec has, says how many (one seed has no std)."""
    if stat["mean"] is None:
        return "n/a"
    n = len(stat["values"])
    text = f"{stat['mean']:.4f}" if n == 1 else f"{stat['mean']:.4f} ± {stat['std']:.4f}"
    return text if n >= num_seeds else f"{text} ({n} of {num_seeds} seeds)"


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.3f}"


def markdown_table(spec: BenchmarkSpec, summary: Sequence[dict[str, Any]], data: str) -> str:
    """The Markdown table of one data set: mean ± std per metric, epochs, s/epoch, p and Holm p vs reference."""
    metrics = list(dict.fromkeys(spec.metrics))
    ref = spec.reference
    head = ["model", *[_title(m) for m in metrics], "best epochs", "s/epoch"]
    if ref:
        head += [f"p vs {ref} ({spec.metric}, per seed)", "Holm p"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary:
        if row["data"] != data:
            continue
        secs = "n/a" if row["train_s_per_epoch"] is None else f"{row['train_s_per_epoch']:.3f}"
        cells = [
            row["model"] + (" (reference)" if row["model"] == ref else ""),
            *[_ms(row[m], len(spec.seeds)) for m in metrics],
            ", ".join(str(e) for e in row["best_epochs"]) or "n/a",
            secs,
        ]
        if ref:
            if row["model"] == ref:
                cells += ["-", "-"]
            else:
                cells += [", ".join(_p(p) for p in row["p"]) or "n/a", ", ".join(_p(p) for p in row["p_holm"]) or "n/a"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _title(metric: str) -> str:
    name, _, k = metric.partition("@")
    pretty = {
        "recall": "Recall",
        "ndcg": "NDCG",
        "precision": "Precision",
        "hit_rate": "HitRate",
        "mrr": "MRR",
        "map": "MAP",
    }.get(name, name)
    return f"{pretty}@{k}" if k else pretty  # plain "mrr" has no cut-off


# ----------------------------------------------------------------------------------------- check
@dataclass
class CheckLine:
    """One check of ``--check``: a measured mean against its expected mean (``kind="mean"``), or a
    claimed ordering of two models against their measured means (``kind="ordering"``)."""

    ok: bool
    kind: str
    data: str
    metric: str
    message: str
    model: str | None = None  # mean: the model; ordering: the claim, e.g. "nova-gating > bert4rec"
    value: float | None = None  # mean: the measured mean; ordering: the measured difference left - right
    expected: float | None = None  # mean: the expected mean
    tolerance: float | None = None  # mean: max(floor, z * se)
    se: float | None = None  # mean: sqrt(se_run^2 + se_expected^2)
    seeds: list[int] = field(default_factory=list)


def check(spec: BenchmarkSpec, results: Sequence[Any]) -> list[CheckLine]:
    """Compare the final runs' test metrics with ``spec.expected`` (docs/benchmark.md, "--check").

    Means: for every ``results[data][model][metric]`` the measured mean ``m`` over the spec's seeds is
    compared with the expected mean ``e``: it passes when
    ``|m - e| <= max(floor, z * sqrt(se_run^2 + se_exp^2))``, with ``se_run = s / sqrt(n_run)`` (``s`` the
    sample std over the measured seeds; the expected per-seed std when only one seed was run) and
    ``se_exp`` the recorded ``se`` or ``std / sqrt(n)``. Orderings: every claim ``[a, ">", b]`` of
    ``orderings[data][metric]`` passes when the measured mean of ``a`` is above that of ``b`` (``<``:
    below); with ``every_seed`` also on every seed, paired by seed. No significance test is made here.
    A missing or unfinished seed fails the lines that need it.
    """
    if spec.expected is None:
        raise FusionrecError("--check needs an 'expected' section in the spec (results and/or orderings)")
    expected = spec.expected
    n_exp = expected.n if expected.n is not None else len(spec.seeds)
    lines = []
    for data, by_model in expected.results.items():
        for model, by_metric in by_model.items():
            for metric, exp in by_metric.items():
                values = _seed_values(spec, results, data, model, metric)
                lines.append(
                    _mean_line(
                        data,
                        model,
                        metric,
                        values,
                        exp.mean,
                        exp.standard_error(n_exp),
                        exp.seed_std(n_exp),
                        expected.z,
                        expected.floor,
                    )
                )
    for data, claims_by_metric in expected.orderings.items():
        for metric, claims in claims_by_metric.items():
            for claim in claims:
                lines.append(_ordering_line(spec, results, data, metric, claim))
    return lines


def _seed_values(
    spec: BenchmarkSpec, results: Sequence[Any], data: str, model: str, metric: str
) -> dict[int, float | None]:
    runs = {r.seed: r for r in results if r.data == data and r.model == model}
    return {s: _test_value(runs.get(s), metric) for s in spec.seeds}


def _test_value(result: Any, metric: str) -> float | None:
    if result is None or not result.finished:
        return None
    value = (result.record["metrics"].get("test") or {}).get(metric)
    return None if value is None else float(value)


def _missing(values: dict[int, float | None]) -> list[int]:
    return [s for s, v in values.items() if v is None]


def mean_tolerance(
    values: Sequence[float], se_expected: float, std_expected: float, z: float, floor: float
) -> tuple[float, float, float]:
    """The measured mean, the combined standard error and the tolerance of one mean check.

    ``se = sqrt(se_run^2 + se_expected^2)`` with ``se_run = s / sqrt(n_run)``, ``s`` the sample standard
    deviation (ddof 1) of the measured values, or ``std_expected`` when there is one value only;
    tolerance ``max(floor, z * se)``.
    """
    n_run = len(values)
    mean = statistics.fmean(values)
    s = statistics.stdev(values) if n_run > 1 else std_expected
    se = math.sqrt((s / math.sqrt(n_run)) ** 2 + se_expected**2)
    return mean, se, max(floor, z * se)


def _mean_line(
    data: str,
    model: str,
    metric: str,
    values: dict[int, float | None],
    expected: float,
    se_expected: float,
    std_expected: float,
    z: float,
    floor: float,
) -> CheckLine:
    where = f"{data}/{model} test {metric}"
    missing = _missing(values)
    if missing:
        return CheckLine(
            False,
            "mean",
            data,
            metric,
            f"FAIL {where}: no finished run for seed(s) {', '.join(map(str, missing))} (expected mean {expected:.4f})",
            model=model,
            expected=expected,
            seeds=list(values),
        )
    got = [float(v) for v in values.values()]  # type: ignore[arg-type]
    mean, se, tol = mean_tolerance(got, se_expected, std_expected, z, floor)
    off = mean - expected
    ok = abs(off) <= tol
    in_se = f"{off / se:+.1f} SE" if se > 0 else "n/a SE"
    bound = f"max({floor:g}, {z:g} x SE {se:.4f})"
    return CheckLine(
        ok,
        "mean",
        data,
        metric,
        f"{'ok  ' if ok else 'FAIL'} {where}: mean {mean:.4f} over {len(got)} seeds, expected "
        f"{expected:.4f}; off by {off:+.4f} ({in_se}), tolerance {tol:.4f} = {bound}",
        model=model,
        value=mean,
        expected=expected,
        tolerance=tol,
        se=se,
        seeds=list(values),
    )


def _ordering_line(spec: BenchmarkSpec, results: Sequence[Any], data: str, metric: str, claim: Any) -> CheckLine:
    where = f"{data} test {metric}: claimed {claim.claim}"
    left = _seed_values(spec, results, data, claim.left, metric)
    right = _seed_values(spec, results, data, claim.right, metric)
    missing = sorted(
        {f"{m} seed {s}" for m, vals in ((claim.left, left), (claim.right, right)) for s in _missing(vals)}
    )
    if missing:
        return CheckLine(
            False,
            "ordering",
            data,
            metric,
            f"FAIL {where}: no finished run for {', '.join(missing)}",
            model=claim.claim,
            seeds=list(spec.seeds),
        )
    sign = 1.0 if claim.op == ">" else -1.0
    mean_l, mean_r = statistics.fmean(left.values()), statistics.fmean(right.values())  # type: ignore[arg-type]
    diffs = {s: left[s] - right[s] for s in spec.seeds}  # type: ignore[operator]
    holds_mean = sign * (mean_l - mean_r) > 0
    broken = [s for s, d in diffs.items() if not sign * d > 0]
    ok = holds_mean and not (claim.every_seed and broken)
    per_seed = ", ".join(f"{d:+.4f}" for d in diffs.values())
    text = (
        f"means {mean_l:.4f} vs {mean_r:.4f} (diff {mean_l - mean_r:+.4f}); per seed "
        f"{', '.join(map(str, spec.seeds))}: {per_seed}"
    )
    if not ok:
        why = [] if holds_mean else ["the means are not in that order"]
        if claim.every_seed and broken:
            why.append(f"not on seed(s) {', '.join(map(str, broken))}")
        text = f"{'; '.join(why)}: {text}"
    return CheckLine(
        ok,
        "ordering",
        data,
        metric,
        f"{'ok  ' if ok else 'FAIL'} {where}; {text}",
        model=claim.claim,
        value=mean_l - mean_r,
        seeds=list(spec.seeds),
    )


# ----------------------------------------------------------------------------------------- plots
def plot_metrics(spec: BenchmarkSpec, summary: Sequence[dict[str, Any]], data: str, path: Path) -> None:
    """Grouped bars: one group per model, one bar per metric, mean over seeds with std error bars."""
    from matplotlib.figure import Figure

    rows = [r for r in summary if r["data"] == data]
    metrics = list(dict.fromkeys(spec.metrics))
    fig = Figure(figsize=(max(4.0, 1.4 * len(rows) * max(1, len(metrics)) / 2 + 2), 3.6))
    ax = fig.subplots()
    width = 0.8 / max(1, len(metrics))
    x = np.arange(len(rows))
    for j, m in enumerate(metrics):
        means = [r[m]["mean"] if r[m]["mean"] is not None else 0.0 for r in rows]
        stds = [r[m]["std"] if r[m]["std"] is not None else 0.0 for r in rows]
        ax.bar(x + (j - (len(metrics) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=_title(m))
    ax.set_xticks(x, [r["model"] for r in rows])
    ax.set_ylabel("test (mean ± std over seeds)")
    ax.set_title(f"{spec.name}: {data}")
    ax.legend(fontsize="small")
    fig.tight_layout()
    write_with(path, lambda p: fig.savefig(p, format="png", dpi=120))


def plot_curves(spec: BenchmarkSpec, results: Sequence[Any], data: str, path: Path) -> bool:
    """Validation metric per epoch for each model (first finished seed); the best epoch is marked."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.subplots()
    drawn = False
    metric = spec.metric
    for model in spec.models:
        run = next((r for r in results if r.data == data and r.model == model and r.finished), None)
        if run is None:
            continue
        points = [
            (h["epoch"], h["valid"][metric])
            for h in run.record.get("history", [])
            if isinstance(h.get("valid"), dict) and metric in h["valid"]
        ]
        if not points:
            continue
        epochs, values = zip(*points)
        (line,) = ax.plot(epochs, values, label=f"{model} (seed {run.seed})")
        best = run.record.get("best_epoch")
        if best in epochs:
            ax.plot([best], [values[epochs.index(best)]], "o", color=line.get_color())
        drawn = True
    if not drawn:
        return False
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"valid {metric}")
    ax.set_title(f"{spec.name}: {data}, validation curves (o = chosen epoch)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    write_with(path, lambda p: fig.savefig(p, format="png", dpi=120))
    return True


# ----------------------------------------------------------------------------------------- files
@dataclass
class Report:
    csv: Path
    json: Path
    markdown: Path
    plots: list[Path]
    text: str
    summary: list[dict[str, Any]]
    significance: list[dict[str, Any]]


def write_report(
    spec: BenchmarkSpec,
    results: Sequence[Any],
    searches: Sequence[Any],
    out: Path,
    checked: Sequence[CheckLine] | None = None,
) -> Report:
    """Write results.csv, results.json, results.md and plots/*.png under ``out``."""
    rows = cell_rows(spec, results)
    sig = significance(spec, results)
    summary = summary_rows(spec, results, sig)

    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(rows[0]) if rows else ["data", "model", "seed"], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    write_bytes(out / "results.csv", buffer.getvalue().encode())

    plots = []
    for data in spec.datasets:
        path = out / "plots" / f"metrics_{data}.png"
        plot_metrics(spec, summary, data, path)
        plots.append(path)
        path = out / "plots" / f"valid_curves_{data}.png"
        if plot_curves(spec, results, data, path):
            plots.append(path)

    text = _markdown(spec, summary, sig, searches, checked, out, plots)
    write_bytes(out / "results.md", text.encode())
    write_json(
        out / "results.json",
        _clean(
            {
                "spec": spec.name,
                "metric": spec.metric,
                "reference": spec.reference,
                "seeds": spec.seeds,
                "cells": rows,
                "summary": summary,
                "significance": sig,
                "searches": [
                    {
                        "data": s.data,
                        "model": s.model,
                        "metric": f"valid {s.metric}",
                        "best": None if s.best is None else _trial(s.best),
                        "trials": [_trial(t) for t in s.trials],
                    }
                    for s in searches
                ],
                "check": None if checked is None else [asdict(c) for c in checked],
                "provenance": spec.expected.provenance if spec.expected else None,
            }
        ),
    )
    return Report(out / "results.csv", out / "results.json", out / "results.md", plots, text, summary, sig)


TRIAL_KEYS = ("number", "params", "value", "status", "best_epoch", "run_dir")


def _trial(trial: dict[str, Any]) -> dict[str, Any]:
    """What the report shows of a search trial: its parameters and validation value, never a test metric."""
    return {k: trial[k] for k in TRIAL_KEYS if k in trial}


def _clean(obj: Any) -> Any:
    """NaN becomes null, so results.json is strict JSON."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _markdown(
    spec: BenchmarkSpec,
    summary: Sequence[dict[str, Any]],
    sig: Sequence[dict[str, Any]],
    searches: Sequence[Any],
    checked: Sequence[CheckLine] | None,
    out: Path,
    plots: list[Path],
) -> str:
    parts = [f"# Benchmark: {spec.name}", ""]
    if spec.description:
        parts += [spec.description.strip(), ""]
    parts += [
        f"Test metrics, mean ± sample std over seeds {', '.join(map(str, spec.seeds))}. Hyperparameters "
        "and the early-stopping epoch were chosen on validation only; each final run read test once. "
        "s/epoch is the mean training time per epoch.",
        "",
    ]
    for data in spec.datasets:
        parts += [f"## {data}", "", markdown_table(spec, summary, data), ""]
        parts += [
            f"![{p.stem}]({p.relative_to(out).as_posix()})"
            for p in plots
            if p.stem in (f"metrics_{data}", f"valid_curves_{data}")
        ]
        parts.append("")
    if sig:
        unit = sig[0].get("unit", "user")
        parts += [
            "## Significance",
            "",
            f"Two-sided Wilcoxon signed-rank test on per-{unit} test {spec.metric}, each model against "
            f"{spec.reference} on the same data set and seed, {unit}s paired by id; Holm correction over "
            f"all {sum(not math.isnan(s['p']) for s in sig)} comparisons; alpha = {spec.alpha}.",
            "",
            f"| data | model | seed | {unit}s | mean diff | W | p | Holm p | significant |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in sig:
            flag = "n/a" if s["significant"] is None else ("yes" if s["significant"] else "no")
            w = "n/a" if math.isnan(s["statistic"]) else f"{s['statistic']:.1f}"
            diff = "n/a" if math.isnan(s["mean_diff"]) else f"{s['mean_diff']:+.4f}"
            parts.append(
                f"| {s['data']} | {s['model']} | {s['seed']} | {s['users']} | {diff} | {w} | "
                f"{_p(s['p'])} | {_p(s['p_holm'])} | {flag}{' (' + s['note'] + ')' if s['note'] else ''} |"
            )
        parts.append("")
    if searches:
        parts += [
            "## Searches (validation only)",
            "",
            "| data | model | trials | chosen | valid value | parameters |",
            "|---|---|---|---|---|---|",
        ]
        for s in searches:
            best = s.best
            params = ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in (best["params"].items() if best else [])
            )
            value = "n/a" if best is None else f"{best['value']:.4f}"
            parts.append(
                f"| {s.data} | {s.model} | {len(s.trials)} | {'n/a' if best is None else best['number']} "
                f"| {s.metric} {value} | {params} |"
            )
        parts.append("")
    if checked is not None:
        passed = all(c.ok for c in checked)
        means = [c for c in checked if c.kind == "mean"]
        orders = [c for c in checked if c.kind == "ordering"]
        parts += [
            "## Check",
            "",
            f"{'PASSED' if passed else 'FAILED'}: {sum(c.ok for c in means)} of {len(means)} "
            f"means within tolerance, {sum(c.ok for c in orders)} of {len(orders)} claimed orderings hold.",
            "",
        ]
        if spec.expected:
            e = spec.expected
            parts += [
                f"Means over seeds {', '.join(map(str, spec.seeds))} against the expected means; tolerance "
                f"max({e.floor:g}, {e.z:g} x sqrt(se_run^2 + se_expected^2)), se_run = sample std / sqrt(seeds); "
                "orderings on the measured means (every_seed: also on each seed). "
                f"Expected values: {e.provenance.strip()}",
                "",
            ]
        parts += ["```", *[c.message for c in checked], "```", ""]
    return "\n".join(parts)
