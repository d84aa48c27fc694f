"""NOVA-BERT: side information steers the attention, the values come from the ID branch only."""

from __future__ import annotations

import pytest
import torch

from fusionrec.data.batches import PAD_ITEM, SequenceBatch
from fusionrec.data.sequences import SideFeature
from fusionrec.errors import ConfigError
from fusionrec.models.sequential.nova_bert import NovaBERT, NovaBERTConfig
from fusionrec.nn.fusion import functional

I = 20
MASK = I
SIDE = (
    SideFeature("genre", "dense", 4, "item"),
    SideFeature("year", "codes", 6, "item"),
    SideFeature("rating", "codes", 6, "behaviour"),
)


def make_batch(seqs, side_seed=0, pad_to=None):
    L = pad_to or max(len(s) for s in seqs)
    items = torch.full((len(seqs), L), PAD_ITEM)
    for r, s in enumerate(seqs):
        items[r, L - len(s) :] = torch.tensor(s)
    mask = items != PAD_ITEM
    positions = torch.where(mask, L - 1 - torch.arange(L), -1)
    g = torch.Generator().manual_seed(side_seed)  # side information as a function of the item
    genre, year, rating = torch.rand(I + 2, 4, generator=g), *torch.randint(1, 6, (2, I + 2), generator=g)
    for table in (genre, year, rating):
        table[I:] = 0  # mask token and padding reveal nothing
    lookup = items.masked_fill(~mask, I + 1)
    side = {"genre": genre[lookup], "year": year[lookup], "rating": rating[lookup]}
    return SequenceBatch(torch.arange(len(seqs)), items, positions, side=side)


def model(fusor="gating"):
    torch.manual_seed(0)
    return NovaBERT(I, SIDE, True, hidden_dim=16, num_layers=2, num_heads=2, max_length=10, fusor=fusor).eval()


SEQS = [[1, 2, 3, 4, MASK], [5, 6, MASK]]


@pytest.mark.parametrize("fusor", ["add", "concat", "gating"])
def test_side_information_changes_the_attention_but_with_attention_fixed_not_the_values(fusor, monkeypatch):
    net = model(fusor)
    a, b = make_batch(SEQS, side_seed=1), make_batch(SEQS, side_seed=2)
    assert not torch.allclose(net.explain(a)["attention"], net.explain(b)["attention"])
    assert not torch.allclose(net.score(a), net.score(b))
    # Fix every attention map (uniform over the valid keys): the side information then has no path
    # to the output, because it never enters the values, the residuals or the feed-forward.
    softmax = functional.masked_softmax
    uniform = lambda scores, mask=None, dim=-1: softmax(torch.zeros_like(scores), mask, dim)  # noqa: E731
    monkeypatch.setattr(functional, "masked_softmax", uniform)
    torch.testing.assert_close(net.score(a), net.score(b))


def test_values_are_the_id_branch_projection():
    net = model()
    batch = make_batch(SEQS)
    layer = net.layers[0].attention  # NonInvasiveSelfAttention
    ids = torch.randn(2, 5, 16)
    side = net.side(batch)
    out = layer(ids, side, batch.mask)
    v = layer.attention.value(ids).view(2, 5, 2, 8).transpose(1, 2)  # (B, H, L, D/H)
    context = (out.weights["attention"] @ v).transpose(1, 2).reshape(2, 5, 16)
    torch.testing.assert_close(out.out, layer.attention.out(context) * batch.mask[..., None])


def test_explain_returns_attention_per_layer_and_gates_per_side_feature():
    net = model()
    maps = net.explain(make_batch(SEQS))
    assert maps["attention"].shape == (2, 2, 2, 5, 5)
    assert net.side_names == ("id", "position", "genre", "year", "rating")
    gates = maps["fusion"]  # (layers, B, L, S + 1)
    assert gates.shape == (2, 2, 5, 5)
    assert torch.all(gates[:, 1, :2] == 0)  # padding
    assert torch.all((gates[:, 0] > 0) & (gates[:, 0] < 1))
    torch.testing.assert_close(maps["attention"].sum(-1)[:, 0], torch.ones(2, 2, 5))
    assert "fusion" not in model("add").explain(make_batch(SEQS))


def test_padding_does_not_change_the_scores():
    net = model()
    torch.testing.assert_close(net.score(make_batch(SEQS)), net.score(make_batch(SEQS, pad_to=8)))


def test_side_information_must_be_in_the_batch():
    net = model()
    batch = make_batch(SEQS)
    with pytest.raises(ValueError, match="year"):
        net.score(
            SequenceBatch(
                batch.users, batch.items, batch.positions, side={k: v for k, v in batch.side.items() if k != "year"}
            )
        )


def test_from_dataset_validates_side_information(tiny_dataset):
    with pytest.raises(ConfigError, match="choose from"):
        NovaBERT.from_dataset(NovaBERTConfig(item_side=["genre"]), tiny_dataset)
    net = NovaBERT.from_dataset(NovaBERTConfig(item_side=["visual"], behaviour_side=[], hidden_dim=8), tiny_dataset)
    assert net.side_names == ("id", "visual") and net.position_embedding is None


def test_task_explains_a_users_sequence(tiny_dataset):
    from fusionrec.data.config import SplitConfig
    from fusionrec.data.splits import apply_split
    from fusionrec.tasks.sequential import SequentialTask

    ds = apply_split(tiny_dataset, SplitConfig(method="loo"))
    config = NovaBERTConfig(item_side=["text"], behaviour_side=["position", "time_gap"], hidden_dim=8, max_length=6)
    net = NovaBERT.from_dataset(config, ds)
    task = SequentialTask(ds, objective="cloze", max_length=6, item_side=["text"], behaviour_side=["time_gap"])
    out = task.attention_maps(net, torch.tensor([0, 3]))
    assert out["items"].shape == (2, 6) and out["items"][:, -1].tolist() == [ds.num_items] * 2
    assert out["attention"].shape == (2, 2, 2, 6, 6) and out["fusion"].shape == (2, 2, 6, 4)
    assert net.training  # mode restored
