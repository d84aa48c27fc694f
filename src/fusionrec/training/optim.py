"""Optimisers of a run, with sparse embedding gradients where a model allows them.

A dense gradient of an embedding table costs a pass over the whole table at every step (zeroing,
the backward scatter, the optimiser's update), however few rows the batch touched: for an ID model
the cost of a step then grows with the catalogue, and an epoch (steps x table) grows quadratically
with the data. With ``train.sparse_embeddings`` the tables that a model's loss only reads row by row
(:meth:`~fusionrec.models.base.Recommender.lookup_embeddings`) get sparse gradients, so a step costs
what its batch touches:

* ``sgd`` and ``adagrad`` update sparse and dense parameters in one optimiser. Both are the same
  update as with dense gradients (a row outside the batch has a zero gradient, which leaves it and its
  Adagrad accumulator unchanged), so results only differ by floating-point summation order.
* ``adam`` steps the sparse tables with ``torch.optim.SparseAdam`` ("lazy" Adam: the moments of a
  row decay only when the row is in a batch, which is not Adam's update) and the rest with Adam.

Refused with sparse gradients, because PyTorch cannot apply them to sparse gradients: weight decay
(use the model's own L2 term), gradient clipping, ``adamw``, and a learning-rate scheduler together
with the two-optimiser ``adam``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fusionrec.errors import ConfigError
from fusionrec.training.config import TrainConfig

_DENSE = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad}


class Optimizers:
    """Optimisers over disjoint parameters, stepped, zeroed and checkpointed as one."""

    def __init__(self, *optimizers: torch.optim.Optimizer) -> None:
        self.optimizers = optimizers

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state.get("optimizers", ())) != len(self.optimizers):
            raise ConfigError(
                "the checkpoint's optimiser does not match this run's (was train.sparse_embeddings "
                "or train.optimizer changed?)"
            )
        for opt, part in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(part)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer | Optimizers:
    """The optimiser ``cfg`` asks for over the trainable parameters of ``model``; with
    ``cfg.sparse_embeddings``, the model's lookup-only embeddings are switched to sparse gradients."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not cfg.sparse_embeddings:
        return _DENSE[cfg.optimizer](params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    tables = _sparse_tables(model, cfg)
    for table in tables:
        table.sparse = True
    # the checks are off by default; saying so explicitly stops PyTorch warning about it at every run
    torch.sparse.check_sparse_tensor_invariants.disable()
    sparse_ids = {id(t.weight) for t in tables}
    sparse = [p for p in params if id(p) in sparse_ids]
    dense = [p for p in params if id(p) not in sparse_ids]
    if cfg.optimizer in ("sgd", "adagrad"):
        return _DENSE[cfg.optimizer](params, lr=cfg.lr)
    if not dense:
        return torch.optim.SparseAdam(sparse, lr=cfg.lr)
    if cfg.scheduler != "none":
        raise ConfigError(
            "train.scheduler is not available with train.sparse_embeddings and adam (two optimisers: "
            "SparseAdam for the tables, Adam for the rest); use sgd or adagrad, or no scheduler"
        )
    return Optimizers(torch.optim.SparseAdam(sparse, lr=cfg.lr), torch.optim.Adam(dense, lr=cfg.lr))


def _sparse_tables(model: nn.Module, cfg: TrainConfig) -> list[nn.Embedding]:
    lookup = getattr(model, "lookup_embeddings", None)
    tables = [t for t in (lookup() if lookup is not None else ()) if t.weight.requires_grad]
    name = type(model).__name__
    if not tables:
        raise ConfigError(
            f"train.sparse_embeddings: {name} computes with whole embedding tables (or has none), so "
            "their gradients are dense anyway; leave it off for this model (SASRec, BERT4Rec, "
            "NOVA-BERT and MARank read theirs row by row only with a sampled model.loss)"
        )
    problems = []
    if cfg.weight_decay:
        problems.append("train.weight_decay (use the model's L2 term, e.g. model.reg_weight)")
    if cfg.grad_clip is not None:
        problems.append("train.grad_clip")
    if cfg.optimizer == "adamw":
        problems.append("train.optimizer=adamw (use adam, sgd or adagrad)")
    if problems:
        raise ConfigError(
            "train.sparse_embeddings cannot be combined with "
            + ", ".join(problems)
            + ": PyTorch does not apply them to sparse gradients"
        )
    return tables
