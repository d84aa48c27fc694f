import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fusionrec.models.topk.lightgcn import LightGCN
from fusionrec.nn.graph import bipartite_adjacency, mean_propagate, sym_normalize, to_torch_sparse


def test_sym_normalize_hand_case():
    # user 0 - item 0, user 0 - item 1, user 1 - item 1: degrees u0 2, u1 1, i0 1, i1 2
    adj = sym_normalize(bipartite_adjacency(sp.csr_matrix(np.array([[1, 1], [0, 1]]))))
    dense = adj.toarray()
    assert dense[0, 2] == pytest.approx(1 / np.sqrt(2 * 1))
    assert dense[0, 3] == pytest.approx(1 / np.sqrt(2 * 2))
    assert dense[1, 3] == pytest.approx(1 / np.sqrt(1 * 2))
    np.testing.assert_allclose(dense, dense.T)


def test_zero_layers_is_matrix_factorisation_and_layers_mix_neighbours():
    r = sp.csr_matrix(np.array([[1, 0], [0, 1]]))
    adj = to_torch_sparse(sym_normalize(bipartite_adjacency(r)))
    emb = torch.eye(4)
    torch.testing.assert_close(mean_propagate(adj, emb, 0), emb)
    one = mean_propagate(adj, emb, 1)
    # user 0 only touches item 0 (node 2): its row mixes itself and node 2 equally
    torch.testing.assert_close(one[0], torch.tensor([0.5, 0.0, 0.5, 0.0]))


def test_scores_depend_on_graph_neighbours_only_through_training_graph():
    r = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0]]))
    adj = to_torch_sparse(sym_normalize(bipartite_adjacency(r)))
    model = LightGCN(2, 3, adj, embedding_dim=4, num_layers=2)
    users, items = model.propagate()
    # item 2 has no training edge: its final embedding is its own ego embedding / (K + 1)
    torch.testing.assert_close(items[2], model.embedding.weight[4] / 3)


def test_symmetric_spmm_gradient_matches_dense():
    from fusionrec.nn.graph import symmetric_spmm

    r = sp.random(5, 7, density=0.4, random_state=0, format="csr")
    adj_sp = sym_normalize(bipartite_adjacency(r))
    adj = to_torch_sparse(adj_sp)
    dense = torch.from_numpy(adj_sp.toarray())
    x = torch.randn(12, 3, requires_grad=True)
    w = torch.randn(12, 3)
    (symmetric_spmm(adj, symmetric_spmm(adj, x)) * w).sum().backward()
    expected = x.detach().clone().requires_grad_(True)
    (dense @ (dense @ expected) * w).sum().backward()
    torch.testing.assert_close(x.grad, expected.grad)
