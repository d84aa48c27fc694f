"""The Python API behind every CLI command: ``train``, ``evaluate``, ``recommend``, ``explain``, ``compare``.

Nothing here knows a task family: the run's model names its family, and the family's
:class:`fusionrec.tasks.base.Task` builds the loaders, evaluates, recommends and explains."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fusionrec import models as _models  # noqa: F401  (fills the MODELS registry)
from fusionrec import tasks as _tasks  # noqa: F401  (fills the TASKS registry)
from fusionrec.config import deep_merge, load_yaml, parse_overrides, validate
from fusionrec.data.dataset import Dataset
from fusionrec.data.prepare import prepare, resolve_data_config
from fusionrec.data.store import load_dataset_dir, read_manifest
from fusionrec.errors import ConfigError, FusionrecError
from fusionrec.features.provenance import modality_provenance
from fusionrec.models.base import Recommender
from fusionrec.registry import MODELS, task_of
from fusionrec.tasks.base import Explanation, Task
from fusionrec.threads import configure_threads
from fusionrec.training.config import RunConfig, TrainConfig
from fusionrec.training.device import resolve_device
from fusionrec.training.distributed import evaluate_split, init_distributed, rank_device, refuse_unsupported, shutdown
from fusionrec.training.fit import FitState, fit
from fusionrec.training.record import (
    BEST,
    LAST,
    PER_USER_TEST,
    RECORD,
    default_run_dir,
    environment,
    load_checkpoint,
    peak_rss_mb,
    read_record,
    save_per_user,
    write_record,
)


@dataclass
class Run:
    """A finished (or interrupted) training run and its record."""

    run_dir: Path
    record: dict[str, Any]
    model: Recommender
    dataset: Dataset
    task: Task

    @property
    def test_metrics(self) -> dict[str, float]:
        return self.record["metrics"].get("test") or {}


def resolve_config(
    model: str | None = None,
    data: str | None = None,
    config: str | Path | dict | None = None,
    overrides: Sequence[str] = (),
) -> tuple[RunConfig, Any]:
    """Defaults < YAML file (or dict) < dotted overrides; returns the run config (its ``task`` section
    validated by the family the model names) and the model config."""
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
    family = task_of(entry.name)
    _refuse_moved_keys(tree, family)
    model_config = validate(entry.config_class, model_tree, "config", section="model")
    task_config = validate(family.config_class, tree.get("task") or {}, "config", section="task")
    run_config = validate(
        RunConfig, {**tree, "model": model_config.model_dump(), "task": task_config.model_dump()}, "config"
    )
    family.obj.check_metric(task_config, run_config.train.metric or family.obj.default_metric)
    return run_config, model_config


def reported_metrics(run_config: RunConfig) -> list[str]:
    """The metric names a run with this resolved config reports (asked of its task family)."""
    family = task_of(run_config.model["name"])
    task_config = validate(family.config_class, run_config.task, "config", section="task")
    return family.obj.reported_metrics(task_config, run_config.train.metric or family.obj.default_metric)


def _refuse_moved_keys(tree: dict[str, Any], family: Any) -> None:
    """A key that moved from ``train:`` to the family's ``task:`` section fails with one line naming its new place."""
    train = tree.get("train") or {}
    moved = [key for key in family.config_class.moved_from_train if isinstance(train, dict) and key in train]
    if moved:
        key = moved[0]
        raise ConfigError(
            f"train.{key} moved to task.{key} (the {family.name} task's section): write "
            f"task.{key}={train[key]!r} on the command line, or `{key}:` under `task:` in a YAML"
        )


def saved_config(record: dict[str, Any]) -> dict[str, Any]:
    """A run record's resolved config, with keys that have since moved put in their new place (so runs
    recorded before the ``task:`` section existed still load)."""
    tree = {section: dict(values) for section, values in record["config"].items() if isinstance(values, dict)}
    family = task_of(tree["model"]["name"])
    train, task = tree.setdefault("train", {}), tree.setdefault("task", {})
    for key in family.config_class.moved_from_train:
        if key in train:
            task.setdefault(key, train.pop(key))
    for key in [k for k in train if k not in TrainConfig.model_fields]:
        train.pop(key)  # a train key no family owns any more (e.g. the other family's keys in old records)
    return tree


def build_model(model_config: Any, dataset: Dataset, seed: int) -> Recommender:
    torch.manual_seed(seed)
    return MODELS.get(model_config.name).from_dataset(model_config, dataset)


