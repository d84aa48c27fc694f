"""Edge-valued sparse ops (SDDMM, SpMM with value gradients, segment softmax) and the chunked kNN graph."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fusionrec.nn.fusion import GatedGraphAttentionConv
from fusionrec.nn.graph import CSRGraph, edge_dot, edge_spmm, knn_graph, segment_softmax


def random_graph(num_dst=7, num_src=5, density=0.4, seed=0):
    matrix = sp.random(num_dst, num_src, density=density, random_state=seed, format="csr")
    return matrix, CSRGraph.from_scipy(matrix)


def test_csr_graph_orders_edges_and_transposes():
    matrix, graph = random_graph()
    coo = matrix.tocoo()
    assert graph.num_edges == matrix.nnz
    assert torch.all(graph.row[1:] >= graph.row[:-1])  # CSR order: sorted by target
    values = torch.randn(graph.num_edges, dtype=torch.float64)
    dense = torch.zeros(7, 5, dtype=torch.float64)
    dense[graph.row, graph.col] = values
    torch.testing.assert_close(graph.matrix(values).to_dense(), dense)
    torch.testing.assert_close(graph.transpose_matrix(values).to_dense(), dense.T)
    assert sorted(zip(coo.row.tolist(), coo.col.tolist())) == list(zip(graph.row.tolist(), graph.col.tolist()))
    torch.testing.assert_close(graph.source_degree, torch.from_numpy(np.asarray((matrix != 0).sum(0)).ravel()).float())


def test_edge_dot_and_edge_spmm_match_dense_with_gradients():
    _, graph = random_graph()
    a = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    values = torch.randn(graph.num_edges, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda a, b: edge_dot(graph, a, b), (a, b))
    torch.autograd.gradcheck(lambda v, b: edge_spmm(graph, v, b), (values, b))
    torch.testing.assert_close(edge_dot(graph, a, b), (a[graph.row] * b[graph.col]).sum(-1))
    dense = torch.zeros(7, 5, dtype=torch.float64).index_put((graph.row, graph.col), values)
    torch.testing.assert_close(edge_spmm(graph, values, b), dense @ b)


def test_segment_softmax_sums_to_one_per_segment_and_is_shift_safe():
    scores = torch.tensor([1.0, 2.0, 3.0, 1000.0, 1001.0, -5.0])
    index = torch.tensor([0, 0, 0, 2, 2, 3])
    out = segment_softmax(scores, index, 5)
    torch.testing.assert_close(out[:3], torch.softmax(scores[:3], 0))
    torch.testing.assert_close(out[3:5], torch.softmax(torch.tensor([0.0, 1.0]), 0))
    assert out[5] == 1.0 and torch.isfinite(out).all()


def test_knn_graph_matches_brute_force_in_any_chunking_and_respects_mask():
    torch.manual_seed(0)
    x = torch.randn(23, 4)
    mask = torch.ones(23, dtype=torch.bool)
    mask[[3, 10]] = False
    sim = torch.nn.functional.normalize(x, dim=-1) @ torch.nn.functional.normalize(x, dim=-1).T
    sim.fill_diagonal_(-float("inf"))
    sim[:, ~mask] = -float("inf")
    for chunk in (1, 5, 100):
        graph = knn_graph(x, 3, chunk_size=chunk, mask=mask)
        assert graph.shape == (23, 23)
        for i in range(23):
            cols = set(graph[i].indices.tolist())
            if not mask[i]:
                assert not cols and graph[:, i].nnz == 0
                continue
            top = sim[i].topk(3)
            assert cols == {j for j, v in zip(top.indices.tolist(), top.values.tolist()) if v > 0}
            assert graph[i, i] == 0


def test_gated_graph_attention_on_csr_graph_equals_message_passing():
    torch.manual_seed(0)
    conv = GatedGraphAttentionConv(4, 3).double()
    edges = torch.randint(0, 9, (2, 40))
    edges = torch.unique(edges, dim=1)  # CSR holds each edge once
    graph = CSRGraph.from_edge_index(edges, 9, remove_self_loops=True)
    x = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(9, 3, dtype=torch.float64)
    reference = conv(x, edges)
    (reference.out * weight).sum().backward()
    grads = [x.grad.clone(), conv.lin.weight.grad.clone()]
    x.grad = None
    conv.zero_grad()
    fused = conv(x, graph)
    (fused.out * weight).sum().backward()
    torch.testing.assert_close(fused.out, reference.out)
    torch.testing.assert_close(x.grad, grads[0])
    torch.testing.assert_close(conv.lin.weight.grad, grads[1])
    # the same neighbour weights, found by (target, source)
    keep = edges[0] != edges[1]
    reference_weights = reference.weights.detach()[keep]
    by_edge = {(int(t), int(s)): float(w) for s, t, w in zip(edges[0][keep], edges[1][keep], reference_weights)}
    for t, s, w in zip(graph.row.tolist(), graph.col.tolist(), fused.weights.detach().tolist()):
        assert w == pytest.approx(by_edge[(t, s)])
    torch.autograd.gradcheck(lambda x: conv(x, graph).out, (x,))
