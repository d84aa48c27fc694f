"""Data-parallel training with PyTorch's own engine: ``torchrun`` processes, DistributedDataParallel.

``fusionrec train --nproc N`` (or ``torchrun ... -m fusionrec train``, across machines with a
rendezvous) starts one process per rank. Each process builds the same data, task and model; what
they share is decided here:

- **Batches.** Every rank draws the same global batch (a task's batches are a function of the seed
  and the epoch only) and trains on its contiguous shard of it (:meth:`_Batch.shard`). The loss of a
  shard is weighted by its share of the batch, so DDP's gradient average equals the gradient of the
  single-process loss of the whole batch: the global batch is ``train.batch_size`` whatever the
  number of ranks. (A loss that couples the rows of a batch, such as in-batch negatives, sees its
  shard only.) A batch with fewer rows than ranks is skipped by every rank.
- **Gradients** are averaged by DistributedDataParallel (gloo on CPU, NCCL on CUDA), which also
  broadcasts rank 0's initial weights.
- **Evaluation** of the full-ranking families (top-K, sequential) is split by user over the ranks and
  joined on rank 0 (:func:`evaluate_split`), equal to the one-process evaluation; other families'
  evaluations run on rank 0 while the others wait.
- **Decisions** are rank 0's: the early-stopping state it reaches is broadcast, so every rank stops at
  the same epoch and keeps the same best weights; only rank 0 writes checkpoints, the record and the
  test metrics.
- **Randomness** inside the model (dropout) is seeded per epoch and rank, so ``--resume`` after a
  crash repeats exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from fusionrec.errors import FusionrecError
from fusionrec.metrics.full_ranking import EvalResult, merge_results
from fusionrec.models.base import Recommender
from fusionrec.tasks.base import Task


@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel job."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast(self, value: Any) -> Any:
        """``value`` as rank 0 has it (any picklable object)."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any] | None:
        """Every rank's ``value`` on rank 0 (in rank order); None on the other ranks."""
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(value, out, dst=0)
        return out

    def barrier(self) -> None:
        dist.barrier()

    def sum(self, values: dict[str, float]) -> dict[str, float]:
        """Element-wise sum over ranks of a name -> number map with the same keys everywhere."""
        names = sorted(values)
        tensor = torch.tensor([values[n] for n in names], dtype=torch.float64)
        if self.backend == "nccl":
            tensor = tensor.cuda()
        dist.all_reduce(tensor)
        return dict(zip(names, tensor.cpu().tolist(), strict=True))


def launched_by_torchrun() -> bool:
    """True inside a process started by ``torchrun`` (or ``--nproc``) for a job of two or more ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: str) -> Distributed | None:
    """Join the job ``torchrun`` started (None when there is none): NCCL for CUDA, gloo otherwise."""
    if not launched_by_torchrun():
        return None
    backend = "nccl" if device.startswith("cuda") else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(
            backend, timeout=timedelta(minutes=int(os.environ.get("FUSIONREC_DIST_TIMEOUT_MIN", "30")))
        )
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank, backend)


def shutdown(distributed: Distributed | None) -> None:
    if distributed is not None and dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: str, distributed: Distributed | None) -> str:
    """Each rank its own GPU: ``cuda`` becomes ``cuda:LOCAL_RANK``; a CPU device is shared."""
    if distributed is not None and device == "cuda":
        return f"cuda:{distributed.local_rank}"
    return device


class _LossForward(nn.Module):
    """A model's training loss as ``forward``, which is what DistributedDataParallel wraps."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        out = self.model.loss(batch)  # type: ignore[operator]
        return out.loss, dict(out.parts)


def data_parallel(model: nn.Module, distributed: Distributed, device: torch.device) -> nn.Module:
    """``model.loss`` wrapped by DistributedDataParallel; parameters a batch leaves unused are allowed
    (a model's loss need not touch every parameter on every batch)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    adapter = _LossForward(model)
    # Sparse buffers (a graph's adjacency) are built from the data, identically on every rank, and the
    # collectives cannot send them: DDP leaves them alone.
    sparse = [f"model.{name}" for name, buffer in model.named_buffers() if buffer.layout != torch.strided]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(adapter, sparse)
    return DistributedDataParallel(adapter, device_ids=ids, find_unused_parameters=True)


def refuse_unsupported(model: nn.Module, model_name: str, cfg: Any) -> None:
    """One line for what data-parallel training does not take."""
    if getattr(model, "two_stage", False):
        raise FusionrecError(
            f"{model_name} trains in two stages with an inner loop of its own; data-parallel training "
            "(--nproc / torchrun) does not take it yet: train it in one process"
        )
    if cfg.sparse_embeddings:
        raise FusionrecError(
            "train.sparse_embeddings=true is single-process only (DDP averages dense gradients); "
            "drop it, or train in one process"
        )


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of a rank's model randomness (dropout) in an epoch: fixed by (seed, epoch, rank)."""
    return (seed * 1_000_003 + epoch * 1_009 + rank) % (2**63 - 1)


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """The ``torchrun`` command that runs ``fusionrec <argv>`` (``--nproc`` removed) in ``nproc`` local
    processes, with a rendezvous on a free local port (``--standalone``)."""
    import sys

    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            rest.append(arg)
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "fusionrec",
        *rest,
    ]


def evaluate_split(
    task: Task, model: Recommender, split: str, device: str | torch.device, distributed: Distributed | None
) -> EvalResult | None:
    """``task.evaluate`` on ``split``, in a data-parallel job split over the ranks where the task can
    (``Task.shards_evaluation``: the full-ranking families by user, kg by triple) and joined on rank 0;
    the result on rank 0, None on the others."""
    if distributed is None:
        return task.evaluate(model, split, device)
    if task.shards_evaluation:
        part = task.evaluate(  # type: ignore[call-arg]
            model, split, device, shard=(distributed.rank, distributed.world_size)
        )
        parts = distributed.gather(part)
        return merge_results(parts) if parts is not None else None
    return task.evaluate(model, split, device) if distributed.is_main else None
