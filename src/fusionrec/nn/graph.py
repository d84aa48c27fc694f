"""Graph helpers shared by graph recommenders: normalised user-item adjacency and propagation."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor


def sym_normalize(adj: sp.spmatrix) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2``; rows and columns of isolated nodes stay zero."""
    adj = sp.csr_matrix(adj, dtype=np.float32)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    nonzero = degree > 0
    inv_sqrt[nonzero] = degree[nonzero] ** -0.5
    d = sp.diags(inv_sqrt)
    return (d @ adj @ d).tocsr().astype(np.float32)


def bipartite_adjacency(interactions: sp.csr_matrix) -> sp.csr_matrix:
    """The symmetric ``(U+I) x (U+I)`` adjacency ``[[0, R], [R^T, 0]]`` of a user x item matrix ``R``."""
    r = sp.csr_matrix(interactions, dtype=np.float32)
    r.data[:] = 1.0
    return sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)


def to_torch_sparse(matrix: sp.spmatrix) -> Tensor:
    """A scipy matrix as a torch sparse CSR tensor (fast ``sparse @ dense`` forward and backward)."""
    csr = sp.csr_matrix(matrix, dtype=np.float32)
    csr.sort_indices()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            torch.from_numpy(csr.data),
            size=csr.shape,
        )


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ X`` for a symmetric sparse ``A``: the gradient ``A^T G`` is ``A G``.

    torch's own backward for ``sparse_csr @ dense`` transposes ``A`` on every call; with the
    symmetry known this is about three times faster on CPU (benchmarks/perf notes).
    """

    @staticmethod
    def forward(ctx, adj: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj = adj
        return adj @ x

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor]:  # type: ignore[override]
        return None, ctx.adj @ grad


def symmetric_spmm(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` for a symmetric sparse ``adj`` (N, N) and dense ``x`` (N, D), with a cheap backward."""
    return _SymmetricSpMM.apply(adj, x)


def mean_propagate(adj: Tensor, embeddings: Tensor, num_layers: int) -> Tensor:
    """LightGCN propagation: the mean of ``A^k E`` for ``k = 0..num_layers``.

    Shapes: adj (N, N) sparse and symmetric, embeddings (N, D) -> (N, D).
    """
    total = embeddings
    current = embeddings
    for _ in range(num_layers):
        current = symmetric_spmm(adj, current)  # (N, D)
        total = total + current
    return total / (num_layers + 1)
