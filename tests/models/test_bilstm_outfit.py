"""Bi-LSTM outfit model: the backward pass reads each outfit reversed up to its length; the forward prediction of
a slot reads only the slots before it."""

import torch
from family_modules import family as load_family

from fusionrec.models.outfit.bilstm_outfit import BiLSTMOutfit, BiLSTMOutfitConfig, reverse_padded


def test_reverse_padded_keeps_padding_at_the_end():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])[..., None]
    out = reverse_padded(x, torch.tensor([3, 2]))[..., 0]
    assert out.tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]


def test_forward_predictions_are_causal():
    torch.manual_seed(0)
    model = BiLSTMOutfit.from_dataset(
        BiLSTMOutfitConfig(name="bilstm_outfit", dim=8, hidden_dim=8), load_family("outfit").tiny_dataset()
    )
    mask = torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        a, _, _, _ = model._states(torch.tensor([[1, 20, 40, 60]]), mask)
        b, _, _, _ = model._states(torch.tensor([[1, 20, 40, 61]]), mask)
    torch.testing.assert_close(a, b)  # the last slot is predicted, never read, by the forward LSTM
