"""NRPA: personalised word- and review-level attention whose weights sum to 1 over real words and
reviews (padding exactly 0), queries from the ID, an FM on top."""

from __future__ import annotations

import torch

from fusionrec.data.reviews import RatingBatch
from fusionrec.models.rating.nrpa import NRPA, NRPAConfig
from fusionrec.nn.fusion.personalized_attention import PersonalizedAttention

CONFIG = NRPAConfig(word_dim=8, num_filters=8, id_dim=8, attention_dim=8, dropout=0.0)


def model():
    torch.manual_seed(0)
    tables = tuple(torch.nn.Embedding(30, 8, padding_idx=0) for _ in range(2))
    return NRPA(num_users=5, num_items=4, mean=3.0, config=CONFIG, tables=tables).eval()


def padded_batch():
    """Two pairs; documents of 3 review slots x 6 words with padded words, a padded review slot, and
    (pair 1) a user document with no review at all."""
    torch.manual_seed(1)
    words = torch.randint(1, 30, (2, 3, 6))
    words[:, :, 4:] = 0  # padded words at the end of every review
    words[0, 1, 2:] = 0  # a short review
    words[:, 2] = 0  # an empty slot
    user_words = words.clone()
    user_words[1] = 0  # a user without training reviews
    other = torch.tensor([[0, 1, -1], [2, 3, -1]])
    return RatingBatch(torch.tensor([0, 1]), torch.tensor([2, 3]), torch.zeros(2), user_words, other, words, other)


def test_attention_sums_to_one_over_words_and_reviews_with_padding_masked():
    batch = padded_batch()
    with torch.no_grad():
        weights = model().attention(batch)
    for side in ("user", "item"):
        words = batch.user_words if side == "user" else batch.item_words
        word_w, review_w = weights[f"{side}_words"], weights[f"{side}_reviews"]
        real_words = words != 0
        real_reviews = real_words.any(-1)
        assert torch.all(word_w[~real_words] == 0) and torch.all(review_w[~real_reviews] == 0)  # padding: exactly 0
        sums = word_w.sum(-1)
        torch.testing.assert_close(sums[real_reviews], torch.ones_like(sums[real_reviews]))
        review_sums = review_w.sum(-1)
        has_any = real_reviews.any(-1)
        torch.testing.assert_close(review_sums[has_any], torch.ones_like(review_sums[has_any]))
        assert torch.all(review_sums[~has_any] == 0)  # a document with no review attends to nothing (no NaN)
    assert torch.isfinite(model().predict(batch)).all()


def test_attention_is_personalised_by_the_id():
    batch = padded_batch()
    other_users = RatingBatch(
        torch.tensor([3, 4]),
        batch.items,
        batch.ratings,
        batch.item_words,
        batch.user_review_items,
        batch.item_words,
        batch.item_review_users,
    )
    same_users = RatingBatch(
        torch.tensor([0, 1]),
        batch.items,
        batch.ratings,
        batch.item_words,
        batch.user_review_items,
        batch.item_words,
        batch.item_review_users,
    )
    net = model()
    with torch.no_grad():
        a, b = net.attention(same_users), net.attention(other_users)
    # same words, another user: other word and review weights (the query comes from the user's ID)
    assert not torch.allclose(a["user_words"], b["user_words"])
    assert not torch.allclose(a["user_reviews"][:1], b["user_reviews"][:1])
    # the item side reads the same item's ID: unchanged
    torch.testing.assert_close(a["item_words"], b["item_words"])


def test_the_shared_block_is_the_papers_bilinear_score():
    torch.manual_seed(0)
    block = PersonalizedAttention(4, 3, hidden_dim=2)
    x, e = torch.randn(1, 5, 4), torch.randn(1, 3)
    q = torch.relu(block.query_proj(e))  # q = ReLU(W e + b)
    expected = torch.softmax((block.item_proj(x) * q[:, None]).sum(-1), -1)  # softmax(q^T A c)
    torch.testing.assert_close(block(x, e).weights, expected)


def test_prediction_is_the_fm_of_the_two_vectors():
    net, batch = model(), padded_batch()
    with torch.no_grad():
        u = net.user_side(batch.users, batch.user_words)[0]
        i = net.item_side(batch.items, batch.item_words)[0]
        x = torch.cat([u, i], -1)
        v = net.fm.factors
        by_hand = net.fm.linear(x).squeeze(-1) + sum(
            (v[a] @ v[b]) * x[:, a] * x[:, b] for a in range(x.shape[1]) for b in range(a + 1, x.shape[1])
        )
        torch.testing.assert_close(net.predict(batch), by_hand, rtol=1e-4, atol=1e-5)
