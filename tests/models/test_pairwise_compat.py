"""Pairwise compatibility: an outfit scores the mean of its distinct item pairs, padding excluded."""

import importlib.util
import sys
from pathlib import Path

import torch

from fusionrec.models.outfit.pairwise_compat import PairwiseCompat, PairwiseCompatConfig


def _family():
    if "outfit_family" not in sys.modules:
        spec = importlib.util.spec_from_file_location("outfit_family", Path(__file__).parent / "families" / "outfit.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["outfit_family"] = module
    return sys.modules["outfit_family"]


def test_outfit_score_is_the_mean_of_pair_scores():
    torch.manual_seed(0)
    model = PairwiseCompat.from_dataset(
        PairwiseCompatConfig(name="pairwise_compat", dim=8, hidden_dim=8), _family().tiny_dataset()
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
