"""``fit()``: the training loop, with early stopping on validation, checkpoints and exact resume.

No trainer class: one function with a small state object. Every epoch writes ``last.pt`` (model,
optimiser, scheduler, RNG state, history) atomically, so ``--resume`` continues exactly where a run
stopped; the best validation state goes to ``best.pt``. Ctrl-C stops after the current batch and
keeps both. In data-parallel training (``training/distributed.py``) every rank runs this loop on
its shard of each batch; rank 0 alone evaluates, decides when to stop and writes files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fusionrec.data.io import write_with
from fusionrec.models.base import LossOutput, Recommender
from fusionrec.tasks.base import Task
from fusionrec.training.config import TrainConfig
from fusionrec.training.device import autocast, grad_scaler, resolve_device
from fusionrec.training.distributed import Distributed, data_parallel, epoch_seed, evaluate_split
from fusionrec.training.optim import Optimizers, build_optimizer
from fusionrec.training.record import BEST, LAST, load_checkpoint


@dataclass
class FitState:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 0
    best_epoch: int = 0
    best_value: float = -math.inf
    best_valid: dict[str, float] = field(default_factory=dict)
    bad_evals: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = "running"


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler | None:
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    return None


def fit(
    model: Recommender,
    task: Task,
    cfg: TrainConfig,
    *,
    run_dir: Path | None = None,
    resume: dict[str, Any] | None = None,
    progress: bool = True,
    distributed: Distributed | None = None,
    on_epoch_end: Callable[[FitState], None] | None = None,
) -> FitState:
    """Train ``model`` on ``task`` until ``cfg.epochs`` or early stopping; restore the best state.

    With ``distributed``, this process is one rank of a data-parallel job: it trains on its shard of
    every batch under DistributedDataParallel, and follows rank 0's evaluations and stopping."""
    device = torch.device(resolve_device(cfg.device, cfg.precision))  # auto -> cuda or cpu
    model.to(device)
    closed_form = not any(p.requires_grad for p in model.parameters())  # fitted when built: EASE, MostPop
    optimizer = None if closed_form else build_optimizer(model, cfg)
    scheduler = None if optimizer is None else build_scheduler(optimizer, cfg)  # type: ignore[arg-type]
    state = FitState()
    if resume is not None:
        model.load_state_dict(resume["model"])
        if optimizer is not None:
            optimizer.load_state_dict(resume["optimizer"])
        if scheduler is not None and resume.get("scheduler"):
            scheduler.load_state_dict(resume["scheduler"])
        torch.set_rng_state(resume["torch_rng"])
        state = FitState(**resume["state"])
        state.stopped = "running"
    is_main = distributed is None or distributed.is_main
    model.on_fit_start(task)
    maximize = task.higher_is_better(task.metric)
    best_state = _load_best(run_dir, model) if resume is not None else None
    if closed_form or optimizer is None:  # nothing to train: rank 0 evaluates alone and tells the others
        if is_main:
            state = _evaluate_once(model, task, device, state, run_dir, on_epoch_end)
        return state if distributed is None else FitState(**distributed.broadcast(asdict(state)))
    step_loss = _loss_step(model, distributed, device)
    scaler = grad_scaler(device, cfg.precision)
    console = Console(stderr=True, quiet=not (progress and is_main))
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=True,
        disable=not (progress and is_main),
    )
    try:
        with bar:
            epochs_bar = bar.add_task("epochs", total=cfg.epochs, completed=state.epoch, info="")
            batches_bar = bar.add_task("batches", total=task.num_batches, info="")
            for epoch in range(state.epoch + 1, cfg.epochs + 1):
                model.train()
                model.on_epoch_start(epoch)
                if distributed is not None:  # dropout masks fixed by (seed, epoch, rank): --resume repeats them
                    torch.manual_seed(epoch_seed(cfg.seed, epoch, distributed.rank))
                bar.reset(batches_bar, total=task.num_batches)
                start = time.perf_counter()
                totals: dict[str, float] = {}
                steps = 0
                for batch in task.train_batches(epoch):
                    with autocast(device, cfg.precision):
                        out = step_loss(batch)
                    if out is None:  # fewer rows than ranks: every rank skips it
                        continue
                    optimizer.zero_grad(set_to_none=True)
                    if scaler is None:
                        out.loss.backward()
                    else:
                        scaler.scale(out.loss).backward()
                        scaler.unscale_(optimizer)  # type: ignore[arg-type]  # clip the true gradients
                    if cfg.grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    if scaler is None:
                        optimizer.step()
                    else:
                        scaler.step(optimizer)  # type: ignore[arg-type]
                        scaler.update()
                    totals["loss"] = totals.get("loss", 0.0) + float(out.loss.detach())
                    for name, part in out.parts.items():
                        totals[name] = totals.get(name, 0.0) + float(part)
                    steps += 1
                    bar.advance(batches_bar)
                if distributed is not None:  # the epoch's loss over all ranks, so every rank decides alike
                    totals = {k: v / distributed.world_size for k, v in distributed.sum(totals).items()}
                if not math.isfinite(totals.get("loss", 0.0)):
                    state.stopped = "diverged"
                    console.print(f"[red]epoch {epoch}: loss is not finite; stopping (lower train.lr)")
                    break
                if scheduler is not None:
                    scheduler.step()
                train_s = time.perf_counter() - start
                entry: dict[str, Any] = {
                    "epoch": epoch,
                    "train_s": round(train_s, 4),
                    **{k: v / max(steps, 1) for k, v in totals.items()},
                }
                state.epoch = epoch
                result = None
                if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                    result = evaluate_split(task, model, "valid", device, distributed)  # None off rank 0
                if result is not None:
                    value = result.metrics[task.metric]
                    entry.update(
                        valid=result.metrics, eval_s=round(result.seconds, 4), valid_users=result.num_users_evaluated
                    )
                    if _improves(value, state, maximize):
                        state.best_value, state.best_epoch, state.best_valid = value, epoch, result.metrics
                        state.bad_evals = 0
                    else:
                        state.bad_evals += 1
                if distributed is not None:  # rank 0's evaluation decides for everyone
                    state = FitState(**distributed.broadcast(asdict(state)))
                    entry = distributed.broadcast(entry)
                if state.best_epoch == epoch:  # every rank keeps the best weights (equal on all ranks)
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    if run_dir is not None and is_main:
                        write_with(run_dir / BEST, lambda p: torch.save(best_state, p))  # noqa: B023  # called at once
                state.history.append(entry)
                info = f"loss {entry['loss']:.4f}  {_selection_line(task.metric, entry, state, cfg.eval_every)}"
                bar.update(epochs_bar, advance=1, info=info)
                if not console.is_terminal:  # a pipe or a log file: the bar is not drawn, so one line per epoch
                    console.print(f"epoch {epoch}/{cfg.epochs}  {info}  {train_s:.2f} s", highlight=False)
                if run_dir is not None and is_main:
                    _save_last(run_dir, model, optimizer, scheduler, state)
                if on_epoch_end is not None and is_main:
                    on_epoch_end(state)
                if state.bad_evals >= cfg.patience:
                    state.stopped = "early_stopping"
                    break
            else:
                state.stopped = "max_epochs"
    except KeyboardInterrupt:
        state.stopped = "interrupted"
        console.print(f"[yellow]interrupted after epoch {state.epoch}; best checkpoint kept (epoch {state.best_epoch})")
    if state.stopped == "running":
        state.stopped = "max_epochs"
    if best_state is not None:
        model.load_state_dict(best_state)
    return state


