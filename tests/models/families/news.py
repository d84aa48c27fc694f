"""The news family's tiny data and task for the shared model contract (and for tests/news/).

The tiny set is ``news-synthetic`` with 40 users, 60 news, 300 impressions of 6 candidates, 3x3
image regions of dim 8 (missing for some news) and 6-word titles.
"""

from __future__ import annotations

from fusionrec.data import load_dataset
from fusionrec.tasks.news.task import NewsTask, NewsTaskConfig

OPTIONS = {
    "num_users": 40,
    "num_news": 60,
    "num_impressions": 300,
    "candidates": 6,
    "history_length": 5,
    "num_topics": 3,
    "num_clusters": 3,
    "title_length": 6,
    "words_per_topic": 5,
    "num_regions": 9,
    "region_dim": 8,
    "missing_image_rate": 0.2,
    "seed": 1,
}

TINY = {
    "nrms": {"dim": 8, "num_heads": 2, "attention_dim": 8, "dropout": 0.0},
    "mm_rec": {"dim": 8, "num_heads": 2, "attention_dim": 8, "dropout": 0.0},
    "vlsnr": {"dim": 8, "num_heads": 2, "attention_dim": 8, "dropout": 0.0, "max_positions": 8},
}


def tiny_dataset(**options):
    return load_dataset("news-synthetic", options={**OPTIONS, **options})


def tiny_task(name, model_config, dataset=None, **task):
    from fusionrec.training.config import TrainConfig

    dataset = tiny_dataset() if dataset is None else dataset
    config = NewsTaskConfig(**{"npratio": 3, "max_history": 6, "title_length": 6, **task})
    return dataset, NewsTask.build(config, TrainConfig(batch_size=32, seed=0), dataset, model_config)
