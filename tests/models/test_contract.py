"""The contract every registered model honours, plus a meta-test that each has its own tests.

The ranking families (top-K, sequential) are built here from the shared ``tiny_dataset``. Any other
family brings its own tiny data and task in ``tests/models/families/<family>.py``, a module with

- ``TINY``: ``{model name: tiny config keys}``;
- ``tiny_task(name, model_config) -> (dataset, task)``: a small data set and the family's task on it,
  whose ``train_batches(1)`` the contract trains on;
- optionally ``CLOSED_FORM``: its models fitted when built (no trainable parameters; ``loss`` refuses).

Every model gets the generic checks (finite scalar loss reaching every trainable parameter, steps
lower it, same seed same weights); ranking models also the full-ranking scorer's shapes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from fusionrec import (
    models,  # noqa: F401
    tasks,  # noqa: F401
)
from fusionrec.data.batches import UserBatch
from fusionrec.data.config import SplitConfig
from fusionrec.data.splits import apply_split
from fusionrec.errors import FusionrecError
from fusionrec.registry import MODELS, task_of
from fusionrec.tasks.ranking import RankingTask
from fusionrec.training.config import TrainConfig


def _family_modules():
    """``{family: module}`` for every ``tests/models/families/<family>.py``."""
    found = {}
    for path in sorted((Path(__file__).parent / "families").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"contract_family_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found[path.stem] = module
    return found


FAMILIES = _family_modules()
RANKING_MODELS = [n for n in MODELS.names() if issubclass(task_of(n).obj, RankingTask)]

TINY = {
    "bpr": {"embedding_dim": 8},
    "lightgcn": {"embedding_dim": 8, "num_layers": 2},
    "mgat": {"embedding_dim": 8, "hidden_dim": 8, "num_layers": 2},
    "mario": {"embedding_dim": 8},
    "hcgcn": {"embedding_dim": 8, "num_clusters": 3, "knn_k": 4},
    "vbpr": {"embedding_dim": 8, "content_dim": 4, "modalities": ["visual", "text"]},
    "mcptr": {"embedding_dim": 8, "num_layers": 1, "num_neighbors": 4, "pretrain_epochs": 1},
    "uvcan": {"embedding_dim": 8, "num_steps": 2},
    "sasrec": {"hidden_dim": 16, "num_layers": 2, "max_length": 12},
    "bert4rec": {"hidden_dim": 16, "num_layers": 2, "max_length": 12},
    "nova_bert": {
        "hidden_dim": 16,
        "num_layers": 2,
        "max_length": 12,
        "item_side": ["text", "cluster"],
        "behaviour_side": ["position", "time_gap"],
    },
}


# Fitted when built (closed form or counting): no trainable parameters, loss() refuses, fit() evaluates them once.
# A family module may name its own (``CLOSED_FORM`` in tests/models/families/<family>.py).
CLOSED_FORM = {"ease", "mostpop", "random"} | {n for f in FAMILIES.values() for n in getattr(f, "CLOSED_FORM", ())}


def is_closed_form(model):
    return not any(p.requires_grad for p in model.parameters())


def config(name):
    entry = MODELS.entry(name)
    family = FAMILIES.get(task_of(name).name)
    tiny = family.TINY if family is not None else TINY
    return entry.config(name=name, **tiny.get(name, {}))


def family_of(name):
    return FAMILIES.get(task_of(name).name)


def build(name, dataset):
    torch.manual_seed(0)
    family = family_of(name)
    if family is not None:  # the family's own tiny data set, not the ranking one
        dataset = family.tiny_task(name, config(name))[0]
    return MODELS.get(name).from_dataset(config(name), dataset)


def task_for(name, dataset, num_negatives=2):
    """The model's own task (top-K: pair batches; sequential: sequence batches), tiny batches."""
    family = task_of(name)
    if family.name == "sequential":  # the sequential protocol needs a per-user temporal split
        dataset = apply_split(dataset, SplitConfig(method="loo"))
    section = {"num_negatives": num_negatives} if "num_negatives" in family.config.model_fields else {}
    return family.obj.build(family.config(**section), TrainConfig(batch_size=32, seed=0), dataset, config(name))


def first_batch(name, dataset, num_negatives=2):
    family = family_of(name)
    task = family.tiny_task(name, config(name))[1] if family is not None else task_for(name, dataset, num_negatives)
    return next(iter(task.train_batches(1)))


def score_batch(task, users, items=None):
    return task.score_batch(users, items) if hasattr(task, "score_batch") else UserBatch(users, items)


