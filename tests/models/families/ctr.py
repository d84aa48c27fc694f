"""The ctr family's tiny data and task for the shared model contract (and for tests/ctr/).

The tiny set is ``ctr-synthetic`` (60 users, 80 items, 1,500 rows) with every field kind: the ids,
a categorical user field, a numeric one (normalised) and the same bucketized, a multi-valued item
field, a token sequence, the image vector (missing for some items) and the text vector.
"""

from __future__ import annotations

from fusionrec.data import load_dataset
from fusionrec.tasks.ctr.task import CTRTask, CTRTaskConfig

OPTIONS = {"num_users": 60, "num_items": 80, "num_rows": 1500, "image_dim": 6, "text_dim": 5, "missing_image_rate": 0.2}

FIELDS = {
    "user": {"source": "user_id"},
    "item": {"source": "item_id"},
    "segment": {"source": "user"},
    "age": {"source": "user", "kind": "numeric"},
    "age_bucket": {"source": "user", "column": "age", "kind": "numeric", "transform": "bucketize", "num_buckets": 4},
    "tags": {"source": "item", "kind": "multi", "max_length": 3},
    "title": {"source": "item", "kind": "tokens", "max_length": 4},
    "image": {"source": "modality"},
    "text": {"source": "modality"},
}

TINY = {
    "lr": {},
    "fm": {"embedding_dim": 8},
    "deepfm": {"embedding_dim": 8, "hidden_dims": (16,)},
    "deepfm_content": {"embedding_dim": 8, "hidden_dims": (16,)},
    "dcn_v2": {"embedding_dim": 8, "num_cross_layers": 2, "hidden_dims": (16,)},
    "autoint": {"embedding_dim": 8, "attention_dim": 8, "num_layers": 2},
    "cmbf": {
        "embedding_dim": 8,
        "image_tokens": 4,
        "num_tower_layers": 1,
        "cross_modal_layers": 1,
        "hidden_dims": (16,),
    },
}


def tiny_dataset(**options):
    dataset = load_dataset("ctr-synthetic", options={**OPTIONS, **options})
    items = dataset.items
    category = items["category"].astype(str)
    items["tags"] = category + "|" + items["cluster"].astype(str).radd("k") + "|common"
    items["title"] = "The " + category + " movie of " + items["item"].astype(str)
    return dataset


def tiny_task(name, model_config, dataset=None, **task):
    from fusionrec.training.config import TrainConfig

    dataset = tiny_dataset() if dataset is None else dataset
    config = CTRTaskConfig(**{"fields": FIELDS, **task})
    return dataset, CTRTask.build(config, TrainConfig(batch_size=64, seed=0), dataset, model_config)
