"""Loads ``tests/models/families/ctr.py`` (the ctr family's tiny data and task) for the ctr tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

_PATH = Path(__file__).parents[1] / "models" / "families" / "ctr.py"
_spec = importlib.util.spec_from_file_location("ctr_family_for_tests", _PATH)
assert _spec is not None and _spec.loader is not None
family = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(family)


def built(name, dataset=None, task_options=None, **config):
    """(model, task) of a registered ctr model on the tiny set, seeded, with the tiny config + ``config``."""
    from fusionrec.registry import MODELS

    entry = MODELS.entry(name)
    model_config = entry.config(name=name, **{**family.TINY[name], **config})
    dataset, task = family.tiny_task(name, model_config, dataset, **(task_options or {}))
    torch.manual_seed(0)
    return entry.obj.from_dataset(model_config, dataset), task
