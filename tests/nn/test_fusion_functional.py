"""Hand-computed cases for the pure functions of ``fusionrec.nn.fusion.functional`` and the
modality fusor contract (``build_modality_fusion``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from fusionrec.errors import ConfigError
from fusionrec.nn.fusion import build_modality_fusion, modality_fusion_names
from fusionrec.nn.fusion.functional import (
    attention_mask,
    last_valid,
    masked_mean,
    masked_softmax,
    stack_modalities,
)
from fusionrec.registry import FUSIONS


def test_masked_softmax_hand_computed():
    scores = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
    mask = torch.tensor([[True, False, True], [False, False, False]])
    weights = masked_softmax(scores, mask)
    e1, e3 = math.exp(1.0), math.exp(3.0)
    expected = torch.tensor([[e1 / (e1 + e3), 0.0, e3 / (e1 + e3)], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(weights, expected)


def test_masked_softmax_fully_masked_row_has_finite_gradient():
    scores = torch.randn(2, 4, requires_grad=True)
    mask = torch.tensor([[True, True, False, True], [False] * 4])
    (masked_softmax(scores, mask) * torch.randn(2, 4)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert (scores.grad[1] == 0).all()


def test_masked_softmax_without_mask_is_softmax():
    scores = torch.randn(3, 5)
    torch.testing.assert_close(masked_softmax(scores, None, dim=0), torch.softmax(scores, dim=0))


def test_masked_mean_and_last_valid():
    x = torch.arange(12.0).reshape(2, 3, 2)  # rows [[0,1],[2,3],[4,5]], [[6,7],[8,9],[10,11]]
    mask = torch.tensor([[True, False, True], [False, False, False]])
    mean, weights = masked_mean(x, mask)
    torch.testing.assert_close(mean, torch.tensor([[2.0, 3.0], [0.0, 0.0]]))
    torch.testing.assert_close(weights, torch.tensor([[0.5, 0.0, 0.5], [0.0, 0.0, 0.0]]))
    last_mask = torch.tensor([[True, True, False], [False, False, False]])
    torch.testing.assert_close(last_valid(x, last_mask), torch.tensor([[2.0, 3.0], [0.0, 0.0]]))
    torch.testing.assert_close(last_valid(x), torch.tensor([[4.0, 5.0], [10.0, 11.0]]))


def test_attention_mask_combines_padding_and_causality():
    keys = torch.tensor([[True, True, False]])
    mask = attention_mask(keys, keys, causal=True)
    expected = torch.tensor([[[[True, False, False], [True, True, False], [False, False, False]]]])
    assert torch.equal(mask, expected)
    assert attention_mask(None, None) is None
    assert attention_mask(None, None, causal=True, num_queries=2).shape == (1, 1, 2, 2)


def test_stack_modalities_checks_its_input():
    xs = {"text": torch.randn(2, 4), "image": torch.randn(2, 4)}
    stacked, _ = stack_modalities(xs, None, 2)
    assert torch.equal(stacked[:, 1], xs["image"])
    with pytest.raises(ValueError, match="text, image"):
        stack_modalities(xs, None, 3)
    with pytest.raises(ValueError, match="boolean"):
        stack_modalities(xs, torch.ones(2, 2), 2)
    with pytest.raises(ValueError, match=r"\(B, M\)"):
        stack_modalities(xs, torch.ones(2, 3, dtype=torch.bool), 2)


# ------------------------------------------------------------------------ modality fusor contract


def test_build_modality_fusion_lists_valid_names():
    names = modality_fusion_names()
    expected = {"concat", "sum", "mean", "gated", "product", "modality_attention", "modality_self_attention"}
    assert set(names) == expected
    with pytest.raises(ConfigError, match="choose one of: concat, gated, mean") as err:
        build_modality_fusion("attention_pooling", 8, 3)
    assert "non_invasive_attention" not in str(err.value)
    with pytest.raises(ConfigError, match="unknown modality fusion 'non_invasive_attention'"):
        build_modality_fusion("non_invasive_attention", 8, 3)


def test_build_modality_fusion_rejects_unknown_options():
    with pytest.raises(ConfigError, match="no option 'num_heads'.*valid options: hidden_dim, interaction"):
        build_modality_fusion("modality_attention", 8, 3, num_heads=2)
    with pytest.raises(ConfigError, match=r"valid options: \(none\)"):
        build_modality_fusion("sum", 8, 3, bias=True)
    assert build_modality_fusion("modality_attention", 8, 3, hidden_dim=5).scorer.item.out_features == 5


@pytest.mark.parametrize("name", sorted(modality_fusion_names()))
def test_modality_fusors_are_interchangeable(name):
    torch.manual_seed(0)
    fusion = build_modality_fusion(name, 6, 3).eval()
    xs = {"text": torch.randn(4, 6), "image": torch.randn(4, 6), "id": torch.randn(4, 6)}
    mask = torch.tensor([[True, True, True], [True, False, True], [False, True, False], [False] * 3])
    query = torch.randn(4, 6)
    from_mapping = fusion(xs, mask, query)
    from_tensor = fusion(torch.stack(list(xs.values()), dim=1), mask=mask, query=query)
    torch.testing.assert_close(from_mapping.out, from_tensor.out)
    assert from_mapping.out.shape == (4, 6)
    assert (from_mapping.out[3] == 0).all(), "a row with every modality missing outputs zeros"
    assert fusion(xs).out.shape == (4, 6)  # mask and query are optional
    weights = from_mapping.weights
    if isinstance(weights, dict):
        weights = weights["pool"]
    if weights is not None:
        assert weights.shape == (4, 3) and (weights[~mask] == 0).all()
    with pytest.raises(ValueError, match="3 modalities"):
        fusion({"text": xs["text"], "image": xs["image"]})


def test_docs_table_lists_every_fusion():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "fusion.md").read_text(encoding="utf-8")
    missing = [name for name in FUSIONS.names() if f"`{name}`" not in doc]
    assert not missing, f"docs/fusion.md does not mention: {missing}"
    stale = [e.name for e in FUSIONS if e.meta["equation"].replace("|", "\\|") not in doc]
    assert not stale, f"docs/fusion.md has an outdated equation for: {stale}"
