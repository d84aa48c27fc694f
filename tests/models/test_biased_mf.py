"""Biased MF: μ + b_u + b_i + <p_u, q_i>, μ the training mean."""

from __future__ import annotations

import torch

from fusionrec.data.reviews import RatingBatch
from fusionrec.models.rating.biased_mf import BiasedMF


def test_prediction_is_mean_plus_biases_plus_dot_product():
    torch.manual_seed(0)
    net = BiasedMF(3, 4, mean=3.7, embedding_dim=5, reg_weight=0.1, init_std=0.5)
    with torch.no_grad():
        net.user_bias.weight.normal_()
        net.item_bias.weight.normal_()
    b = RatingBatch(torch.tensor([0, 2]), torch.tensor([3, 1]), torch.tensor([4.0, 2.0]))
    expected = torch.stack(
        [
            3.7
            + net.user_bias.weight[u, 0]
            + net.item_bias.weight[i, 0]
            + net.user_factors.weight[u] @ net.item_factors.weight[i]
            for u, i in [(0, 3), (2, 1)]
        ]
    )
    torch.testing.assert_close(net.predict(b), expected)
    out = net.loss(b)
    torch.testing.assert_close(out.parts["mse"], torch.mean((expected - b.ratings) ** 2).detach())
    assert out.parts["reg"] > 0