def _loss_step(
    model: Recommender, distributed: Distributed | None, device: torch.device
) -> Callable[[Any], LossOutput | None]:
    """The loss of one training batch: the whole batch in one process; under data parallelism this
    rank's shard, through DistributedDataParallel, weighted by the shard's share of the batch so that
    the gradient DDP averages is the gradient of the whole batch's mean loss. None: skip the batch."""
    if device.type == "cuda":  # page-locked host copies, so the transfer overlaps the GPU's work
        move = lambda batch: batch.pinned().to(device, non_blocking=True)  # noqa: E731
    else:
        move = lambda batch: batch.to(device)  # noqa: E731
    if distributed is None:
        return lambda batch: model.loss(move(batch))
    wrapped = data_parallel(model, distributed, device)

    def shard_loss(batch: Any) -> LossOutput | None:
        rows = len(batch)
        if rows < distributed.world_size:
            return None
        shard = move(batch.shard(distributed.rank, distributed.world_size))
        loss, parts = wrapped(shard)
        return LossOutput(loss * (len(shard) * distributed.world_size / rows), parts)

    return shard_loss


def _evaluate_once(
    model: Recommender,
    task: Any,
    device: torch.device,
    state: FitState,
    run_dir: Path | None,
    on_epoch_end: Callable[[FitState], None] | None,
) -> FitState:
    """``fit`` of a model without trainable parameters (closed-form or counting: EASE, MostPop), which is
    fitted when built: nothing is optimised; one validation pass is recorded as epoch 1 (``train_s`` 0),
    best.pt and last.pt are written as usual and the status is ``closed_form``. A resumed run that was
    already evaluated is not evaluated again."""
    if state.epoch == 0:
        try:
            result = task.evaluate(model, "valid", device)
        except KeyboardInterrupt:
            state.stopped = "interrupted"
            return state
        state.epoch = state.best_epoch = 1
        state.best_value, state.best_valid = result.metrics[task.metric], result.metrics
        state.history.append(
            {
                "epoch": 1,
                "train_s": 0.0,
                "valid": result.metrics,
                "eval_s": round(result.seconds, 4),
                "valid_users": result.num_users_evaluated,
            }
        )
        if run_dir is not None:
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            write_with(run_dir / BEST, lambda p: torch.save(best_state, p))  # noqa: B023  # called at once
            _save_last(run_dir, model, None, None, state)
        if on_epoch_end is not None:
            on_epoch_end(state)
    state.stopped = "closed_form"  # after the saves, as in the loop: a run killed before its test read resumes
    return state


def _selection_line(metric: str, entry: dict[str, Any], state: FitState, eval_every: int) -> str:
    """The progress line's validation part: this epoch's value when it was evaluated, and the best so far."""
    value = f"{metric} {entry['valid'][metric]:.4f}" if "valid" in entry else None
    if state.best_epoch == 0:
        return f"{value} (no best yet)" if value else f"{metric} not evaluated yet (every {eval_every} epochs)"
    best = f"best {state.best_value:.4f} @ {state.best_epoch}"
    return f"{value} ({best})" if value else f"{metric} {best}"


def _improves(value: float, state: FitState, maximize: bool) -> bool:
    """Whether a validation value beats the best so far (the first evaluation always does)."""
    if state.best_epoch == 0:
        return True
    return value > state.best_value if maximize else value < state.best_value


def _save_last(
    run_dir: Path,
    model: Recommender,
    optimizer: torch.optim.Optimizer | Optimizers | None,
    scheduler: Any,
    state: FitState,
) -> None:
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "torch_rng": torch.get_rng_state(),
        "state": asdict(state),
    }
    write_with(run_dir / LAST, lambda p: torch.save(checkpoint, p))


def _load_best(run_dir: Path | None, model: Recommender) -> dict[str, Any] | None:
    if run_dir is None or not (run_dir / BEST).exists():
        return None
    return load_checkpoint(run_dir / BEST)
