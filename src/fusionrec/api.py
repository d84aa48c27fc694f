"""The Python API behind every CLI command: ``train``, ``evaluate``, ``recommend``, ``compare``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from fusionrec import models as _models  # noqa: F401  (fills the MODELS registry)
from fusionrec.config import deep_merge, load_yaml, parse_overrides, validate
from fusionrec.data.dataset import Dataset
from fusionrec.data.prepare import prepare
from fusionrec.data.store import load_dataset_dir, read_manifest
from fusionrec.errors import ConfigError, FusionrecError
from fusionrec.metrics.full_ranking import top_k_items
from fusionrec.models.base import Recommender
from fusionrec import tasks as _tasks  # noqa: F401  (fills the TASKS registry)
from fusionrec.registry import MODELS, TASKS
from fusionrec.training.config import RunConfig
from fusionrec.training.fit import FitState, fit
from fusionrec.training.record import (BEST, LAST, PER_USER_TEST, default_run_dir, environment, peak_rss_mb, read_record,
                                       save_per_user, write_record)


@dataclass
class Run:
    """A finished (or interrupted) training run and its record."""

    run_dir: Path
    record: dict[str, Any]
    model: Recommender
    dataset: Dataset

    @property
    def test_metrics(self) -> dict[str, float]:
        return self.record["metrics"].get("test") or {}


def resolve_config(model: str | None = None, data: str | None = None, config: str | Path | dict | None = None,
                   overrides: Sequence[str] = ()) -> tuple[RunConfig, Any]:
    """Defaults < YAML file (or dict) < dotted overrides; returns the run config and the model config."""
    tree: dict[str, Any] = {}
    if isinstance(config, (str, Path)):
        tree = load_yaml(config)
    elif isinstance(config, dict):
        tree = dict(config)
    if model is not None:
        tree = deep_merge(tree, {"model": {"name": model}})
    if data is not None:
        tree = deep_merge(tree, {"data": {"name": data}})
    tree = deep_merge(tree, parse_overrides(overrides))
    model_tree = tree.get("model")
    if not isinstance(model_tree, dict) or "name" not in model_tree:
        raise ConfigError(f"no model chosen; pass -m MODEL (one of: {', '.join(MODELS.names())})")
    entry = MODELS.entry(str(model_tree["name"]))
    model_config = validate(entry.config, model_tree, "config", section="model")
    run_config = validate(RunConfig, {**tree, "model": model_config.model_dump()}, "config")
    return run_config, model_config


def build_model(model_config: Any, dataset: Dataset, seed: int) -> Recommender:
    torch.manual_seed(seed)
    return MODELS.get(model_config.name).from_dataset(model_config, dataset)


def build_task(run_config: RunConfig, dataset: Dataset, model_config: Any = None) -> Any:
    """The task of the run's model (``Recommender.task``), which owns loaders and the protocol."""
    model_cls = MODELS.get(run_config.model["name"])
    return TASKS.get(model_cls.task).from_config(run_config.train, dataset, model_config)


