"""FOM: the masked item cannot see itself; an outfit is a set (order does not matter); FITB picks by the blank."""

import torch
from family_modules import family as load_family

from fusionrec.models.outfit.fom import FOM, FOMConfig


def model():
    torch.manual_seed(0)
    return FOM.from_dataset(
        FOMConfig(name="fom", dim=8, num_layers=2, dropout=0.0), load_family("outfit").tiny_dataset()
    ).eval()


def test_the_masked_item_cannot_see_itself():
    fom = model()
    items = torch.tensor([[1, 20, 40, 60], [2, 21, 41, 61]])
    mask = torch.ones_like(items, dtype=torch.bool)
    blank = torch.tensor([1, 3])
    candidates = torch.tensor([[5, 6, 7], [8, 9, 10]])
    with torch.no_grad():
        before = fom.fill_scores(items, mask, blank, candidates)
        other = items.clone()
        other[0, 1], other[1, 3] = 33, 70  # another item in the blank slot
        after = fom.fill_scores(other, mask, blank, candidates)
        moved = items.clone()
        moved[0, 2] = 44  # another item in a visible slot
        changed = fom.fill_scores(moved, mask, blank, candidates)
    torch.testing.assert_close(before, after)
    assert not torch.allclose(before[0], changed[0])


def test_an_outfit_is_a_set():
    fom = model()
    items = torch.tensor([[1, 20, 40, 60]])
    mask = torch.ones_like(items, dtype=torch.bool)
    with torch.no_grad():
        a = fom.outfit_scores(items, mask)
        b = fom.outfit_scores(items[:, [2, 0, 3, 1]], mask)
        padded = fom.outfit_scores(torch.tensor([[1, 20, 40, 60, 0]]), torch.tensor([[True] * 4 + [False]]))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, padded)


def test_compatibility_is_the_mean_of_each_items_fill_score():
    fom = model()
    items = torch.tensor([[1, 20, 40]])
    mask = torch.ones_like(items, dtype=torch.bool)
    with torch.no_grad():
        own = [fom.fill_scores(items, mask, torch.tensor([k]), items[:, k : k + 1])[0, 0] for k in range(3)]
        torch.testing.assert_close(fom.outfit_scores(items, mask)[0], torch.stack(own).mean())


def test_blank_attention_is_a_distribution_over_the_outfit():
    fom = model()
    items = torch.tensor([[1, 20, 40, 0]])
    mask = torch.tensor([[True, True, True, False]])
    with torch.no_grad():
        weights = fom.blank_attention(items, mask, torch.tensor([0]))
    assert weights.shape == (1, 4) and float(weights[0, 3]) == 0.0
    torch.testing.assert_close(weights.sum(1), torch.ones(1))
