"""NRMS: the user is an attention pooling of self-attended clicks, so the score ignores padded history
and the order of the clicks (no positions), and the loss is the npratio softmax cross-entropy."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "news"))
from news_helpers import batch, build  # noqa: E402


def test_padded_history_and_click_order_do_not_change_scores():
    dataset, _, model = build("nrms")
    pad = dataset.num_items
    with torch.no_grad():
        base = model.score(batch([pad, 3, 7, 11], [1, 2, 5], [False, True, True, True]))
        other_pad = model.score(batch([20, 3, 7, 11], [1, 2, 5], [False, True, True, True]))
        shuffled = model.score(batch([11, 3, 7], [1, 2, 5]))
    torch.testing.assert_close(base, other_pad)
    torch.testing.assert_close(base, shuffled)


def test_score_is_the_dot_product_of_user_and_news_vectors():
    _, _, model = build("nrms")
    with torch.no_grad():
        vectors, _ = model.encode_news(torch.tensor([3, 7, 1, 2]))
        user, weights = model.encode_user(vectors[None, :2], torch.ones(1, 2, dtype=torch.bool))
        scores = model.score(batch([3, 7], [1, 2]))
    torch.testing.assert_close(scores[0], vectors[2:] @ user[0])
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0))


def test_loss_is_softmax_cross_entropy_of_the_click():
    _, task, model = build("nrms")
    b = next(iter(task.train_batches(1)))
    scores = model.score(b).masked_fill(~b.candidate_mask, float("-inf"))
    expected = -torch.log_softmax(scores, -1)[:, 0].mean()
    torch.testing.assert_close(model.loss(b).loss, expected)
