"""VLSNR: the user depends on the order of the clicks (positions, attentional GRU) and on the candidate
(AUGRU attention), padded history is ignored, and the image regions reach the news vectors."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "news"))
from news_helpers import batch, build  # noqa: E402


def test_click_order_matters_and_padding_does_not():
    dataset, _, model = build("vlsnr")
    pad = dataset.num_items
    with torch.no_grad():
        base = model.score(batch([3, 7, 11], [1, 2, 5]))
        reordered = model.score(batch([11, 7, 3], [1, 2, 5]))
        padded = model.score(batch([pad, 3, 7, 11], [1, 2, 5], [False, True, True, True]))
        other_pad = model.score(batch([20, 3, 7, 11], [1, 2, 5], [False, True, True, True]))
    assert not torch.allclose(base, reordered)
    torch.testing.assert_close(padded, other_pad)


def test_gru_attention_is_candidate_aware_and_masked():
    _, _, model = build("vlsnr")
    with torch.no_grad():
        a = model.attention(batch([0, 3, 7, 11], [1], [False, True, True, True]))
        b = model.attention(batch([0, 3, 7, 11], [2], [False, True, True, True]))
    assert float(a["history"][0]) == 0.0
    torch.testing.assert_close(a["history"].sum(), torch.tensor(1.0))
    assert not torch.allclose(a["history"], b["history"])


def test_image_regions_reach_the_news_vector_unless_ablated():
    _, _, model = build("vlsnr")
    with torch.no_grad():
        before = model.encode_news(torch.tensor([1]))["news"]
        model.image.features[1] += 1.0
        after = model.encode_news(torch.tensor([1]))["news"]
    assert not torch.allclose(before, after)
    _, _, text_only = build("vlsnr", use_image=False)
    assert text_only.image is None and "regions" not in text_only.encode_news(torch.tensor([1]))
