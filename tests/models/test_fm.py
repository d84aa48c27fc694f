"""FM: the O(F D) pairwise term equals the brute-force sum over field pairs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "ctr"))
from ctr_family import built  # noqa: E402

from fusionrec.nn.ctr import fm_second_order  # noqa: E402


def test_second_order_identity_matches_brute_force():
    fields = torch.randn(5, 7, 4, dtype=torch.float64)
    brute = sum((fields[:, i] * fields[:, j]).sum(-1) for i in range(7) for j in range(i + 1, 7))
    torch.testing.assert_close(fm_second_order(fields), brute)


def test_fm_logit_is_bias_plus_linear_plus_pairs():
    model, task = built("fm")
    batch = task.batch(task.rows["train"][:16])
    with torch.no_grad():
        vectors = model.fields_in(batch)
        pairs = sum(
            (vectors[:, i] * vectors[:, j]).sum(-1)
            for i in range(vectors.shape[1])
            for j in range(i + 1, vectors.shape[1])
        )
        expected = model.bias + model.fields_in.linear(batch) + pairs
        torch.testing.assert_close(model.logits(batch), expected, rtol=1e-5, atol=1e-6)
    assert vectors.shape[1] == 7  # content fields are not FM inputs


@pytest.mark.parametrize("field", [0, 3])
def test_unknown_code_is_a_learned_row_not_an_error(field):
    model, task = built("fm")
    batch = task.batch(task.rows["train"][:4])
    batch.categorical[:, field] = 0
    assert torch.isfinite(model.logits(batch)).all()