def build_task(run_config: RunConfig, dataset: Dataset, model_config: Any = None) -> Task:
    """The task of the family the run's model names, built from the run's ``task:`` and ``train:``
    sections after checking that the data set has what the family needs."""
    family = task_of(run_config.model["name"])
    task_config = validate(family.config_class, run_config.task, "config", section="task")
    family.obj.check_data(dataset)
    return family.obj.build(task_config, run_config.train, dataset, model_config)


def train(
    model: str | None = None,
    data: str | None = None,
    config: str | Path | dict | None = None,
    overrides: Sequence[str] = (),
    run_dir: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    test: bool = True,
) -> Run:
    """Train a model and evaluate it once on test; everything lands in a run directory.

    With ``resume``, the run continues from its last checkpoint with its recorded configuration. With
    ``test=False`` the test split is not read (while exploring settings by hand, or timing a run): the
    record says so, and ``evaluate(run_dir)`` reads it later from the best checkpoint.

    Started by ``torchrun`` (``fusionrec train --nproc N``), this process is one rank of a data-parallel
    job (``training/distributed.py``): every rank trains, rank 0 evaluates, writes and returns the
    record; the other ranks return a Run whose record holds only their ``rank``.
    """
    if resume is not None:
        run_path = Path(resume)
        previous = read_record(run_path)
        if not (run_path / LAST).exists():
            raise FusionrecError(f"{run_path}: no {LAST} checkpoint to resume from")
        run_config, model_config = resolve_config(config=saved_config(previous), overrides=overrides)
        checkpoint = load_checkpoint(run_path / LAST, weights_only=False)
        _refuse_finished(run_path, previous, overrides)
    else:
        run_config, model_config = resolve_config(model, data, config, overrides)
        run_path = Path(run_dir) if run_dir is not None else default_run_dir(model_config.name, run_config.data.name)
        checkpoint = None
        if (run_path / LAST).exists():
            raise FusionrecError(f"{run_path}: already holds a run; pass --resume {run_path} or another --run-dir")
    # settings remembered from `fusionrec data prepare SOURCE` are recorded, so --resume reads the same data
    run_config = run_config.model_copy(update={"data": resolve_data_config(run_config.data)})
    t = run_config.train
    device = resolve_device(t.device, t.precision)
    if t.precision == "fp16" and t.sparse_embeddings:
        raise ConfigError("train.precision=fp16 scales dense gradients only; drop train.sparse_embeddings or use bf16")
    distributed = init_distributed(device)
    if distributed is not None:
        device = rank_device(device, distributed)
        run_path = distributed.broadcast(run_path)  # rank 0's name (a default name has the start time in it)
    t = t.model_copy(update={"device": device})
    threads = configure_threads(t.num_threads)
    if distributed is not None and not distributed.is_main:
        distributed.barrier()  # rank 0 prepares the cached folder first; the others then read it
    data_dir = prepare(run_config.data)
    if distributed is not None and distributed.is_main:
        distributed.barrier()
    dataset = load_dataset_dir(data_dir)
    task = build_task(run_config, dataset, model_config)  # first: a task may fit what models read (ctr fields)
    net = build_model(model_config, dataset, t.seed)
    if distributed is not None:
        refuse_unsupported(net, model_config.name, t)
    run_path.mkdir(parents=True, exist_ok=True)

    record = _new_record(run_config, data_dir, dataset, net, task)
    record["threads"] = {"count": threads[0], "chosen_by": threads[1]}
    record["device"] = {"device": device, "precision": t.precision}
    if distributed is not None:
        record["distributed"] = {
            "world_size": distributed.world_size,
            "backend": distributed.backend,
            "global_batch": task.batch_size,
        }
    if resume is not None and previous.get("model_extra"):
        record["model_extra"] = previous["model_extra"]
    record_writer = lambda state: write_record(run_path, _with_state(record, state, net))  # noqa: E731
    state = fit(
        net,
        task,
        t,
        run_dir=run_path,
        resume=checkpoint,
        progress=progress,
        distributed=distributed,
        on_epoch_end=record_writer,
    )
    tested, start = None, time.perf_counter()
    if test and state.stopped != "interrupted" and state.best_epoch > 0:
        tested = evaluate_split(task, net, "test", t.device, distributed)  # every rank takes part; rank 0 gets it
    if distributed is not None and not distributed.is_main:
        shutdown(distributed)
        return Run(run_path, {"rank": distributed.rank}, net, dataset, task)

    record = _with_state(record, state, net)
    if not test:
        record["evaluation"]["test"] = "not read (test=False)"
    elif tested is not None:
        record["metrics"]["test"] = tested.metrics
        save_per_user(run_path / PER_USER_TEST, tested)
        record["timings"]["test_eval_s"] = round(time.perf_counter() - start, 4)
        record["evaluation"]["test_users"] = tested.num_users_evaluated
        record["evaluation"]["test_users_skipped"] = tested.num_users_skipped
        record["evaluation"]["test_unit"] = tested.unit  # what test_users counts (users, rows, ratings, ...)
    record["status"] = state.stopped
    record["peak_rss_mb"] = round(peak_rss_mb(), 1)
    write_record(run_path, record)
    shutdown(distributed)
    return Run(run_path, record, net, dataset, task)


