"""VECF's defining mechanisms: user-personalised attention over image regions (a distribution over the
valid regions, zero on masked ones) fused with the item ID embedding, and a review generator whose
attention is coupled to it, so that with λ > 0 the review loss moves the visual attention."""

from __future__ import annotations

import numpy as np
import torch

from fusionrec.data.batches import PairBatch, UserBatch
from fusionrec.models.topk.vecf import VECF

NUM_USERS, NUM_ITEMS, R, F = 5, 7, 4, 6


def make(review_weight: float = 0.0, seed: int = 0) -> VECF:
    torch.manual_seed(seed)
    regions = torch.randn(NUM_ITEMS, R, F)
    mask = torch.ones(NUM_ITEMS, R, dtype=torch.bool)
    mask[2, 1:] = False  # item 2 has one valid region
    mask[3, 0] = False
    keys = np.array([0 * NUM_ITEMS + 1, 1 * NUM_ITEMS + 3, 2 * NUM_ITEMS + 4])
    texts = ["love the red bag", "great shoes", "the bag is great"]
    return VECF(
        NUM_USERS,
        regions,
        mask,
        embedding_dim=8,
        attention_dim=8,
        reviews=(keys, texts),
        review_weight=review_weight,
        word_dim=8,
        decoder_dim=8,
    )


def test_attention_is_a_distribution_over_valid_regions_and_zero_on_masked_ones():
    model = make()
    users, items = torch.tensor([0, 1, 2, 4]), torch.tensor([2, 3, 0, 6])
    alpha = model.explain(users, items)["regions"]
    torch.testing.assert_close(alpha.sum(1), torch.ones(4))
    assert torch.equal(alpha[0], torch.tensor([1.0, 0.0, 0.0, 0.0]))
    assert alpha[1, 0] == 0 and (alpha[1, 1:] > 0).all()


def test_attention_is_personalised_and_the_visual_vector_is_fused_with_the_item_id():
    model = make()
    a = model.explain(torch.tensor([0]), torch.tensor([5]))["regions"]
    b = model.explain(torch.tensor([1]), torch.tensor([5]))["regions"]
    assert not torch.allclose(a, b)  # same item, different users: different attention
    users, items = torch.tensor([0, 3]), torch.tensor([5, 1])
    score, alpha, x = model.pair_scores(users, items)
    q = model.item_emb(items) + torch.einsum("br,brd->bd", alpha, x)
    torch.testing.assert_close(score, (model.user_emb(users) * q).sum(-1) + model.item_bias[items])


def test_full_ranking_scorer_agrees_with_pair_scores_in_small_blocks():
    model = make()
    model.score_budget = 17  # forces one user per block
    users = torch.tensor([0, 2, 4])
    full = model.score(UserBatch(users))
    pairs = model.pair_scores(users.repeat_interleave(NUM_ITEMS), torch.arange(NUM_ITEMS).repeat(3))[0]
    torch.testing.assert_close(full, pairs.view(3, NUM_ITEMS), rtol=1e-5, atol=1e-6)


def test_review_loss_moves_the_visual_attention_only_when_lambda_is_positive():
    batch = PairBatch(torch.tensor([0, 1, 2]), torch.tensor([1, 3, 4]), torch.tensor([[0], [0], [0]]))
    without = make(review_weight=0.0)
    assert without.decoder is None and "review_nll" not in without.loss(batch).parts  # VECF without reviews
    model = make(review_weight=1.0)
    out = model.loss(batch)
    assert out.parts["review_nll"] > 0
    model.zero_grad()
    model.review_nll(batch.users, batch.pos_items, *model.region_attention(batch.users, batch.pos_items)).backward()
    grads = [p.grad for p in model.attention.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)  # the review NLL reaches the visual attention
    # and training on reviews alone changes where the user looks
    before = model.explain(batch.users, batch.pos_items)["regions"].detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(20):
        opt.zero_grad()
        model.review_nll(batch.users, batch.pos_items, *model.region_attention(batch.users, batch.pos_items)).backward()
        opt.step()
    after = model.explain(batch.users, batch.pos_items)["regions"]
    assert (after - before).abs().max() > 1e-2


def test_pairs_without_a_review_add_no_review_loss_and_a_sentence_is_generated():
    model = make(review_weight=1.0)
    no_review = PairBatch(torch.tensor([3, 4]), torch.tensor([0, 0]), torch.tensor([[1], [2]]))
    assert "review_nll" not in model.loss(no_review).parts
    sentences = model.explain_text(torch.tensor([0, 1]), torch.tensor([1, 3]))
    assert sentences is not None and len(sentences) == 2 and all(isinstance(s, str) for s in sentences)
    assert make().explain_text(torch.tensor([0]), torch.tensor([1])) is None
