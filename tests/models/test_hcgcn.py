import torch

from fusionrec.models.topk.features import modality_tensors, standardize
from fusionrec.models.topk.hcgcn import HCGCN, HCGCNConfig, item_item_graph, kmeans
from fusionrec.nn.losses import info_nce
from fusionrec.tasks.topk.sampler import PairSampler


def build(dataset, **overrides):
    torch.manual_seed(0)
    config = HCGCNConfig(**{"embedding_dim": 8, "num_clusters": 3, "knn_k": 4, **overrides})
    return HCGCN.from_dataset(config, dataset)


def batch(dataset):
    return next(PairSampler(dataset.matrix("train"), 32, 2, seed=0).epoch(1))


def test_item_graph_is_a_sparse_symmetric_knn_graph_over_present_items(tiny_dataset):
    feats, masks = modality_tensors(tiny_dataset, ["all"], "HCGCN")
    feats = {m: standardize(f, masks[m]) for m, f in feats.items()}
    graph = item_item_graph(feats, masks, k=4)
    num_items = tiny_dataset.num_items
    assert graph.shape == (num_items, num_items)
    assert graph.nnz <= 2 * 2 * 4 * num_items  # two modalities, k per row, symmetrised
    assert abs(graph - graph.T).max() < 1e-6 and graph.diagonal().sum() == 0
    missing_visual = (~masks["visual"]).nonzero().ravel().numpy()
    only_text = feats["text"]
    text_graph = item_item_graph({"text": only_text}, {"text": masks["text"]}, k=4)
    for i in missing_visual:  # a missing-visual item's neighbours come from text only
        assert set(graph[i].indices) <= set(text_graph[i].indices)
    model = build(tiny_dataset)
    assert model.item_graph.layout == torch.sparse_csr and model.item_graph._nnz() == graph.nnz


def test_local_propagation_only_uses_edges_inside_co_clusters(tiny_dataset):
    model = build(tiny_dataset)
    local = model.local_adjacency.to_sparse_coo().coalesce()
    rows, cols = local.indices()
    assert len(rows) > 0
    assert torch.equal(model.clusters[rows], model.clusters[cols])
    full = model.adjacency._nnz()
    assert local._nnz() < full  # some user-item edges cross clusters


def test_dynamic_clustering_reassigns_nodes_to_their_nearest_centroid(tiny_dataset):
    model = build(tiny_dataset)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(5):
        opt.zero_grad()
        model.loss(batch(tiny_dataset)).loss.backward()
        opt.step()
    initial = model.clusters.clone()
    model.on_epoch_start(1)  # epoch 1 keeps the k-means clusters
    assert torch.equal(model.clusters, initial)
    model.on_epoch_start(2)
    with torch.no_grad():
        z, _, _ = model.propagate()
        pi = model.assignments(z)
    torch.testing.assert_close(pi.sum(-1), torch.ones(len(pi)))
    # the local graph used now was built from the new clusters
    rows, cols = model.local_adjacency.to_sparse_coo().coalesce().indices()
    assert torch.equal(model.clusters[rows], model.clusters[cols])
    restored = build(tiny_dataset)
    restored.load_state_dict(model.state_dict())
    assert torch.equal(restored.clusters, model.clusters)
    assert torch.equal(restored.local_adjacency.to_dense(), model.local_adjacency.to_dense())


def test_losses_are_weighted_from_config(tiny_dataset):
    b = batch(tiny_dataset)
    off = build(tiny_dataset, cocluster_weight=0.0, cluster_weight=0.0, contrastive_weight=0.0).loss(b)
    torch.testing.assert_close(off.loss, off.parts["bpr"] + off.parts["reg"])
    on = build(tiny_dataset, cocluster_weight=0.5, cluster_weight=2.0, contrastive_weight=3.0).loss(b)
    p = on.parts
    expected = p["bpr"] + 0.5 * p["cocluster"] + 2.0 * p["cluster"] + 3.0 * p["contrastive"] + p["reg"]
    torch.testing.assert_close(on.loss, expected)
    assert all(on.parts[k] > 0 for k in ("cocluster", "cluster", "contrastive"))


def test_contrastive_loss_is_clip_style_infonce_over_items_with_both_modalities(tiny_dataset):
    model = build(tiny_dataset, temperature=0.5)
    items = torch.arange(tiny_dataset.num_items)
    with torch.no_grad():
        _, _, modal = model.item_content()
        both = items[model.present[:, 0] & model.present[:, 1]]
        got = model.contrastive_loss(modal, items)
    torch.testing.assert_close(got, info_nce(modal["visual"][both], modal["text"][both], 0.5))


def test_item_clustering_loss_is_zero_only_for_confident_balanced_assignments():
    confident = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert HCGCN.item_clustering_loss(confident) < 1e-6
    vague = torch.tensor([[0.6, 0.4], [0.4, 0.6]])
    assert HCGCN.item_clustering_loss(vague) > 0.01


def test_kmeans_separates_obvious_clusters():
    centres = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    x = torch.cat([torch.randn(10, 3) * 0.05 + centres[0], torch.randn(10, 3) * 0.05 + centres[1]])
    labels = kmeans(x, 2)
    assert len(set(labels[:10].tolist())) == 1 and len(set(labels[10:].tolist())) == 1 and labels[0] != labels[10]


def test_explain_gives_modality_weights_and_cluster_memberships(tiny_dataset):
    model = build(tiny_dataset)
    with torch.no_grad():
        out = model.explain(torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]))
    assert model.modality_names == ["visual", "text"]
    assert out["modality_weights"].shape == (3, 2)
    torch.testing.assert_close(out["modality_weights"].sum(-1), torch.ones(3))
    torch.testing.assert_close(out["user_clusters"].sum(-1), torch.ones(3))
    assert out["item_clusters"].shape == (3, 3)


def test_contrastive_loss_uses_a_random_subset_of_at_most_contrastive_items(tiny_dataset):
    model = build(tiny_dataset, temperature=0.5, contrastive_items=5)
    items = torch.arange(tiny_dataset.num_items)
    with torch.no_grad():
        _, _, modal = model.item_content()
        both = items[model.present[:, 0] & model.present[:, 1]]
        assert len(both) > 5
        torch.manual_seed(3)
        got = model.contrastive_loss(modal, items)
        torch.manual_seed(3)
        subset = both[torch.randperm(len(both))[:5]]
    torch.testing.assert_close(got, info_nce(modal["visual"][subset], modal["text"][subset], 0.5))
