"""Pairwise compatibility: an outfit scores the mean of its distinct item pairs, padding excluded."""

import torch
from family_modules import family as load_family

from fusionrec.models.outfit.pairwise_compat import PairwiseCompat, PairwiseCompatConfig


def test_outfit_score_is_the_mean_of_pair_scores():
    torch.manual_seed(0)
    model = PairwiseCompat.from_dataset(
        PairwiseCompatConfig(name="pairwise_compat", dim=8, hidden_dim=8), load_family("outfit").tiny_dataset()
    )
    items = torch.tensor([[1, 20, 40, 0]])
    mask = torch.tensor([[True, True, True, False]])
    with torch.no_grad():
        z = model.f(model.items_encoder(torch.tensor([1, 20, 40])))
        pairs = [float(z[i] @ z[j]) * model.scale for i, j in ((0, 1), (0, 2), (1, 2))]
        score = float(model.outfit_scores(items, mask)[0])
        match = model.match_scores(torch.tensor([1]), torch.tensor([[20, 40]]))
    assert abs(score - sum(pairs) / 3) < 1e-5
    torch.testing.assert_close(match, torch.tensor([[pairs[0], pairs[1]]]))