@pytest.mark.parametrize("name", MODELS.names())
def test_loss_is_finite_scalar_and_reaches_every_parameter(name, tiny_dataset):
    model = build(name, tiny_dataset)
    assert is_closed_form(model) == (name in CLOSED_FORM), f"{name}: trainable parameters do not match CLOSED_FORM"
    if name in CLOSED_FORM:
        with pytest.raises(FusionrecError, match="no trainable parameters"):
            model.loss(first_batch(name, tiny_dataset))
        return
    out = model.loss(first_batch(name, tiny_dataset))
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    for pname, param in model.named_parameters():
        if not param.requires_grad:  # frozen parts (e.g. MCPTR's stage-1 network, kept for explanations)
            continue
        assert param.grad is not None and param.grad.abs().sum() > 0, f"{name}: no gradient reaches {pname}"


@pytest.mark.parametrize("name", RANKING_MODELS)
def test_score_shapes_and_agreement_with_scorer(name, tiny_dataset):
    model = build(name, tiny_dataset).eval()
    task = task_for(name, tiny_dataset)
    users = torch.tensor([0, 5, 7])
    items = torch.tensor([3, 1, 4, 1])
    with torch.no_grad():
        full = model.score(score_batch(task, users))
        subset = model.score(score_batch(task, users, items))
        via_scorer = (task.scorer(model) if hasattr(task, "scorer") else model.scorer())(users, None)
    assert full.shape == (3, tiny_dataset.num_items)
    assert subset.shape == (3, 4)
    torch.testing.assert_close(subset, full[:, items])
    torch.testing.assert_close(via_scorer, full)


@pytest.mark.parametrize("name", MODELS.names())
def test_training_steps_lower_the_loss(name, tiny_dataset):
    if name in CLOSED_FORM:
        pytest.skip(f"{name} is fitted in closed form: nothing to step (its loss refusal is checked above)")
    model = build(name, tiny_dataset)
    batch = first_batch(name, tiny_dataset)
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


# Losses that are not a mean over the rows of a batch: under data parallelism their shard-weighted
# loss approximates the whole batch's (docs/distributed.md lists them), within the bound checked below.
SHARDED_LOSS_APPROXIMATE = {
    "bert4rec": "mean over masked tokens, whose count differs between rows",
    "nova_bert": "mean over masked tokens, whose count differs between rows",
    "marank": "mean over target positions, whose count differs between rows",
    "mml": "mean over target positions, whose count differs between rows",
    "mario": "modality-preservation term averaged over the batch's distinct items",
}
SHARDED_LOSS_COUPLED = {
    "hcgcn": "in-batch contrastive loss: a shard contrasts its own rows only",
    "fom": "masked-item softmax over the batch's items: a shard's pool is its own rows",  # outfit family
    "pog": "next-item softmax over the batch's items: a shard's pool is its own rows",
    "bilstm_outfit": "next / previous item softmax over the batch's items (Han et al.)",
}


@pytest.mark.parametrize("name", sorted(set(MODELS.names()) - CLOSED_FORM))
def test_data_parallel_shards_weigh_up_to_the_whole_batch(name, tiny_dataset):
    """Data-parallel training (training/distributed.py) gives each rank a contiguous shard of the global
    batch and weighs its loss by the shard's share: the weighted shard losses must add up to the
    whole batch's loss, so that DDP's averaged gradient is the single-process gradient (within 1% for
    the token-level means above; a loss coupling the rows of a batch is only required to be finite)."""
    model = build(name, tiny_dataset).eval()  # no dropout: the same forward for the whole and its parts
    batch = first_batch(name, tiny_dataset)
    shards = [batch.shard(rank, 2) for rank in range(2)]
    assert sum(len(s) for s in shards) == len(batch)
    torch.manual_seed(1)
    whole = model.loss(batch).loss
    weighted = 0.0
    for shard in shards:
        torch.manual_seed(1)
        weighted = weighted + model.loss(shard).loss * len(shard) / len(batch)
    if name in SHARDED_LOSS_COUPLED:
        assert torch.isfinite(weighted)
    elif name in SHARDED_LOSS_APPROXIMATE:
        torch.testing.assert_close(weighted, whole, rtol=1e-2, atol=1e-4)
    else:
        torch.testing.assert_close(weighted, whole, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
@pytest.mark.parametrize("name", sorted(set(MODELS.names()) - CLOSED_FORM))
def test_trains_and_scores_on_cuda(name, tiny_dataset):
    model = build(name, tiny_dataset).to("cuda")
    out = model.loss(first_batch(name, tiny_dataset).to("cuda"))
    out.loss.backward()
    assert torch.isfinite(out.loss) and all(p.grad is None or p.grad.is_cuda for p in model.parameters())
