"""Bi-LSTM outfit model: the backward pass reads each outfit reversed up to its length; the forward prediction of
a slot reads only the slots before it."""

import importlib.util
import sys
from pathlib import Path

import torch

from fusionrec.models.outfit.bilstm_outfit import BiLSTMOutfit, BiLSTMOutfitConfig, reverse_padded


def _family():
    if "outfit_family" not in sys.modules:
        spec = importlib.util.spec_from_file_location("outfit_family", Path(__file__).parent / "families" / "outfit.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["outfit_family"] = module
    return sys.modules["outfit_family"]


def test_reverse_padded_keeps_padding_at_the_end():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])[..., None]
    out = reverse_padded(x, torch.tensor([3, 2]))[..., 0]
    assert out.tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]


def test_forward_predictions_are_causal():
    torch.manual_seed(0)
    model = BiLSTMOutfit.from_dataset(
        BiLSTMOutfitConfig(name="bilstm_outfit", dim=8, hidden_dim=8), _family().tiny_dataset()
    )
    mask = torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        a, _, _, _ = model._states(torch.tensor([[1, 20, 40, 60]]), mask)
        b, _, _, _ = model._states(torch.tensor([[1, 20, 40, 61]]), mask)
    torch.testing.assert_close(a, b)  # the last slot is predicted, never read, by the forward LSTM
