import pytest
import torch

from fusionrec.data.batches import UserBatch
from fusionrec.models.topk.mgat import MGAT, MGATConfig


def build(dataset, **overrides):
    torch.manual_seed(0)
    config = MGATConfig(embedding_dim=8, hidden_dim=8, num_layers=2, **overrides)
    return MGAT.from_dataset(config, dataset)


def test_neighbour_attention_sums_to_one_per_node_in_every_modality_and_layer(tiny_dataset):
    model = build(tiny_dataset)
    attention: dict = {}
    with torch.no_grad():
        model.propagate(attention)
    graph = model.graph
    assert set(attention) == set(model.modality_names) == {"visual", "text"}
    has_neighbours = torch.zeros(graph.num_dst, dtype=torch.bool)
    has_neighbours[graph.row] = True
    for layers in attention.values():
        assert len(layers) == 2
        for weights in layers:
            assert weights.shape == (graph.num_edges,) and (weights >= 0).all()
            sums = torch.zeros(graph.num_dst).index_add_(0, graph.row, weights)
            torch.testing.assert_close(sums[has_neighbours], torch.ones(int(has_neighbours.sum())))
            assert torch.all(sums[~has_neighbours] == 0)
    # the graph is the training user-item graph in both directions
    train = tiny_dataset.matrix("train")
    assert graph.num_edges == 2 * train.nnz


def test_every_layer_reaches_the_scores(tiny_dataset):
    """The official code returns after layer 1; here layer 2 is live and the layers are concatenated."""
    model = build(tiny_dataset).eval()
    users, items, _ = model.propagate()
    assert users.shape == (tiny_dataset.num_users, 16) and items.shape == (tiny_dataset.num_items, 16)
    before = model.score(UserBatch(torch.arange(5)))
    with torch.no_grad():
        model.encoders["visual"].gates[1].weight.add_(1.0)  # a layer-2 weight
    assert not torch.allclose(model.score(UserBatch(torch.arange(5))), before)


def test_missing_modality_gets_no_fusion_weight_and_explain_labels_modalities(tiny_dataset):
    model = build(tiny_dataset)
    mask = torch.from_numpy(tiny_dataset.modalities["visual"].mask.copy())
    missing = torch.nonzero(~mask).ravel()
    present = torch.nonzero(mask).ravel()
    assert len(missing)
    users = torch.zeros(len(missing) + 2, dtype=torch.long)
    items = torch.cat([missing, present[:2]])
    with torch.no_grad():
        weights = model.explain(users, items)
    w = weights["modality_weights"]
    assert w.shape == (len(items), 2) and model.modality_names == ["visual", "text"]
    torch.testing.assert_close(w.sum(-1), torch.ones(len(items)))
    text_missing = ~torch.from_numpy(tiny_dataset.modalities["text"].mask.copy())
    for row, item in enumerate(items.tolist()):
        if not mask[item] and not text_missing[item]:
            assert w[row, 0] == 0 and w[row, 1] == 1
    torch.testing.assert_close(weights["user_modality_weights"], torch.full((len(items), 2), 0.5))


@pytest.mark.parametrize("fusion", ["gated", "modality_attention"])
def test_fusion_is_swappable(tiny_dataset, fusion):
    model = build(tiny_dataset, fusion=fusion)
    out = model.loss(next(iter(_batches(tiny_dataset))))
    assert torch.isfinite(out.loss)
    weights = model.explain(torch.tensor([0, 1]), torch.tensor([2, 3]))
    assert weights["modality_weights"].shape == (2, 2)


def test_unknown_fusion_lists_the_choices(tiny_dataset):
    from fusionrec.errors import ConfigError

    with pytest.raises(ConfigError, match="choose one of"):
        build(tiny_dataset, fusion="nope")


def _batches(dataset):
    from fusionrec.tasks.topk.sampler import PairSampler

    return PairSampler(dataset.matrix("train"), 32, 1, seed=0).epoch(1)
