"""AutoInt: multi-head self-attention over fields, a softmax over fields per head, with a residual."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "ctr"))
from ctr_family import built  # noqa: E402


def test_attention_over_fields_sums_to_one_per_head():
    model, task = built("autoint")
    batch = task.batch(task.rows["train"][:8])
    with torch.no_grad():
        out, weights = model.interactions(batch)
    assert out.shape == (8, 7, 8) and len(weights) == 2
    for w in weights:
        assert w.shape == (8, 2, 7, 7)
        torch.testing.assert_close(w.sum(-1), torch.ones(8, 2, 7))


def test_interacting_layer_is_relu_of_attention_plus_residual():
    model, task = built("autoint")
    layer = model.layers[0]
    x = torch.randn(3, 5, 8)
    with torch.no_grad():
        attended, _ = layer.attention(layer.query_in(x), x)
        out, _ = layer(x)
    torch.testing.assert_close(out, torch.relu(attended + layer.residual(x)))


def test_a_field_interacts_through_attention():
    """Changing one field's value changes the other fields' outputs (they attend to it)."""
    model, task = built("autoint")
    batch = task.batch(task.rows["train"][:4])
    other = task.batch(task.rows["train"][:4])
    other.categorical[:, 2] = (batch.categorical[:, 2] % 3) + 1
    changed = other.categorical[:, 2] != batch.categorical[:, 2]
    with torch.no_grad():
        a, _ = model.interactions(batch)
        b, _ = model.interactions(other)
    assert not torch.allclose(a[changed][:, 0], b[changed][:, 0])  # the user-id field's output moved