def _refuse_finished(run_path: Path, record: dict[str, Any], overrides: Sequence[str]) -> None:
    """Resuming a finished run without new settings would do nothing: say so instead of doing it silently."""
    status = record.get("status")
    if status in ("running", "interrupted") or (overrides and status != "closed_form"):
        return
    if (
        status == "closed_form"
        and record["metrics"].get("test") is None
        and record.get("evaluation", {}).get("test") is None
    ):
        return  # stopped before its test read: resuming evaluates it
    if status == "closed_form":
        raise FusionrecError(
            f"{run_path}: already finished; {record['model']} is fitted in closed form, so there is "
            f"nothing to train on (`fusionrec evaluate {run_path}` re-reads its test)"
        )
    raise FusionrecError(
        f"{run_path}: already finished ({status}, best epoch {record.get('best_epoch')} of "
        f"{record.get('epochs_run')}); to train on, resume with more room, e.g. "
        f"`fusionrec train --resume {run_path} train.epochs=N train.patience=N`"
    )


def _new_record(
    run_config: RunConfig, data_dir: Path, dataset: Dataset, net: Recommender, task: Task
) -> dict[str, Any]:
    manifest = read_manifest(data_dir)
    return {
        "model": run_config.model["name"],
        "task": task.name,
        "status": "running",
        "config": run_config.model_dump(mode="json"),
        "data": {
            "name": dataset.name,
            "path": str(data_dir),
            "fingerprint": manifest["fingerprint"],
            "split": dataset.meta.get("split"),
            "sizes": manifest["split"],
            "users": dataset.num_users,
            "items": dataset.num_items,
            # which encoder produced each modality: the features cache is shared, so this is what tells
            # two runs on "the same" data apart after someone extracted other features into it
            "modalities": modality_provenance(dataset),
        },
        "parameters": sum(p.numel() for p in net.parameters()),
        "batch_size": task.batch_size,
        "evaluation": {"protocol": task.protocol, "selection": f"best epoch by valid {task.metric}"},
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
        status=state.stopped,
        epochs_run=state.epoch,
        best_epoch=state.best_epoch,
        history=history,
        metrics={**record["metrics"], "valid": state.best_valid},
        timings={
            **record["timings"],
            "train_s_per_epoch": round(sum(train_times) / len(train_times), 4) if train_times else None,
            "eval_s": round(sum(eval_times) / len(eval_times), 4) if eval_times else None,
            "train_s_total": round(sum(train_times), 2),
        },
        peak_rss_mb=round(peak_rss_mb(), 1),
    )
    extra = net.extra_record() if net is not None else {}
    if extra:  # e.g. MCPTR's pre-training losses; kept from the previous record when resuming
        record["model_extra"] = extra
    return record


def load_run(run_dir: str | Path) -> Run:
    """Rebuild a run's model (best checkpoint), data set and task from its directory."""
    run_path = Path(run_dir)
    record = read_record(run_path)
    run_config, model_config = resolve_config(config=saved_config(record))
    configure_threads(run_config.train.num_threads)
    data_path = Path(record["data"]["path"])
    if not data_path.exists():
        data_path = prepare(run_config.data)
    dataset = load_dataset_dir(data_path)
    if read_manifest(data_path)["fingerprint"] != record["data"]["fingerprint"]:
        raise FusionrecError(
            f"{run_path}: the data set at {data_path} differs from the one this run was trained on "
            "(fingerprint mismatch); prepare the same data again"
        )
    task = build_task(run_config, dataset, model_config)
    net = build_model(model_config, dataset, run_config.train.seed)
    net.load_state_dict(load_checkpoint(run_path / BEST))
    net.eval()
    return Run(run_path, record, net, dataset, task)


