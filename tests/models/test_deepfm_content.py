"""deepfm_content: DeepFM with the item's image/text vectors as dense fields, a missing image masked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "ctr"))
from ctr_family import built  # noqa: E402


def test_content_vectors_are_fields_and_change_the_score():
    model, task = built("deepfm_content")
    model.eval()
    assert model.fields_in.num_fields == 9  # 7 id/side fields + image + text
    batch = task.batch(task.rows["train"][:32])
    with torch.no_grad():
        before = model.logits(batch)
        batch.contents[1].add_(1.0)  # the text vector
        assert not torch.allclose(model.logits(batch), before)


def test_a_missing_image_is_masked_whatever_its_values():
    model, task = built("deepfm_content")
    model.eval()
    batch = task.batch(task.rows["train"][:200])
    missing = ~batch.content_masks[0]
    assert missing.any() and (~missing).any()
    with torch.no_grad():
        before = model.logits(batch)
        batch.contents[0].add_(3.0)  # garbage behind the mask
        after = model.logits(batch)
    torch.testing.assert_close(after[missing], before[missing])
    assert not torch.allclose(after[~missing], before[~missing])


def test_refuses_a_layout_without_content_fields():
    from fusionrec.errors import ConfigError

    with pytest.raises(ConfigError, match="task.fields has none"):
        built("deepfm_content", task_options={"fields": {"user": {"source": "user_id"}}})
