"""The rating family for the shared model contract: a tiny synthetic review set and its task."""

from __future__ import annotations

from fusionrec.data.builtin.synthetic_reviews import SyntheticReviewOptions, load_synthetic_reviews
from fusionrec.data.config import SplitConfig
from fusionrec.data.splits import apply_split
from fusionrec.tasks.rating import RatingTask, RatingTaskConfig
from fusionrec.training.config import TrainConfig

REVIEW = {"word_dim": 8, "num_filters": 8, "max_reviews": 4, "max_words": 12, "dropout": 0.0}
TINY = {
    "global_mean": {},
    "biased_mf": {"embedding_dim": 8},
    "deepconn": {**REVIEW, "latent_dim": 8},
    "narre": {**REVIEW, "latent_dim": 8, "id_dim": 8, "attention_dim": 8},
    "nrpa": {**REVIEW, "id_dim": 8, "attention_dim": 8},
}
CLOSED_FORM = {"global_mean"}  # the training mean: no trainable parameters

_DATA = {}


def tiny_task(name, model_config):
    if "data" not in _DATA:
        options = SyntheticReviewOptions(num_users=30, num_items=20, num_reviews=200, review_length=10)
        _DATA["data"] = apply_split(load_synthetic_reviews(options), SplitConfig(seed=0))
    dataset = _DATA["data"]
    return dataset, RatingTask.build(RatingTaskConfig(), TrainConfig(batch_size=32, seed=0), dataset, model_config)