def train(model: str | None = None, data: str | None = None, config: str | Path | dict | None = None,
          overrides: Sequence[str] = (), run_dir: str | Path | None = None, resume: str | Path | None = None,
          progress: bool = True, test: bool = True) -> Run:
    """Train a model and evaluate it once on test; everything lands in a run directory.

    With ``resume``, the run continues from its last checkpoint with its recorded configuration. With
    ``test=False`` the test split is not read (while exploring settings by hand, or timing a run): the
    record says so, and ``evaluate(run_dir)`` reads it later from the best checkpoint.
    """
    if resume is not None:
        run_path = Path(resume)
        previous = read_record(run_path)
        if not (run_path / LAST).exists():
            raise FusionrecError(f"{run_path}: no {LAST} checkpoint to resume from")
        run_config, model_config = resolve_config(config=previous["config"], overrides=overrides)
        checkpoint = torch.load(run_path / LAST, map_location="cpu", weights_only=False)
    else:
        run_config, model_config = resolve_config(model, data, config, overrides)
        run_path = Path(run_dir) if run_dir is not None else default_run_dir(model_config.name, run_config.data.name)
        checkpoint = None
        if (run_path / LAST).exists():
            raise FusionrecError(f"{run_path}: already holds a run; pass --resume {run_path} or another --run-dir")
    t = run_config.train
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    data_dir = prepare(run_config.data)
    dataset = load_dataset_dir(data_dir)
    net = build_model(model_config, dataset, t.seed)
    task = build_task(run_config, dataset, model_config)
    run_path.mkdir(parents=True, exist_ok=True)

    record = _new_record(run_config, data_dir, dataset, net, task)
    if resume is not None and previous.get("model_extra"):
        record["model_extra"] = previous["model_extra"]
    record_writer = lambda state: write_record(run_path, _with_state(record, state, net))  # noqa: E731
    state = fit(net, task, t, run_dir=run_path, resume=checkpoint, progress=progress, on_epoch_end=record_writer)

    record = _with_state(record, state, net)
    if not test:
        record["evaluation"]["test"] = "not read (test=False)"
    elif state.stopped != "interrupted" and state.best_epoch > 0:
        start = time.perf_counter()
        test = task.evaluate(net, "test", t.device)
        record["metrics"]["test"] = test.metrics
        save_per_user(run_path / PER_USER_TEST, test)
        record["timings"]["test_eval_s"] = round(time.perf_counter() - start, 4)
        record["evaluation"]["test_users"] = test.num_users_evaluated
        record["evaluation"]["test_users_skipped"] = test.num_users_skipped
    record["status"] = state.stopped
    record["peak_rss_mb"] = round(peak_rss_mb(), 1)
    write_record(run_path, record)
    return Run(run_path, record, net, dataset)


def _new_record(run_config: RunConfig, data_dir: Path, dataset: Dataset, net: Recommender, task: Any) -> dict[str, Any]:
    manifest = read_manifest(data_dir)
    return {
        "model": run_config.model["name"],
        "task": net.task,
        "status": "running",
        "config": run_config.model_dump(mode="json"),
        "data": {"name": dataset.name, "path": str(data_dir), "fingerprint": manifest["fingerprint"],
                 "split": dataset.meta.get("split"), "sizes": manifest["split"],
                 "users": dataset.num_users, "items": dataset.num_items},
        "parameters": sum(p.numel() for p in net.parameters()),
        "evaluation": {"protocol": task.protocol,
                       "selection": f"best epoch by valid {run_config.train.metric}"},
        "metrics": {"valid": {}, "test": None},
        "timings": {},
        "history": [],
        **environment(),
    }


def _with_state(record: dict[str, Any], state: FitState, net: Recommender | None = None) -> dict[str, Any]:
    history = state.history
    train_times = [h["train_s"] for h in history]
    eval_times = [h["eval_s"] for h in history if "eval_s" in h]
    record = dict(record)
    record.update(
        status=state.stopped, epochs_run=state.epoch, best_epoch=state.best_epoch, history=history,
        metrics={**record["metrics"], "valid": state.best_valid},
        timings={**record["timings"],
                 "train_s_per_epoch": round(sum(train_times) / len(train_times), 4) if train_times else None,
                 "eval_s": round(sum(eval_times) / len(eval_times), 4) if eval_times else None,
                 "train_s_total": round(sum(train_times), 2)},
        peak_rss_mb=round(peak_rss_mb(), 1),
    )
    extra = net.extra_record() if net is not None else {}
    if extra:  # e.g. MCPTR's pre-training losses; kept from the previous record when resuming
        record["model_extra"] = extra
    return record


def load_run(run_dir: str | Path) -> Run:
    """Rebuild a run's model (best checkpoint) and data set from its directory."""
    run_path = Path(run_dir)
    record = read_record(run_path)
    run_config, model_config = resolve_config(config=record["config"])
    data_path = Path(record["data"]["path"])
    if not data_path.exists():
        data_path = prepare(run_config.data)
    dataset = load_dataset_dir(data_path)
    if read_manifest(data_path)["fingerprint"] != record["data"]["fingerprint"]:
        raise FusionrecError(f"{run_path}: the data set at {data_path} differs from the one this run was trained on "
                             "(fingerprint mismatch); prepare the same data again")
    net = build_model(model_config, dataset, run_config.train.seed)
    if not (run_path / BEST).exists():
        raise FusionrecError(f"{run_path}: no {BEST} checkpoint (the run never finished an evaluation)")
    net.load_state_dict(torch.load(run_path / BEST, map_location="cpu", weights_only=True))
    net.eval()
    return Run(run_path, record, net, dataset)


