"""MML: the inner loop adapts only its parameter subset, fusion weights are a softmax, cold items
get generated embeddings from their features, each stage learns, and the staged run works end to end."""

from __future__ import annotations

import pytest
import torch

from fusionrec.data.batches import PAD_ITEM, SequenceBatch
from fusionrec.data.config import SplitConfig
from fusionrec.data.splits import apply_split
from fusionrec.errors import ConfigError
from fusionrec.models.sequential.mml import MML, MMLConfig, next_targets, support_query
from fusionrec.tasks.sequential import SequentialTask, SequentialTaskConfig
from fusionrec.training.config import TrainConfig
from fusionrec.training.fit import fit

I = 24


def make_batch(seqs, pad_to=None, targets=False):
    """Left-padded batch; with ``targets`` every slot's target is the next item of the sequence."""
    L = pad_to or max(len(s) for s in seqs) - (1 if targets else 0)
    items = torch.full((len(seqs), L), PAD_ITEM)
    tgt = torch.full((len(seqs), L), PAD_ITEM)
    for r, s in enumerate(seqs):
        inputs = s[:-1] if targets else s
        items[r, L - len(inputs) :] = torch.tensor(inputs)
        if targets:
            tgt[r, L - len(inputs) :] = torch.tensor(s[1:])
    positions = torch.where(items != PAD_ITEM, L - 1 - torch.arange(L), -1)
    return SequenceBatch(torch.arange(len(seqs)), items, positions, tgt if targets else None)


def tiny_model(counts=None, dropout=0.0, **kw):
    """Two modalities (a dense one with two items missing it, and a multi-hot one); all items warm."""
    torch.manual_seed(0)
    text = torch.randn(I, 6)
    text_mask = torch.ones(I, dtype=torch.bool)
    text_mask[[3, 7]] = False
    text[~text_mask] = 0
    genre = (torch.rand(I, 4) < 0.4).float()
    features, masks = {"text": text, "genre": genre}, {"text": text_mask, "genre": torch.ones(I, dtype=torch.bool)}
    neighbors = {n: torch.randint(0, I, (I, 3)) for n in features}
    counts = torch.full((I,), 5) if counts is None else counts
    kw = {
        "hidden_dim": 16,
        "num_layers": 2,
        "num_heads": 2,
        "inner_dim": 32,
        "max_length": 10,
        "dropout": dropout,
        "inner_lr": 0.5,
        "fusion_hidden_dim": 8,
        **kw,
    }
    return MML(I, features, masks, neighbors, counts, **kw)


def successor_batch(num=16, length=8, seed=0):
    """Every sequence walks the catalogue: next = item + 1 (mod I)."""
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, I, (num,), generator=g)
    return make_batch(((starts[:, None] + torch.arange(length)) % I).tolist(), targets=True)


def test_support_query_split_and_next_targets_respect_padding():
    targets = torch.tensor([[-1, -1, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7], [-1, -1, -1, -1, -1, -1, 9]])
    support, query = support_query(targets, 0.3)
    assert query.tolist() == [[-1, -1, -1, -1, -1, 7, 8], [-1, -1, -1, -1, 5, 6, 7], [-1] * 6 + [9]]
    assert support.tolist() == [[-1, -1, 4, 5, 6, -1, -1], [1, 2, 3, 4, -1, -1, -1], [-1] * 7]
    items = torch.tensor([[-1, -1, 3, 4, 5], [1, 2, 3, 4, 5]])
    assert next_targets(items).tolist() == [[-1, -1, 4, 5, -1], [2, 3, 4, 5, -1]]


