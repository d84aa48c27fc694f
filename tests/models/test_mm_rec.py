"""MM-Rec: the history mask is applied in the four candidate-aware poolings (the official code never
applies it: ``apply_history_mask=False`` reproduces that, and then padding changes the scores); the
image stream reaches the scores; the text-only ablation ignores images."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "news"))
from news_helpers import batch, build  # noqa: E402


def scores_with_padding(model, pad_news):
    with torch.no_grad():
        return model.score(batch([pad_news, pad_news, 3, 7], [1, 2, 5], [False, False, True, True]))


def test_history_mask_is_applied():
    dataset, _, model = build("mm_rec")
    pad = dataset.num_items
    torch.testing.assert_close(scores_with_padding(model, pad), scores_with_padding(model, 20))
    with torch.no_grad():
        unpadded = model.score(batch([3, 7], [1, 2, 5]))
    torch.testing.assert_close(scores_with_padding(model, pad), unpadded)


def test_without_the_mask_padding_leaks_into_the_scores_as_in_the_official_code():
    _, _, model = build("mm_rec", apply_history_mask=False)
    assert not torch.allclose(scores_with_padding(model, 20), scores_with_padding(model, 30))


def test_four_poolings_and_the_image_stream_matter():
    _, _, model = build("mm_rec")
    assert set(model.candidate_maps) == {"tt", "tv", "vt", "vv"}
    b = batch([3, 7, 11], [1, 2, 5])
    with torch.no_grad():
        before = model.score(b)
        weights = model.attention(batch([3, 7, 11], [1]))
        model.image.features[1] += 1.0  # change the image of a candidate
        after = model.score(b)
    assert not torch.allclose(before[0, 0], after[0, 0])
    torch.testing.assert_close(before[0, 1:], after[0, 1:])
    for key in ("history t->t", "history t->v", "history v->t", "history v->v"):
        torch.testing.assert_close(weights[key].sum(), torch.tensor(1.0))
    assert weights["regions"].shape == (9,)


def test_text_only_ablation_ignores_images():
    dataset, _, model = build("mm_rec", use_image=False)
    assert model.image is None and set(model.candidate_maps) == {"tt"}
    assert "regions" not in model.attention(batch([3, 7], [1]))
