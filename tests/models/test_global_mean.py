"""Global mean: every prediction is the training mean; nothing to train."""

from __future__ import annotations

import pytest
import torch

from fusionrec.data.builtin.synthetic_reviews import SyntheticReviewOptions, load_synthetic_reviews
from fusionrec.data.config import SplitConfig
from fusionrec.data.reviews import RatingBatch
from fusionrec.data.splits import apply_split
from fusionrec.errors import FusionrecError
from fusionrec.models.rating.global_mean import GlobalMean, GlobalMeanConfig


def test_predicts_the_training_mean_and_refuses_to_train():
    reviews = apply_split(
        load_synthetic_reviews(SyntheticReviewOptions(num_users=20, num_items=10, num_reviews=100)), SplitConfig()
    )
    net = GlobalMean.from_dataset(GlobalMeanConfig(), reviews)
    inter = reviews.interactions
    mean = inter["rating"][inter["split"] == 0].mean()
    batch = RatingBatch(torch.tensor([0, 1, 2]), torch.tensor([0, 0, 1]), torch.zeros(3))
    torch.testing.assert_close(net.predict(batch), torch.full((3,), float(mean)))
    assert not list(net.parameters())
    with pytest.raises(FusionrecError, match="no trainable parameters"):
        net.loss(batch)
