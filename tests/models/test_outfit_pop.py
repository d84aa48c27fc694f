"""Outfit popularity: an item's score is the mean log count of its name's words among training items."""

import math

import torch
from family_modules import family as load_family

from fusionrec.metrics.generation import words
from fusionrec.models.outfit.outfit_pop import OutfitPop, OutfitPopConfig


def test_word_popularity_by_hand():
    dataset = load_family("outfit").tiny_dataset()
    model = OutfitPop.from_dataset(OutfitPopConfig(name="outfit_pop"), dataset)
    outfits = dataset.tables["outfits"]
    train = sorted({int(i) for its in outfits.loc[outfits["split"] == 0, "items"] for i in its})
    names = dataset.items["title"].astype(str).tolist()
    item = train[0]
    counts = [sum(w in set(words(names[j])) for j in train) for w in words(names[item])]
    expected = sum(math.log1p(c) for c in counts) / len(counts)
    assert abs(float(model.popularity[item]) - expected) < 1e-5
    scores = model.fill_scores(None, None, None, torch.tensor([[item, train[1]]]))
    torch.testing.assert_close(scores, model.popularity[torch.tensor([[item, train[1]]])])
    assert not any(p.requires_grad for p in model.parameters())
