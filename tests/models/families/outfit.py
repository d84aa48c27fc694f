"""The outfit family's tiny data and task for the shared model contract (and for tests/outfit/).

The tiny set is ``outfit-synthetic`` with 3 styles x 5 items per category and 60 outfits: items carry a
``visual`` region grid and a name, outfits a planted style; 30 synthetic users and top-bottom comments.
"""

from __future__ import annotations

from fusionrec.data import load_dataset
from fusionrec.tasks.outfit.task import OutfitTask, OutfitTaskConfig

OPTIONS = {
    "num_styles": 3,
    "items_per_style": 5,
    "num_outfits": 60,
    "regions": 3,
    "visual_dim": 6,
    "num_users": 30,
    "history_len": 4,
    "records_per_user": 2,
    "seed": 1,
}

_SMALL = {"dim": 8}
TINY = {
    "fom": {**_SMALL, "num_heads": 2, "num_layers": 1, "dropout": 0.0},
    "pog": {**_SMALL, "num_heads": 2, "num_layers": 1, "per_layers": 1, "dropout": 0.0, "pretrain_epochs": 1},
    "nor": {**_SMALL, "hidden_dim": 8, "vocab_size": 60, "dropout": 0.0},
    "pairwise_compat": {**_SMALL, "hidden_dim": 8},
    "bilstm_outfit": {**_SMALL, "hidden_dim": 8},
}
CLOSED_FORM = ("outfit_pop", "outfit_random")

_CACHE: dict = {}


def tiny_dataset(**options):
    key = tuple(sorted(options.items()))
    if key not in _CACHE:
        _CACHE[key] = load_dataset("outfit-synthetic", options={**OPTIONS, **options})
    return _CACHE[key]


def tiny_task(name, model_config, dataset=None, **task):
    from fusionrec.training.config import TrainConfig

    dataset = tiny_dataset() if dataset is None else dataset
    config = OutfitTaskConfig(**{"candidates": 10, **task})
    return dataset, OutfitTask.build(config, TrainConfig(batch_size=16, seed=0), dataset, model_config)
