import torch

from fusionrec.data.batches import UserBatch
from fusionrec.models.topk.mario import MARIO, MARIOConfig
from fusionrec.tasks.topk.sampler import PairSampler


def build(dataset, **overrides):
    torch.manual_seed(0)
    return MARIO.from_dataset(MARIOConfig(embedding_dim=8, **overrides), dataset)


def test_modality_weights_are_per_pair_sum_to_one_and_skip_missing_modalities(tiny_dataset):
    model = build(tiny_dataset)
    assert model.modality_names == ["visual", "text", "interaction"]
    visual = torch.from_numpy(tiny_dataset.modalities["visual"].mask.copy())
    item = int(torch.nonzero(~visual)[0])
    users = torch.arange(6)
    items = torch.tensor([item, item, item, 0, 1, 2])
    with torch.no_grad():
        w = model.explain(users, items)["modality_weights"]
    assert w.shape == (6, 3)
    torch.testing.assert_close(w.sum(-1), torch.ones(6))
    assert torch.all(w[:3, 0] == 0)  # the item has no visual features
    assert not torch.allclose(w[0], w[1])  # the same item, other users: other weights (u ⊙ v^m attention)


def test_scores_use_each_pairs_personalised_item_embedding(tiny_dataset):
    model = build(tiny_dataset).eval()
    users, items = torch.tensor([0, 3, 7]), torch.tensor([5, 1, 9, 2])
    with torch.no_grad():
        scores = model.score(UserBatch(users, items))
        pu, pi = users.repeat_interleave(4), items.repeat(3)
        fused, _ = model.personalise(pu, pi)
        expected = (model.user_emb(pu) * fused).sum(-1).view(3, 4)
    torch.testing.assert_close(scores, expected)


def test_preservation_loss_decreases_with_training(tiny_dataset):
    model = build(tiny_dataset, preservation_weight=1.0)
    sampler = PairSampler(tiny_dataset.matrix("train"), 64, 1, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    batch = next(sampler.epoch(1))
    first = float(model.loss(batch).parts["mp"])
    for epoch in range(1, 6):
        for batch in sampler.epoch(epoch):
            opt.zero_grad()
            model.loss(batch).loss.backward()
            opt.step()
    last = float(model.loss(next(sampler.epoch(1))).parts["mp"])
    assert last < 0.8 * first


def test_preservation_decoders_reconstruct_present_modalities_only(tiny_dataset):
    model = build(tiny_dataset)
    visual = torch.from_numpy(tiny_dataset.modalities["visual"].mask.copy())
    text = torch.from_numpy(tiny_dataset.modalities["text"].mask.copy())
    only_text = torch.nonzero(~visual & text).ravel()[:3]
    assert len(only_text)
    fused = torch.randn(len(only_text), 8)
    before = model.preservation_loss(fused, only_text)
    with torch.no_grad():
        model.decoders["visual"][2].bias.add_(100.0)  # wrecks the visual decoder
    torch.testing.assert_close(model.preservation_loss(fused, only_text), before)  # no visual rows, no visual error
    with_visual = torch.nonzero(visual).ravel()[:3]
    assert model.preservation_loss(fused[: len(with_visual)], with_visual) > 100


def test_fusion_ablation_without_pairwise_block_scores_consistently(tiny_dataset):
    model = build(tiny_dataset, fusion="gated").eval()
    users, items = torch.tensor([0, 3]), torch.tensor([5, 1, 9])
    with torch.no_grad():
        full = model.score(UserBatch(users))
        subset = model.score(UserBatch(users, items))
        fused, weights = model.personalise(users.repeat_interleave(3), items.repeat(2))
    torch.testing.assert_close(subset, full[:, items])
    torch.testing.assert_close(subset, (model.user_emb(users.repeat_interleave(3)) * fused).sum(-1).view(2, 3))
    assert weights.shape == (6, 3)  # gates per modality
