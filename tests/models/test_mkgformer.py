"""MKGformer: visual tokens reach the [MASK] state only through the M-Encoder's correlation-aware fusion;
prefix-guided attention lets the visual tokens read the text; the text-only variant ignores images."""

from __future__ import annotations

import torch
from family_modules import family as load_family

from fusionrec.registry import MODELS

family = load_family("kg")


def build(**config):
    torch.manual_seed(0)
    entry = MODELS.entry("mkgformer")
    cfg = entry.config(name="mkgformer", **{**family.TINY["mkgformer"], **config})
    return entry.obj.from_dataset(cfg, family.tiny_dataset()).eval()


def visual_effect(model) -> float:
    """How much the scores move when the visual tokens are replaced by noise."""
    entities, relations = torch.arange(10), torch.zeros(10, dtype=torch.long)
    with torch.no_grad():
        before = model.score_queries(entities, relations)
        if model.visual:
            model.visual_tokens.copy_(torch.randn_like(model.visual_tokens))
        return float((model.score_queries(entities, relations) - before).abs().max())


def test_visual_tokens_reach_the_scores_only_through_correlation_aware_fusion():
    assert visual_effect(build()) > 1e-4
    assert visual_effect(build(correlation_fusion=False)) == 0.0  # no other path from vision to text
    assert visual_effect(build(visual=False)) == 0.0


def test_correlation_weights_are_a_distribution_over_present_patches():
    model = build()
    entity = int(model.visual_present.all(1).nonzero()[0])
    grids = model.query_attention(entity, 1)["grids"]
    correlation = torch.as_tensor(grids["text-to-visual correlation, fusion layer 1"])  # (Lt, Lv)
    torch.testing.assert_close(correlation.sum(1), torch.ones(correlation.shape[0]))
    missing = int((~model.visual_present.any(1)).nonzero()[0])
    assert (
        torch.as_tensor(model.query_attention(missing, 1)["grids"]["text-to-visual correlation, fusion layer 1"])
        .abs()
        .sum()
        == 0
    )


def test_prefix_guided_attention_reads_the_text_and_its_ablation_does_not():
    model, ablated = build(), build(prefix_guided=False)
    entity = int(model.visual_present.all(1).nonzero()[0])
    num_text = 3 + model.text_tokens.shape[1]
    full = torch.as_tensor(
        model.query_attention(entity, 0)["grids"]["prefix-guided attention of visual tokens, fusion layer 1"]
    )
    cut = torch.as_tensor(
        ablated.query_attention(entity, 0)["grids"]["prefix-guided attention of visual tokens, fusion layer 1"]
    )
    assert full[:, :num_text].sum() > 0.05  # visual queries attend to text keys
    assert cut[:, :num_text].abs().sum() == 0  # no prefix: visual self-attention only
    torch.testing.assert_close(cut.sum(1), torch.ones(cut.shape[0]))


def test_inverse_relations_are_their_own_tokens():
    model = build()
    with torch.no_grad():
        tail_query = model.score_queries(torch.tensor([4]), torch.tensor([0]))
        head_query = model.score_queries(torch.tensor([4]), torch.tensor([model.num_relations]))
    assert not torch.allclose(tail_query, head_query)
