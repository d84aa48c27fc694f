"""Shared helpers of the news tests: the family module and a one-impression batch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from fusionrec.models.news.common import NewsBatch
from fusionrec.registry import MODELS

_spec = importlib.util.spec_from_file_location(
    "news_family", Path(__file__).parents[1] / "models" / "families" / "news.py"
)
family = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(family)


def build(name, **overrides):
    """(dataset, task, model) on the family's tiny set."""
    config = MODELS.entry(name).config(name=name, **{**family.TINY[name], **overrides})
    dataset, task = family.tiny_task(name, config)
    torch.manual_seed(0)
    return dataset, task, MODELS.get(name).from_dataset(config, dataset).eval()


def batch(history, candidates, mask=None, pad=None):
    history = torch.tensor([history])
    mask = torch.ones_like(history, dtype=torch.bool) if mask is None else torch.tensor([mask])
    candidates = torch.tensor([candidates])
    return NewsBatch(
        torch.zeros(1, dtype=torch.long),
        history,
        mask,
        candidates,
        torch.ones_like(candidates, dtype=torch.bool),
        torch.zeros(candidates.shape),
    )
