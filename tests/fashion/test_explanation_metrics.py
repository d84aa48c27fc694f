"""Explanation accuracy: attention mass and the pointing game on hand-computed cases, and the
baselines (uniform, image-gradient saliency)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusionrec.metrics.explanation import (
    attention_mass,
    gradient_saliency,
    pointing_game,
    summarise,
    uniform_weights,
)


def test_attention_mass_is_the_renormalised_weight_on_the_target():
    w = np.array([[0.1, 0.6, 0.3], [2.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(attention_mass(w, np.array([1, 0, 2])), [0.6, 0.5, 1 / 3])


def test_pointing_game_scores_ties_by_their_expectation():
    w = np.array([[0.1, 0.6, 0.3], [0.4, 0.4, 0.2], [0.4, 0.4, 0.2], [0.25, 0.25, 0.25, 0.25][:3]])
    hits = pointing_game(w, np.array([1, 0, 2, 1]))
    np.testing.assert_allclose(hits, [1.0, 0.5, 0.0, 1 / 3])


def test_uniform_attention_scores_one_over_the_valid_regions():
    mask = np.array([[True, True, True, True], [True, False, True, False]])
    u = uniform_weights(mask)
    np.testing.assert_allclose(u.sum(1), [1, 1])
    np.testing.assert_allclose(attention_mass(u, np.array([3, 2])), [0.25, 0.5])
    np.testing.assert_allclose(pointing_game(u, np.array([3, 2])), [0.25, 0.5])
    assert summarise({"mass": attention_mass(u, np.array([3, 2]))})["mass"] == pytest.approx(0.375)


def test_bad_inputs_fail():
    with pytest.raises(ValueError, match="region index"):
        attention_mass(np.ones((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="non-negative"):
        pointing_game(-np.ones((1, 2)), np.array([0]))


def test_gradient_saliency_finds_the_region_the_score_reads():
    x = torch.randn(3, 4, 5)
    weight = torch.randn(5)

    def score(regions):  # only region 2 matters, through a nonlinearity
        return torch.tanh(regions[:, 2] @ weight) + 0.0 * regions.sum((1, 2))

    for mode in ("grad", "grad_x_input"):
        s = gradient_saliency(score, x, mode=mode)
        np.testing.assert_allclose(s.sum(1), 1.0, rtol=1e-6)
        assert (pointing_game(s, np.array([2, 2, 2])) == 1).all()
    mask = torch.tensor([[True, True, False, True]] * 3)
    s = gradient_saliency(lambda r: (r**2).sum((1, 2)), x, mask)
    assert (s[:, 2] == 0).all()
