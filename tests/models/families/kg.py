"""The kg family's tiny data and task for the shared model contract (and for tests/kg/).

The tiny set is ``synthetic-kg`` with 60 entities, 3 relations and 4 clusters; its text and visual
tokens carry the planted cluster (missing for some entities).
"""

from __future__ import annotations

from fusionrec.data import load_dataset
from fusionrec.tasks.kg.task import KGTask, KGTaskConfig

OPTIONS = {
    "num_entities": 60,
    "num_relations": 3,
    "num_clusters": 4,
    "triples_per_entity": 4,
    "text_tokens": 3,
    "text_dim": 6,
    "visual_tokens": 3,
    "visual_dim": 5,
    "missing_rate": 0.2,
    "seed": 2,
}

TINY = {
    "transe": {"dim": 8},
    "distmult": {"dim": 8},
    "complex": {"dim": 8},
    "rotate": {"dim": 8},
    "mkgformer": {"dim": 8, "num_heads": 2, "num_layers": 1, "num_fusion_layers": 1, "dropout": 0.0},
}


def tiny_dataset(**options):
    return load_dataset("synthetic-kg", options={**OPTIONS, **options})


def tiny_task(name, model_config, dataset=None, **task):
    from fusionrec.training.config import TrainConfig

    dataset = tiny_dataset() if dataset is None else dataset
    config = KGTaskConfig(**{"num_negatives": 4, **task})
    return dataset, KGTask.build(config, TrainConfig(batch_size=32, seed=0), dataset, model_config)
