"""train.sparse_embeddings: sparse gradients for lookup-only tables, the same updates where the
optimiser allows it, clear refusals where PyTorch cannot, and resume through a checkpoint."""

from __future__ import annotations

import pytest
import torch

from fusionrec.api import train
from fusionrec.data.batches import PairBatch
from fusionrec.errors import ConfigError
from fusionrec.models.topk.bpr import BPR
from fusionrec.models.topk.lightgcn import LightGCN
from fusionrec.training.config import TrainConfig
from fusionrec.training.optim import Optimizers, build_optimizer

TINY = [
    "data.options.num_users=120",
    "data.options.num_items=80",
    "data.options.num_interactions=3000",
    "model.embedding_dim=8",
    "train.batch_size=256",
]


def bpr_pair(seed=0):
    torch.manual_seed(seed)
    model = BPR(50, 40, embedding_dim=8, reg_weight=1e-2)
    batch = PairBatch(torch.randint(0, 50, (64,)), torch.randint(0, 40, (64,)), torch.randint(0, 40, (64, 2)))
    return model, batch


def steps(model, cfg, batch, n=3):
    optimizer = build_optimizer(model, cfg)
    for _ in range(n):
        optimizer.zero_grad(set_to_none=True)
        model.loss(batch).loss.backward()
        optimizer.step()
    return optimizer


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad"])
def test_sparse_sgd_and_adagrad_make_the_dense_updates(optimizer):
    dense, batch = bpr_pair()
    sparse, _ = bpr_pair()
    steps(dense, TrainConfig(optimizer=optimizer, lr=0.5), batch)
    steps(sparse, TrainConfig(optimizer=optimizer, lr=0.5, sparse_embeddings=True), batch)
    assert sparse.user_emb.sparse and sparse.item_emb.sparse and not dense.user_emb.sparse
    for a, b in zip(dense.parameters(), sparse.parameters()):
        torch.testing.assert_close(a, b)


def test_vbpr_tables_train_sparse_with_the_same_adagrad_updates():
    from fusionrec.models.topk.vbpr import VBPR

    def build():
        torch.manual_seed(0)
        return VBPR(30, torch.randn(25, 6), embedding_dim=4, content_dim=3)

    batch = PairBatch(torch.randint(0, 30, (32,)), torch.randint(0, 25, (32,)), torch.randint(0, 25, (32, 1)))
    dense, sparse = build(), build()
    steps(dense, TrainConfig(optimizer="adagrad", lr=0.3), batch)
    steps(sparse, TrainConfig(optimizer="adagrad", lr=0.3, sparse_embeddings=True), batch)
    assert sparse.gamma_user.weight.grad.is_sparse and sparse.theta_user.weight.grad.is_sparse
    for a, b in zip(dense.parameters(), sparse.parameters()):
        torch.testing.assert_close(a, b)


def test_sparse_gradients_touch_only_the_batch_rows():
    model, batch = bpr_pair()
    before = model.item_emb.weight.detach().clone()
    optimizer = steps(model, TrainConfig(optimizer="adam", lr=0.1, sparse_embeddings=True), batch, n=1)
    assert isinstance(optimizer, Optimizers)  # SparseAdam for the tables, Adam for the item bias
    assert model.item_emb.weight.grad.is_sparse and not model.item_bias.grad.is_sparse
    used = torch.zeros(40, dtype=torch.bool)
    used[batch.pos_items] = True
    used[batch.neg_items.flatten()] = True
    changed = (model.item_emb.weight.detach() != before).any(1)
    assert (changed == used).all()


def test_refusals_name_the_setting():
    model, _ = bpr_pair()
    with pytest.raises(ConfigError, match="weight_decay"):
        build_optimizer(model, TrainConfig(sparse_embeddings=True, weight_decay=1e-4))
    with pytest.raises(ConfigError, match="grad_clip"):
        build_optimizer(model, TrainConfig(sparse_embeddings=True, grad_clip=1.0))
    with pytest.raises(ConfigError, match="scheduler"):
        build_optimizer(model, TrainConfig(sparse_embeddings=True, scheduler="step"))
    graph = LightGCN(5, 4, torch.eye(9).to_sparse())
    with pytest.raises(ConfigError, match="LightGCN computes with whole embedding tables"):
        build_optimizer(graph, TrainConfig(sparse_embeddings=True))


def test_sparse_run_resumes_exactly(tmp_path):
    sparse = ["train.sparse_embeddings=true", "train.optimizer=adam", "train.lr=0.01"]
    full = train(
        "bpr", "synthetic", overrides=[*TINY, *sparse, "train.epochs=3"], run_dir=tmp_path / "full", progress=False
    )
    part = train(
        "bpr", "synthetic", overrides=[*TINY, *sparse, "train.epochs=1"], run_dir=tmp_path / "part", progress=False
    )
    resumed = train(resume=part.run_dir, overrides=["train.epochs=3"], progress=False)
    assert [h["loss"] for h in resumed.record["history"]] == [h["loss"] for h in full.record["history"]]
    assert resumed.test_metrics == full.test_metrics
    history = full.record["history"]
    assert history[-1]["bpr"] < history[0]["bpr"]


SEQUENCE_TINY = [
    "data.options.num_users=60",
    "data.options.num_items=50",
    "data.options.num_interactions=1500",
    "data.split.method=loo",
    "model.hidden_dim=8",
    "model.max_length=10",
    "train.batch_size=16",
    "train.optimizer=sgd",
    "train.lr=0.5",
    "train.epochs=2",
    "model.loss=sampled_ce",
    "model.num_negatives=5",
]


@pytest.mark.parametrize(
    "model, extra", [("sasrec", []), ("bert4rec", []), ("nova_bert", ["model.item_side=[cluster]"]), ("marank", [])]
)
def test_sequential_tables_train_sparse_with_a_sampled_loss(tmp_path, model, extra):
    runs = {
        flag: train(
            model,
            "synthetic",
            overrides=[*SEQUENCE_TINY, *extra, f"train.sparse_embeddings={flag}"],
            run_dir=tmp_path / flag,
            progress=False,
        )
        for flag in ("false", "true")
    }
    dense, sparse = runs["false"], runs["true"]
    tables = sparse.model.lookup_embeddings()
    assert tables and all(t.sparse for t in tables) and not any(t.sparse for t in dense.model.lookup_embeddings())
    assert [h["loss"] for h in sparse.record["history"]] == pytest.approx([h["loss"] for h in dense.record["history"]])
    for a, b in zip(dense.model.parameters(), sparse.model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    from fusionrec.api import build_task, resolve_config

    run_config, model_config = resolve_config(config=sparse.record["config"])
    batch = next(iter(build_task(run_config, sparse.dataset, model_config).train_batches(1)))
    sparse.model.zero_grad(set_to_none=True)
    sparse.model.loss(batch).loss.backward()
    assert all(t.weight.grad.is_sparse for t in tables)  # every read of the tables is a lookup
    with pytest.raises(ConfigError, match="sampled model.loss"):  # the full softmax reads the whole item table
        train(
            model,
            "synthetic",
            overrides=[*SEQUENCE_TINY, *extra, "model.loss=ce", "train.sparse_embeddings=true"],
            run_dir=tmp_path / "ce",
            progress=False,
        )