def evaluate(run_dir: str | Path, split: str = "test") -> dict[str, float]:
    """Re-evaluate a run's best checkpoint on ``split`` (valid or test) with its recorded protocol."""
    if split not in ("valid", "test"):
        raise ConfigError(f"split must be valid or test, got {split!r}")
    run = load_run(run_dir)
    return run.task.evaluate(run.model, split).metrics


def recommend(
    run_dir: str | Path, user: str, k: int = 10, include_seen: bool = False, with_reasons: bool = False
) -> list[dict[str, Any]]:
    """Top-``k`` items for a raw user id, excluding items the user already interacted with, scored
    by the run's task (a sequential model predicts the item after the user's whole sequence).

    With ``with_reasons``, each recommendation carries ``reason``: ``(label, weight)``, the model's
    strongest attention signal behind it (a top-K fusion model's top-weighted modality for that pair;
    a sequential model's most attended item of the sequence), or None for models without attention."""
    run = load_run(run_dir)
    ds = run.dataset
    u = _user_index(run, user)
    titles = ds.item_titles()
    recs = []
    for rank, rec in enumerate(run.task.recommend(run.model, u, k, include_seen, with_reasons), start=1):
        row = {
            "rank": rank,
            "item": str(ds.item_ids[rec.item]),
            "title": titles[rec.item] if titles else None,
            "score": rec.score,
        }
        if with_reasons:
            row["reason"] = rec.reason
        recs.append(row)
    return recs


def explain(run_dir: str | Path, user: str, item: str | None = None, out_dir: str | Path | None = None) -> Explanation:
    """The attention behind a run's score for ``user`` (and ``item``, for families that score pairs),
    from the run's task; heat maps are written to ``out_dir`` (default: ``RUN_DIR/explanations``)."""
    run = load_run(run_dir)
    ds = run.dataset
    u = _user_index(run, user)
    i = None if item is None else _index(ds.item_ids, item, "item", ds.name)
    out = Path(out_dir) if out_dir is not None else run.run_dir / "explanations"
    return run.task.explain(run.model, u, i, out)


def _user_index(run: Run, raw: str) -> int:
    """The task's index for a raw user id (or, for the kg task, a query such as ``"ENTITY RELATION"``)."""
    resolved = run.task.resolve_user(run.dataset, raw)
    return _index(run.dataset.user_ids, raw, "user", run.dataset.name) if resolved is None else resolved


def _index(ids: Any, raw: str, what: str, data: str) -> int:
    """The internal index of raw id ``raw`` (compared as text), or one line naming a few valid ids."""
    matches = (ids.astype(str) == str(raw)).nonzero()[0]
    if not len(matches):
        raise FusionrecError(f"unknown {what} {raw!r} in {data} (ids look like: {', '.join(map(str, ids[:5]))}, ...)")
    return int(matches[0])


def run_dirs_under(paths: Sequence[str | Path]) -> list[Path]:
    """The run directories among ``paths``: a path holding ``record.json`` is a run; any other folder
    is searched for runs below it (e.g. ``runs/demo``); a path that is neither fails with one line."""
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / RECORD).exists():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(p.parent for p in path.rglob(RECORD)))
        else:
            raise FusionrecError(f"{path}: neither a run directory nor a folder of runs")
    return found


def compare(run_dirs: Sequence[str | Path], metrics: Sequence[str] = ("recall@20", "ndcg@20")) -> list[dict[str, Any]]:
    """One row per run found in ``run_dirs`` (runs, or folders of runs): model, data, test metrics,
    best epoch, timings."""
    rows = []
    for run_dir in run_dirs_under(run_dirs):
        rec = read_record(run_dir)
        test = rec["metrics"].get("test") or {}
        rows.append(
            {
                "run": str(run_dir),
                "model": rec["model"],
                "data": rec["data"]["name"],
                "seed": rec["config"]["train"]["seed"],
                "status": rec["status"],
                **{m: test.get(m) for m in metrics},
                "best_epoch": rec.get("best_epoch"),
                "train_s_per_epoch": rec["timings"].get("train_s_per_epoch"),
                "test_eval_s": rec["timings"].get("test_eval_s"),
                "peak_rss_mb": rec.get("peak_rss_mb"),
            }
        )
    return rows
