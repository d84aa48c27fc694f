"""DeepFM: the FM part and the DNN share the field embeddings; the logit is their sum."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "ctr"))
from ctr_family import built  # noqa: E402

from fusionrec.nn.ctr import fm_second_order  # noqa: E402


def test_logit_is_fm_plus_dnn_over_shared_embeddings():
    model, task = built("deepfm")
    model.eval()
    batch = task.batch(task.rows["train"][:16])
    with torch.no_grad():
        vectors = model.fields_in(batch)
        fm = model.bias + model.fields_in.linear(batch) + fm_second_order(vectors)
        deep = model.deep_out(model.deep(vectors.flatten(1))).squeeze(-1)
        torch.testing.assert_close(model.logits(batch), fm + deep)
        model.deep_out.weight.zero_()
        model.deep_out.bias.zero_()
        torch.testing.assert_close(model.logits(batch), fm)  # without the DNN: an FM


def test_content_fields_are_ignored_without_use_content():
    model, task = built("deepfm")
    model.eval()
    batch = task.batch(task.rows["train"][:16])
    with torch.no_grad():
        before = model.logits(batch)
        for values in batch.contents:
            values.add_(5.0)
        torch.testing.assert_close(model.logits(batch), before)


def test_loss_adds_the_l2_of_the_embedding_rows_read():
    model, task = built("deepfm", embedding_reg=0.5)
    model.eval()
    batch = task.batch(task.rows["train"][:16])
    out = model.loss(batch)
    rows = [t(batch.categorical[:, j]) for j, t in enumerate(model.fields_in.categorical)]
    rows += [t(codes) for t, codes in zip(model.fields_in.sequences, batch.sequences)]
    expected = sum(r.pow(2).sum() for r in rows) / 16
    torch.testing.assert_close(out.parts["reg"], expected.detach())
    torch.testing.assert_close(out.loss, out.parts["bce"] + 0.5 * expected)
