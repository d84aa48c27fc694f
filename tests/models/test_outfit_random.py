"""Random outfit scores: fixed per item and seed, and an outfit scores the mean of its items'."""

import torch

from fusionrec.models.outfit.outfit_random import OutfitRandom


def test_scores_are_fixed_per_seed_and_averaged():
    a, b, c = OutfitRandom(10, seed=1), OutfitRandom(10, seed=1), OutfitRandom(10, seed=2)
    assert torch.equal(a.noise, b.noise) and not torch.equal(a.noise, c.noise)
    items = torch.tensor([[1, 2, 0]])
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(a.outfit_scores(items, mask), (a.noise[1:2] + a.noise[2:3]) / 2)