@pytest.mark.parametrize("adapt", [("position_embedding", "norm", "layers"), ("layers.1",)])
@pytest.mark.parametrize("first_order,norm_first", [(True, True), (False, True), (True, False)])
def test_inner_loop_changes_only_the_adapted_parameters_and_never_the_module(adapt, first_order, norm_first):
    net = tiny_model(adapt=adapt, inner_steps=2, first_order=first_order, norm_first=norm_first)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    batch = make_batch([[1, 2, 3, 4, 5, 6], [7, 8, 9], [10, 11, 12, 13]])
    encoder = net.learners["text"].encoder
    own = dict(encoder.named_parameters())
    params = net.inner_loop("text", batch, next_targets(batch.items), net.learners["text"].item_table())
    assert set(params) == set(own)
    adapted = [n for n in own if any(n == a or n.startswith(a + ".") for a in adapt)]
    assert adapted and set(adapted) == set(net.adapted)
    for name, value in params.items():
        if name in adapted:  # one copy per user, moved away from the shared starting point
            assert value.shape == (3, *own[name].shape)
            assert (value != own[name]).flatten(1).any(1).all(), name
        else:  # every other parameter is the module's own tensor, bit for bit
            assert value is own[name] or torch.equal(value, own[name])
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the functional inner loop modified the module"


def test_inner_loop_lowers_each_users_support_loss():
    net = tiny_model(inner_steps=3, inner_lr=0.3).eval()
    batch = successor_batch(6)
    table = net.learners["id"].item_table().detach()
    support, _ = support_query(batch.targets, 0.25)
    from fusionrec.models.sequential.mml import slot_losses

    def per_user(hidden):
        losses = slot_losses(hidden, table, support, support.new_zeros(*support.shape, 0), "ce")
        return losses.sum(1) / (support >= 0).sum(1)

    with torch.no_grad():
        x = table[batch.items.clamp_min(0)] * batch.mask[..., None]
        start = per_user(net.learners["id"].encoder(x, batch.positions, batch.mask))
        adapted = per_user(net.adapted_hidden("id", batch, support, table))
    assert torch.all(adapted < start)


def test_fusion_weights_sum_to_one_per_sample_and_scores_ignore_padding():
    net = tiny_model().eval()
    batch = make_batch([[1, 2, 3], [4, 5, 6, 7, 8], [9]])
    weights = net.explain(batch)["fusion"]  # (B, M)
    assert weights.shape == (3, 3)
    torch.testing.assert_close(weights.sum(1), torch.ones(3))
    assert torch.all(weights > 0)
    with torch.no_grad():
        out = net.fusion(torch.randn(5, 3, 16), torch.randn(5, 3, I), net.present)
    torch.testing.assert_close(out.weights.sum(1), torch.ones(5))
    torch.testing.assert_close(net.score(batch), net.score(make_batch([[1, 2, 3], [4, 5, 6, 7, 8], [9]], pad_to=8)))


def test_an_item_missing_a_modality_gets_the_neutral_score_from_that_learner():
    net = tiny_model().eval()
    from fusionrec.models.sequential.mml import standardize_scores

    z = standardize_scores(torch.randn(4, 3, I), net.present)
    assert torch.all(z[:, 1, [3, 7]] == 0)  # "text" is learner 1; items 3 and 7 lack it
    present = net.present[1]
    torch.testing.assert_close(z[:, 1, present].mean(-1), torch.zeros(4), atol=1e-5, rtol=0)


def test_generator_gives_an_item_without_interactions_an_embedding_from_its_features():
    counts = torch.full((I,), 5)
    counts[5] = 0  # item 5 was never interacted with in training
    net = tiny_model(counts).eval()
    assert net.cold_items.tolist() == [i == 5 for i in range(I)]
    own = net.learners["id"].item_embedding.weight.detach()
    torch.testing.assert_close(net.item_table("id"), own)  # the generator is off until its stage
    net.on_epoch_start(net.meta_epochs + 1)
    assert net.stage == "generator" and bool(net.use_generator)
    table = net.item_table("id").detach()
    torch.testing.assert_close(table[5], net.generator()[5].detach())
    assert not torch.allclose(table[5], own[5])
    torch.testing.assert_close(table[torch.arange(I) != 5], own[torch.arange(I) != 5])  # warm rows untouched
    with torch.no_grad():  # change item 5's text features: its embedding follows
        net.generator.features_0[5] += 1.0
    assert not torch.allclose(net.item_table("id")[5], table[5])
    with torch.no_grad():  # an item's generated embedding ignores the features of a modality it lacks
        before = net.generator()[3].clone()
        net.generator.features_0[3] += 1.0
        net.generator.neighbors_0[3] = -1  # and its (then absent) neighbours
        torch.testing.assert_close(net.generator()[3], before)


