"""DCN-v2: the cross layer is x0 * (W x + b) + x; the parallel deep and cross outputs meet in the logit."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "ctr"))
from ctr_family import built  # noqa: E402

from fusionrec.nn.ctr import CrossLayerV2  # noqa: E402


def test_cross_layer_by_hand():
    layer = CrossLayerV2(3)
    with torch.no_grad():
        layer.project.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 2, 0], [1, 1, 1]]))
        layer.project.bias.copy_(torch.tensor([0.5, 0.0, -1.0]))
    x0 = torch.tensor([[1.0, 2.0, 3.0]])
    x = torch.tensor([[1.0, -1.0, 2.0]])
    # W x + b = [1.5, -2, 1]; x0 * that + x = [1.5 + 1, -4 - 1, 3 + 2]
    torch.testing.assert_close(layer(x0, x), torch.tensor([[2.5, -5.0, 5.0]]))


def test_low_rank_cross_is_u_v():
    layer = CrossLayerV2(6, rank=2)
    x0, x = torch.randn(4, 6), torch.randn(4, 6)
    down, up = layer.project[0], layer.project[1]
    torch.testing.assert_close(layer(x0, x), x0 * (x @ down.weight.T @ up.weight.T + up.bias) + x)


def test_cross_network_feeds_the_logit_next_to_the_dnn():
    model, task = built("dcn_v2")
    model.eval()
    batch = task.batch(task.rows["train"][:8])
    with torch.no_grad():
        x0 = model.fields_in(batch).flatten(1)
        x = x0
        for layer in model.cross:
            x = layer(x0, x)
        expected = model.out(torch.cat([x, model.deep(x0)], -1)).squeeze(-1)
        torch.testing.assert_close(model.logits(batch), expected)
