"""NOR: the mutual attention gives padding no weight and ignores what padding holds; the joint loss has both parts;
comments are words of the training comments' vocabulary."""

import torch
from family_modules import family as load_family

from fusionrec.models.outfit.nor import NOR, MutualAttention, NORConfig


def test_mutual_attention_masks_padding():
    torch.manual_seed(0)
    attend = MutualAttention(4, 6)
    parts = torch.randn(2, 5, 4)
    mask = torch.tensor([[True, True, False, False, False], [True, True, True, True, False]])
    guide = torch.randn(2, 4)
    pooled, weights = attend(parts, mask, guide)
    assert torch.all(weights[~mask] == 0)
    torch.testing.assert_close(weights.sum(1), torch.ones(2))
    noisy = parts.clone()
    noisy[~mask] = 1e3 * torch.randn(int((~mask).sum()), 4)
    pooled_noisy, _ = attend(noisy, mask, guide)
    torch.testing.assert_close(pooled, pooled_noisy)


def test_name_word_parts_mask_padding_words():
    family = load_family("outfit")
    dataset = family.tiny_dataset()
    torch.manual_seed(0)
    model = NOR.from_dataset(NORConfig(name="nor", dim=8, hidden_dim=8, modalities=(), dropout=0.0), dataset).eval()
    tops, bottoms = torch.tensor([0, 1]), torch.tensor([2, 3])
    p = model.pool(tops, bottoms)
    assert p["parts_t"].shape[1] == model.items_encoder.word_ids.shape[1]  # parts are the name's words here
    assert torch.all(p["a_t"][~p["mask_t"]] == 0) and torch.all(p["a_b"][~p["mask_b"]] == 0)
    details = model.mutual_attention(0, 2)
    assert set(details) >= {"weights", "match", "comment"}
    assert all(not label.startswith("region") for label in details["weights"]["top parts (mutual attention)"])


def test_joint_loss_and_generated_comments():
    family = load_family("outfit")
    config = NORConfig(name="nor", **family.TINY["nor"])
    dataset, task = family.tiny_task("nor", config)
    torch.manual_seed(0)
    model = NOR.from_dataset(config, dataset)
    out = model.loss(next(iter(task.train_batches(1))))
    torch.testing.assert_close(out.loss, out.parts["match"] + config.comment_weight * out.parts["comment"])
    comments = model.eval().generate_comments(torch.tensor([0, 1]), torch.tensor([2, 3]))
    known = set(model.vocabulary.tokens)
    assert len(comments) == 2 and all(set(c.split()) <= known for c in comments)
