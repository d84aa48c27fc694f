"""An approximate nearest-neighbour index (FAISS, CPU) for models whose score is an inner product.

A model whose scorer is an :class:`~fusionrec.models.base.EmbeddingScorer` scores ``<u, i> + b_i``;
with the bias folded into one more dimension (``[i, b_i]`` against ``[u, 1]``) that is a maximum
inner-product search, which FAISS answers approximately. Kinds: ``flat`` (exact, FAISS's brute force),
``ivf`` (inverted lists over k-means cells, ``nprobe`` of them searched), ``hnsw`` (a navigable graph, on L2 distances after the MIPS-to-L2 reduction).
``auto`` picks ``ivf`` from 100,000 items and no index below (exact scoring is already fast there).

The index is checked when it is built: for up to 200 users, its top-k (seen items excluded) against the
exact top-k gives recall@k, and the mean latency of one query both ways; ``describe()`` reports them.
Excluded and filtered items are handled by over-fetching; a query the index cannot fill falls back to
exact scoring of that user.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from fusionrec.errors import ConfigError, FusionrecError
from fusionrec.models.base import EmbeddingScorer

AUTO_MIN_ITEMS = 100_000
KINDS = ("auto", "none", "flat", "ivf", "hnsw")


def build_index(factors: EmbeddingScorer, kind: str, seen: sp.csr_matrix, recall_k: int = 10) -> AnnIndex | None:
    """The index of ``kind`` over the model's item factors, checked against exact scoring; None for
    ``none``, or ``auto`` on a catalogue small enough to score exactly."""
    if kind not in KINDS:
        raise ConfigError(f"unknown ANN kind {kind!r}; choose one of {', '.join(KINDS)}")
    num_items = int(factors.item_emb.shape[0])
    if kind == "none" or (kind == "auto" and num_items < AUTO_MIN_ITEMS):
        return None
    return AnnIndex(factors, "ivf" if kind == "auto" else kind, seen, recall_k)


class AnnIndex:
    """FAISS inner-product search over ``[item, bias]`` rows, queried with ``[user, 1]``."""

    def __init__(self, factors: EmbeddingScorer, kind: str, seen: sp.csr_matrix, recall_k: int = 10) -> None:
        try:
            import faiss
        except ImportError:
            raise FusionrecError("an ANN index needs faiss (pip install faiss-cpu); or serve with --ann none") from None
        self.kind = kind
        self.users, self.items = _augmented(factors)
        self.seen = seen
        d = self.items.shape[1]
        start = time.perf_counter()
        index: Any
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "hnsw":  # a graph on L2 distances after the MIPS-to-L2 reduction (see _l2_reduction)
            index = faiss.IndexHNSWFlat(d + 1, 32)
            index.hnsw.efSearch = 128
        else:
            cells = int(max(1, min(4096, round(4 * np.sqrt(len(self.items))))))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, cells, faiss.METRIC_INNER_PRODUCT)
            sample = np.random.default_rng(0).permutation(len(self.items))[: max(cells * 40, 10_000)]
            index.train(self.items[np.sort(sample)])
            index.nprobe = max(1, cells // 16)
        self.queries = self.users
        if kind == "hnsw":
            self.queries, stored = _l2_reduction(self.users, self.items)
            index.add(stored)
        else:
            index.add(self.items)
        self.index = index
        self.build_s = time.perf_counter() - start
        self.check = self._measure(recall_k)

    def describe(self) -> dict[str, Any]:
        return {"kind": f"faiss-{self.kind}", "items": len(self.items), "build_s": round(self.build_s, 3), **self.check}

    def search(
        self, user: int, k: int, seen: sp.csr_matrix | None, allowed: np.ndarray | None
    ) -> tuple[list[int], list[float]]:
        """The ``k`` best items of ``user`` not in ``seen`` (1 x I) and ``allowed`` (bool I), best first."""
        excluded = set() if seen is None else set(seen.indices.tolist())
        fetch = min(len(self.items), k + len(excluded) + (4 * k if allowed is not None else 0))
        _, ids = self.index.search(self.queries[user : user + 1], fetch)
        kept = [int(i) for i in ids[0] if i >= 0 and i not in excluded and (allowed is None or allowed[i])][:k]
        found = [(i, float(self.items[i] @ self.users[user])) for i in kept]  # the model's score, not the index's
        if len(found) < k and len(found) < len(self.items) - len(excluded):  # the index ran dry: score exactly
            found = self._exact(user, k, excluded, allowed)
        return [i for i, _ in found], [s for _, s in found]

    def _exact(self, user: int, k: int, excluded: set[int], allowed: np.ndarray | None) -> list[tuple[int, float]]:
        scores = self.items @ self.users[user]
        if excluded:
            scores[list(excluded)] = -np.inf
        if allowed is not None:
            scores[~allowed] = -np.inf
        k = min(k, len(scores))
        best = np.argpartition(-scores, k - 1)[:k]  # the k largest, then sorted: no full sort of the catalogue
        top = best[np.argsort(-scores[best], kind="stable")]
        return [(int(i), float(scores[i])) for i in top if np.isfinite(scores[i])]

    def _measure(self, k: int, num_users: int = 200) -> dict[str, Any]:
        users = np.random.default_rng(0).permutation(len(self.users))[:num_users]
        hits = total = 0
        ann_s = exact_s = 0.0
        for u in users:
            seen = self.seen[[int(u)]]
            start = time.perf_counter()
            approx, _ = self.search(int(u), k, seen, None)
            ann_s += time.perf_counter() - start
            start = time.perf_counter()
            exact = self._exact(int(u), k, set(seen.indices.tolist()), None)
            exact_s += time.perf_counter() - start
            hits += len(set(approx) & {i for i, _ in exact})
            total += len(exact)
        return {
            f"recall@{k}_vs_exact": round(hits / max(total, 1), 4),
            "checked_users": len(users),
            "ann_ms_per_query": round(1000 * ann_s / max(len(users), 1), 3),
            "exact_ms_per_query": round(1000 * exact_s / max(len(users), 1), 3),
        }


def _l2_reduction(queries: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum inner product as nearest neighbour in L2 (Bachrach et al., RecSys 2014): items get one more
    coordinate ``sqrt(M^2 - |x|^2)`` (M the largest item norm) so that all have norm M, queries a 0 there;
    then ``|q - x|^2 = |q|^2 + M^2 - 2 <q, x>`` is smallest where ``<q, x>`` is largest. Graph indexes are
    built for L2 and lose recall on raw inner products of vectors of unequal norms."""
    norms = np.einsum("ij,ij->i", items, items)
    extra = np.sqrt(np.maximum(norms.max() - norms, 0.0)).astype(np.float32)
    return (
        np.ascontiguousarray(np.hstack([queries, np.zeros((len(queries), 1), dtype=np.float32)])),
        np.ascontiguousarray(np.hstack([items, extra[:, None]])),
    )


def _augmented(factors: EmbeddingScorer) -> tuple[np.ndarray, np.ndarray]:
    users = factors.user_emb.detach().float().cpu().numpy()
    items = factors.item_emb.detach().float().cpu().numpy()
    bias = (
        np.zeros(len(items), dtype=np.float32)
        if factors.item_bias is None
        else factors.item_bias.detach().float().cpu().numpy().reshape(-1)
    )
    return (
        np.ascontiguousarray(np.hstack([users, np.ones((len(users), 1), dtype=np.float32)])),
        np.ascontiguousarray(np.hstack([items, bias[:, None]])),
    )