def stage_params(net, stage):
    return {"meta": net.learners, "generator": net.generator, "fusion": net.fusion}[stage].parameters()


@pytest.mark.parametrize("stage", ["meta", "generator", "fusion"])
def test_each_stage_lowers_its_loss_and_trains_only_its_parameters(stage):
    net = tiny_model(meta_epochs=1, generator_epochs=1, generate_rate=1.0).train()
    batch = successor_batch(12)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)

    def steps(n):
        for _ in range(n):
            opt.zero_grad()
            net.loss(batch).loss.backward()
            opt.step()

    if stage == "generator":  # a generator needs a trained ID learner to imitate
        net.on_epoch_start(1)
        steps(15)
    net.on_epoch_start({"meta": 1, "generator": 2, "fusion": 3}[stage])
    assert net.stage == stage
    own = {id(p) for p in stage_params(net, stage)}
    opt.zero_grad()
    net.loss(batch).loss.backward()
    for name, p in net.named_parameters():
        reached = p.grad is not None and bool(p.grad.abs().sum() > 0)
        assert reached == (id(p) in own), f"{stage}: gradient on {name} is {reached}"
    before = float(net.loss(batch).loss.detach())
    steps(15)
    assert float(net.loss(batch).loss.detach()) < 0.9 * before


def test_joint_loss_reaches_every_parameter_and_schedule_maps_epochs_to_stages():
    net = tiny_model(meta_epochs=2, generator_epochs=1)
    assert net.stage == "joint"
    net.loss(successor_batch()).loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    assert [net.stage_of(e) for e in range(1, 6)] == ["meta", "meta", "generator", "fusion", "fusion"]
    assert tiny_model(schedule="joint").stage_of(1) == "joint"


def test_config_errors_list_the_choices(tiny_dataset):
    with pytest.raises(ConfigError, match="layers"):
        tiny_model(adapt=("nope",))
    with pytest.raises(Exception, match="modalities"):
        MML.from_dataset(MMLConfig(modalities=["audio"]), tiny_dataset)


def test_trains_end_to_end_through_the_sequential_task_on_new_users(tiny_dataset):
    """The staged schedule in one fit on the cold-user split: every stage runs and is recorded."""
    dataset = apply_split(tiny_dataset, SplitConfig(method="cold_user", cold_user_max_interactions=8))
    config = MMLConfig(
        hidden_dim=16,
        num_layers=1,
        inner_dim=32,
        max_length=12,
        meta_epochs=3,
        generator_epochs=1,
        fusion_hidden_dim=8,
        cold_item_max_interactions=2,
    )
    torch.manual_seed(0)
    net = MML.from_dataset(config, dataset)
    assert net.names == ("id", "visual", "text")
    train = TrainConfig(epochs=6, batch_size=32, lr=0.01, seed=0, patience=10, metric="ndcg@10")
    task = SequentialTask.build(SequentialTaskConfig(ks=[10]), train, dataset, config)
    users = torch.from_numpy(task.targets("valid").sum(1).A1.nonzero()[0])
    assert len(users) and (task.sequences.num_train[users.numpy()] == 0).all()  # new users only
    state = fit(net, task, train, progress=False)
    assert state.stopped == "max_epochs" and len(state.history) == 6
    extra = net.extra_record()
    assert {k: v["epochs"] for k, v in extra["stages"].items()} == {
        "meta": [1, 3],
        "generator": [4, 4],
        "fusion": [5, 6],
    }
    meta = [h["meta_id"] for h in extra["stages"]["meta"]["history"]]
    assert meta[-1] < meta[0]
    assert all("fusion" in h for h in extra["stages"]["fusion"]["history"])
    result = task.evaluate(net, "test")
    assert 0.0 <= result.metrics["ndcg@10"] <= 1.0 and result.num_users_evaluated > 0
