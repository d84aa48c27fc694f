"""NARRE: review-level attention from review text and the ID of each review's other side."""

from __future__ import annotations

import torch

from fusionrec.data.reviews import RatingBatch
from fusionrec.models.rating.narre import NARRE, NARREConfig

CONFIG = NARREConfig(word_dim=8, num_filters=8, latent_dim=8, id_dim=8, attention_dim=8, dropout=0.0)


def model():
    torch.manual_seed(0)
    tables = tuple(torch.nn.Embedding(30, 8, padding_idx=0) for _ in range(2))
    return NARRE(num_users=6, num_items=6, mean=3.5, config=CONFIG, tables=tables).eval()


def batch(other):
    torch.manual_seed(2)
    words = torch.randint(1, 30, (1, 3, 5))
    words[0, 2] = 0
    return RatingBatch(torch.tensor([0]), torch.tensor([1]), torch.zeros(1), words, other, words, other)


def test_review_weights_sum_to_one_over_real_reviews():
    with torch.no_grad():
        weights = model().attention(batch(torch.tensor([[1, 2, -1]])))
    for w in weights.values():
        assert w[0, 2] == 0
        torch.testing.assert_close(w.sum(-1), torch.ones(1))


def test_review_usefulness_depends_on_who_the_review_is_about():
    net = model()
    with torch.no_grad():
        a = net.attention(batch(torch.tensor([[1, 2, -1]])))["user_reviews"]
        b = net.attention(batch(torch.tensor([[3, 2, -1]])))["user_reviews"]  # same text, first review on item 3
    assert not torch.allclose(a, b)


def test_without_text_features_it_is_biased_mf_with_mu():
    net = model()
    with torch.no_grad():
        for p in (net.user_side.out, net.item_side.out):
            p.weight.zero_()
            p.bias.zero_()
        b = batch(torch.tensor([[1, 2, -1]]))
        expected = (
            net.w1(net.user_ids(b.users) * net.item_ids(b.items)).squeeze(-1)
            + net.user_bias(b.users).squeeze(-1)
            + net.item_bias(b.items).squeeze(-1)
            + 3.5
        )
        torch.testing.assert_close(net.predict(b), expected)
