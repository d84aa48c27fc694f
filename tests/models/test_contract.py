"""The contract every registered model honours, plus a meta-test that each has its own tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fusionrec import models  # noqa: F401
from fusionrec.data.batches import UserBatch
from fusionrec.data.samplers import PairSampler
from fusionrec.registry import MODELS

TINY = {"bpr": {"embedding_dim": 8}, "lightgcn": {"embedding_dim": 8, "num_layers": 2},
        "vbpr": {"embedding_dim": 8, "content_dim": 4, "modalities": ["visual", "text"]}}


def build(name, dataset):
    entry = MODELS.entry(name)
    torch.manual_seed(0)
    return entry.obj.from_dataset(entry.config(name=name, **TINY.get(name, {})), dataset)


def first_batch(dataset, num_negatives=2):
    return next(PairSampler(dataset.matrix("train"), 32, num_negatives, seed=0).epoch(1))


@pytest.mark.parametrize("name", MODELS.names())
def test_loss_is_finite_scalar_and_reaches_every_parameter(name, tiny_dataset):
    model = build(name, tiny_dataset)
    out = model.loss(first_batch(tiny_dataset))
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, f"{name}: no gradient reaches {pname}"


@pytest.mark.parametrize("name", MODELS.names())
def test_score_shapes_and_agreement_with_scorer(name, tiny_dataset):
    model = build(name, tiny_dataset).eval()
    users = torch.tensor([0, 5, 7])
    items = torch.tensor([3, 1, 4, 1])
    with torch.no_grad():
        full = model.score(UserBatch(users))
        subset = model.score(UserBatch(users, items))
        via_scorer = model.scorer()(users, None)
    assert full.shape == (3, tiny_dataset.num_items)
    assert subset.shape == (3, 4)
    torch.testing.assert_close(subset, full[:, items])
    torch.testing.assert_close(via_scorer, full)


@pytest.mark.parametrize("name", MODELS.names())
def test_training_steps_lower_the_loss(name, tiny_dataset):
    model = build(name, tiny_dataset)
    batch = first_batch(tiny_dataset)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    before = float(model.loss(batch).loss.detach())
    for _ in range(20):
        opt.zero_grad()
        model.loss(batch).loss.backward()
        opt.step()
    assert float(model.loss(batch).loss.detach()) < before


@pytest.mark.parametrize("name", MODELS.names())
def test_same_seed_same_model(name, tiny_dataset):
    a, b = build(name, tiny_dataset), build(name, tiny_dataset)
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), ka


def test_every_registered_model_has_its_own_test_file():
    here = Path(__file__).parent
    missing = [n for n in MODELS.names() if not (here / f"test_{n}.py").exists()]
    assert not missing, f"registered models without tests/models/test_<name>.py: {missing}"
