"""LR: the additive baseline: no interaction between fields."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "ctr"))
from ctr_family import built  # noqa: E402


def test_logit_is_additive_over_fields():
    """Swapping one field's value between two rows changes the two logits by opposite amounts: no
    interaction term can make logit(a,b) + logit(c,d) differ from logit(a,d) + logit(c,b)."""
    model, task = built("lr")
    with torch.no_grad():
        for table in model.fields_in.categorical_w:
            table.weight.normal_()
    batch = task.batch(task.rows["train"][:2])
    swapped = task.batch(task.rows["train"][:2])
    swapped.categorical[:, 2] = batch.categorical.flip(0)[:, 2]  # the segment field
    with torch.no_grad():
        total, total_swapped = model.logits(batch).sum(), model.logits(swapped).sum()
    torch.testing.assert_close(total, total_swapped)
    assert len(list(model.fields_in.categorical)) == 0  # weights only, no vectors
