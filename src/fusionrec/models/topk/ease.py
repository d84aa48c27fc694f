"""EASE: Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.

An item-item linear model fitted in closed form on the binary training matrix X (U x I):

    min_B ‖X - X B‖²_F + λ ‖B‖²_F   s.t. diag(B) = 0
    P = (XᵀX + λ I)⁻¹,    B = I - P · diag(1 / diag(P))   (B_ij = -P_ij / P_jj, B_jj = 0)
    x̂_u = X_u B

Args (``EASEConfig``):
    l2: λ, default 500 (Cornac's ``lamb``); the paper tunes it per data set (ml-100k: configs/ml100k/ease.yaml).
    max_items: refuse catalogues larger than this (default 30,000): B and the inverse are dense I x I
        matrices (about 16 I² bytes at the peak of the fit, 4 I² bytes for B afterwards).

It has no trainable parameters, so ``fit()`` does not optimise it and evaluates it once on validation
(status ``closed_form``); ``loss()`` raises a :class:`~fusionrec.errors.FusionrecError` saying so.

Note:
    X is the training split only (binary); validation and test interactions never enter B or the
    user rows X_u. B is computed in float64 (Cholesky factorisation of the Gram matrix, which is
    positive definite for λ > 0, rather than the paper's generic inverse) and kept in float32, the
    precision of the scores. B is recomputed by ``from_dataset`` (a non-persistent buffer) rather
    than saved in checkpoints: it is a deterministic function of the training data (whose fingerprint
    the run record checks on reload) and λ, and saving it would write I² floats twice per run
    (best.pt and last.pt: 11 MB each on ml-100k, 3.6 GB each at 30,000 items) while ``load_run``
    rebuilds the model through ``from_dataset`` anyway.

    Cornac 3.0.1's EASE clips B's negative weights by default (``posB=True``, although its docstring
    says False); the paper keeps them, as here. On the ml-100k peer split at λ = 500, clipping B of
    this implementation reproduces Cornac's test Recall/NDCG@20 (0.380 / 0.323), without it 0.393 / 0.336.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import Tensor

from fusionrec.data.batches import UserBatch
from fusionrec.errors import ConfigError, FusionrecError
from fusionrec.models.base import LossOutput, ModelConfig, Recommender, Scorer
from fusionrec.registry import MODELS

PEAK_BYTES_PER_ENTRY = 16  # the float64 Gram matrix and its Cholesky factor (or the inverse) at once


class EASEConfig(ModelConfig):
    name: str = "ease"
    l2: float = Field(500.0, gt=0, description="λ, the L2 weight of B (Cornac's lamb)")
    max_items: int = Field(
        30_000,
        gt=0,
        description="refuse larger catalogues: B is a dense I x I matrix (about 16 I² bytes while it is computed)",
    )


def item_gram(interactions: sp.spmatrix, chunk_size: int = 2048) -> np.ndarray:
    """XᵀX (I, I) in float64, computed in column chunks so that no sparse I x I product is held at once."""
    x = sp.csc_matrix(interactions, dtype=np.float64)  # (U, I)
    xt = x.T.tocsr()  # (I, U)
    num_items = x.shape[1]
    gram = np.empty((num_items, num_items), dtype=np.float64)  # (I, I)
    for start in range(0, num_items, chunk_size):  # a loop over item chunks, not items: bounded memory
        stop = min(start + chunk_size, num_items)
        gram[:, start:stop] = (xt @ x[:, start:stop]).toarray()
    return gram


def ease_weights(interactions: sp.spmatrix, l2: float) -> Tensor:
    """EASE's item-item matrix B (I, I), float32, zero diagonal: B = I - P diag(1/diag(P)), P = (XᵀX + λI)⁻¹."""
    gram = torch.from_numpy(item_gram(interactions))  # (I, I) float64
    gram.diagonal().add_(l2)
    factor = torch.linalg.cholesky(gram)  # (I, I), lower triangular
    del gram
    p = torch.cholesky_inverse(factor)  # (I, I) = (XᵀX + λI)⁻¹
    del factor
    p.div_(-p.diagonal().clone())  # column j divided by -P_jj
    p.fill_diagonal_(0.0)
    return p.to(torch.float32)


def _sparse_rows(interactions: sp.spmatrix) -> Tensor:
    """The binary matrix as a coalesced torch sparse COO tensor (row selection with ``index_select``)."""
    coo = sp.coo_matrix(interactions)
    coo.sum_duplicates()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))  # (2, nnz)
    values = torch.ones(indices.shape[1], dtype=torch.float32)
    return torch.sparse_coo_tensor(indices, values, coo.shape, is_coalesced=True, check_invariants=False)


@MODELS.register("ease", config=EASEConfig, task="topk", paper="Steck, WWW 2019", modalities="none")
class EASE(Recommender):
    """Scores x̂_u = X_u B with B fitted in closed form on the training matrix.

    Args:
        interactions: binary training matrix X (U, I), scipy sparse.
        l2: λ (default 500).

    Shapes:
        history: sparse COO (U, I), X
        weights: (I, I), B with a zero diagonal
        score: UserBatch users (B,) -> (B, I) or (B, C)
    """

    history: Tensor  # buffer, sparse COO (U, I)
    weights: Tensor  # buffer (I, I)

    def __init__(self, interactions: sp.spmatrix, l2: float = 500.0) -> None:
        super().__init__()
        self.l2 = l2
        start = time.perf_counter()
        self.register_buffer("history", _sparse_rows(interactions), persistent=False)  # (U, I)
        self.register_buffer("weights", ease_weights(interactions, l2), persistent=False)  # (I, I)
        self.fit_seconds = time.perf_counter() - start

    @classmethod
    def from_dataset(cls, config: EASEConfig, dataset) -> EASE:
        num_items = dataset.num_items
        if num_items > config.max_items:
            need = PEAK_BYTES_PER_ENTRY * num_items**2 / 2**30
            raise ConfigError(
                f"ease: {dataset.name} has {num_items:,} items > model.max_items={config.max_items:,}; "
                f"EASE inverts a dense I x I matrix, which needs about {need:,.1f} GiB of memory here; "
                "raise model.max_items if the machine has it, or pick an embedding model (bpr, lightgcn)"
            )
        return cls(dataset.matrix("train"), config.l2)

    def loss(self, batch: object) -> LossOutput:
        """Refuses: EASE has no training loss (B is fitted in closed form in ``from_dataset``)."""
        raise FusionrecError(
            "ease has no trainable parameters and no training loss: B is fitted in closed form when "
            "the model is built; fusionrec's fit() evaluates it once on validation instead"
        )

    def extra_record(self) -> dict[str, Any]:
        """The closed-form fit's wall time (the run's history says ``train_s`` 0: nothing is optimised)."""
        return {"fit_s": round(self.fit_seconds, 4)}

    def score(self, batch: UserBatch) -> Tensor:
        return self.scorer()(batch.users, batch.items)

    def scorer(self) -> Scorer:
        history, weights = self.history, self.weights

        def score(users: Tensor, items: Tensor | None) -> Tensor:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
                rows = history.index_select(0, users).to_sparse_csr()  # sparse (B, I), the users' training items
            columns = weights if items is None else weights[:, items]  # (I, C)
            return rows @ columns  # (B, C), float32; CSR @ dense costs nnz(rows) x C (COO's kernel is ~8x slower)

        return score