def evaluate(run_dir: str | Path, split: str = "test") -> dict[str, float]:
    """Re-evaluate a run's best checkpoint on ``split`` (valid or test) with its recorded protocol."""
    if split not in ("valid", "test"):
        raise ConfigError(f"split must be valid or test, got {split!r}")
    run = load_run(run_dir)
    run_config, model_config = resolve_config(config=run.record["config"])
    return build_task(run_config, run.dataset, model_config).evaluate(run.model, split).metrics


def recommend(run_dir: str | Path, user: str, k: int = 10, include_seen: bool = False,
              with_modality: bool = False) -> list[dict[str, Any]]:
    """Top-``k`` items for a raw user id, excluding items the user already interacted with.

    Sequential models predict the item after the user's whole sequence. With ``with_modality``,
    each recommendation of a fusion model carries ``top_modality``: ``(name, weight)`` of the
    modality with the largest attention weight for that (user, item) pair, or None."""
    run = load_run(run_dir)
    ds = run.dataset
    index = {str(u): i for i, u in enumerate(ds.user_ids)}
    if str(user) not in index:
        sample = ", ".join(map(str, ds.user_ids[:5]))
        raise FusionrecError(f"unknown user {user!r} in {ds.name} (ids look like: {sample}, ...)")
    u = index[str(user)]
    seen = None if include_seen else ds.matrix("train", "valid", "test")
    if run.model.task == "sequential":  # the next item after everything the user did, from its sequence
        scorer = run_task(run).scorer(run.model, "next")
    else:
        scorer = run.model.scorer()
    with torch.no_grad():
        items, scores = top_k_items(scorer, torch.tensor([u]), k, None if seen is None else seen[[u]])
    titles = ds.item_titles()
    recs = [{"rank": r + 1, "item": str(ds.item_ids[i]), "title": titles[i] if titles else None, "score": float(s)}
            for r, (i, s) in enumerate(zip(items[0].tolist(), scores[0].tolist()))]
    if with_modality and run.model.task != "sequential":
        from fusionrec.explain import top_modalities

        for rec, top in zip(recs, top_modalities(run.model, torch.full((len(recs),), u), items[0])):
            rec["top_modality"] = top
    return recs


def run_task(run: Run) -> Any:
    """The task object of a loaded run (its split, sampler and protocol), e.g. to score sequences."""
    run_config, model_config = resolve_config(config=run.record["config"])
    return build_task(run_config, run.dataset, model_config)


def compare(run_dirs: Sequence[str | Path], metrics: Sequence[str] = ("recall@20", "ndcg@20")) -> list[dict[str, Any]]:
    """One row per run: model, data, test metrics, best epoch, timings."""
    rows = []
    for run_dir in run_dirs:
        rec = read_record(run_dir)
        test = rec["metrics"].get("test") or {}
        rows.append({"run": str(run_dir), "model": rec["model"], "data": rec["data"]["name"],
                     "seed": rec["config"]["train"]["seed"], "status": rec["status"],
                     **{m: test.get(m) for m in metrics}, "best_epoch": rec.get("best_epoch"),
                     "train_s_per_epoch": rec["timings"].get("train_s_per_epoch"),
                     "test_eval_s": rec["timings"].get("test_eval_s"), "peak_rss_mb": rec.get("peak_rss_mb")})
    return rows


def benchmark(spec: str | Path | dict[str, Any], out: str | Path | None = None, *, check: bool = False,
              only_report: bool = False, jobs: int = 1, log: Any = None, models: list[str] | None = None,
              seeds: list[int] | None = None) -> Any:
    """Run (or resume) a benchmark spec under ``out`` and write its report; the twin of
    ``fusionrec benchmark``. Returns a ``fusionrec.benchmark.BenchmarkResult`` (cells, searches,
    report paths, and with ``check`` the comparison with the spec's expected results)."""
    from fusionrec.benchmark.run import run_benchmark

    return run_benchmark(spec, out, check=check, only_report=only_report, jobs=jobs, log=log, models=models, seeds=seeds)
