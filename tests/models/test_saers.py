"""SAERS's defining mechanisms: a semantic extraction network whose per-attribute region attention is
a distribution over the valid regions and learns, from image-level labels alone, where an attribute is;
the user's fine-grained preference attention over the attributes; global + attribute spaces under BPR."""

from __future__ import annotations

import torch

from fusionrec.data.batches import PairBatch, UserBatch
from fusionrec.models.topk.saers import SAERS

NUM_USERS, NUM_ITEMS, R, F, K = 6, 8, 4, 5, 3


def make(labels: bool = True, seed: int = 0) -> SAERS:
    torch.manual_seed(seed)
    regions = torch.randn(NUM_ITEMS, R, F)
    mask = torch.ones(NUM_ITEMS, R, dtype=torch.bool)
    mask[1, 2:] = False
    y = (torch.rand(NUM_ITEMS, K) > 0.5).float() if labels else None
    return SAERS(
        NUM_USERS,
        regions,
        mask,
        y,
        torch.ones(NUM_ITEMS, dtype=torch.bool) if labels else None,
        ["a", "b", "c"] if labels else None,
        embedding_dim=8,
        semantic_dim=8,
        attention_dim=8,
        num_attributes=K,
    )


def test_attribute_region_maps_and_preference_attention_are_distributions():
    model = make()
    beta, f, logits = model.semantic_extraction(torch.tensor([0, 1]))
    assert beta.shape == (2, K, R) and f.shape == (2, K, 8) and logits is not None and logits.shape == (2, K)
    torch.testing.assert_close(beta.sum(-1), torch.ones(2, K))
    assert (beta[1, :, 2:] == 0).all()  # masked regions get zero
    explained = model.explain(torch.tensor([0, 3]), torch.tensor([1, 1]))
    torch.testing.assert_close(explained["attributes"].sum(-1), torch.ones(2))
    torch.testing.assert_close(explained["regions"].sum(-1), torch.ones(2))
    assert not torch.allclose(explained["attributes"][0], explained["attributes"][1])  # personalised
    assert (explained["regions"][:, 2:] == 0).all()


def test_score_is_global_plus_attribute_space_and_the_scorer_agrees():
    model = make()
    users, items = torch.tensor([0, 2]), torch.tensor([3, 5])
    score, _, alpha = model.pair_scores(users, items)
    _, f, _ = model.semantic_extraction(items)
    semantic = model.semantic_projection(torch.einsum("bk,bks->bs", alpha, f))
    expected = (
        (model.gamma_user(users) * model.gamma_item(items)).sum(-1)
        + (model.theta_user(users) * model.global_part(items)).sum(-1)
        + (model.semantic_user(users) * semantic).sum(-1)
        + model.item_bias[items]
    )
    torch.testing.assert_close(score, expected)
    model.score_budget = 10
    full = model.score(UserBatch(torch.tensor([0, 2, 5])))
    pairs = model.pair_scores(torch.tensor([0, 2, 5]).repeat_interleave(NUM_ITEMS), torch.arange(NUM_ITEMS).repeat(3))[
        0
    ]
    torch.testing.assert_close(full, pairs.view(3, NUM_ITEMS), rtol=1e-5, atol=1e-6)


def test_weak_attribute_labels_teach_the_extraction_network_where_each_attribute_is():
    """Each item shows attribute k (a fixed pattern) in a random region, or not at all; the network only
    sees which attributes an image has. After training, attribute k's map peaks on the region showing it."""
    g = torch.Generator().manual_seed(0)
    items, regions, dim, k = 96, 4, 6, 2
    x = 0.3 * torch.randn(items, regions, dim, generator=g)
    labels = torch.zeros(items, k)
    where = torch.full((items, k), -1)
    for i in range(items):
        slots = torch.randperm(regions, generator=g)[:k]
        for a in range(k):
            if torch.rand(1, generator=g) < 0.6:
                x[i, slots[a], a] += 3.0  # pattern of attribute a
                labels[i, a], where[i, a] = 1.0, slots[a]
    torch.manual_seed(0)
    model = SAERS(
        2,
        x,
        torch.ones(items, regions, dtype=torch.bool),
        labels,
        torch.ones(items, dtype=torch.bool),
        embedding_dim=4,
        semantic_dim=8,
        attention_dim=4,
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    all_items = torch.arange(items)
    for _ in range(150):
        _, _, logits = model.semantic_extraction(all_items)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    beta, _, _ = model.semantic_extraction(all_items)
    for a in range(k):
        shown = where[:, a] >= 0
        found = beta[shown, a].argmax(-1) == where[shown, a]
        assert found.float().mean() > 0.9


def test_attribute_loss_only_with_labels_and_bpr_trains_both_spaces():
    batch = PairBatch(torch.tensor([0, 1, 2]), torch.tensor([1, 3, 4]), torch.tensor([[0, 2], [5, 6], [7, 0]]))
    unlabelled = make(labels=False)
    assert unlabelled.classifier is None and "attribute" not in unlabelled.loss(batch).parts
    model = make()
    out = model.loss(batch)
    assert out.parts["attribute"] > 0
    out.loss.backward()
    for module in (model.locate, model.region_encoder, model.global_projection, model.semantic_projection):
        assert module.weight.grad is not None and module.weight.grad.abs().sum() > 0
