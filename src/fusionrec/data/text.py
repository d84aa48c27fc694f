"""A dependency-free text modality: TF-IDF followed by a truncated SVD (latent semantic analysis).

Used so that every built-in data set has a usable text vector per item without optional extras;
``fusionrec features extract --modality text`` replaces it with a sentence encoder.

What the fit sees: the vocabulary, the idf and the SVD basis are statistics of a corpus. They are
fitted on the texts selected by ``fit`` (callers pass the items that occur in training, see
:func:`fusionrec.data.content.training_item_mask`) and every text is then folded in (its TF-IDF row
times the basis), so a text outside ``fit`` changes nothing but its own vector.

Determinism: singular vectors are unique only up to sign, and within a group of tied singular
values only up to a rotation, so two SVD solvers (or two seeds) may return different but equally
valid bases. :func:`canonical_components` makes the basis a function of the corpus alone.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

_TOKEN = re.compile(r"[a-z0-9]+")
TIE_RTOL = 1e-6  # singular values (relative to the largest) and loadings closer than this count as tied
TIE_MARGIN = 8  # components computed past the k kept, so that a tie at the k-th value can be resolved


@dataclass
class Tfidf:
    """A fitted TF-IDF: ``vocab`` (terms in at least ``min_df`` fitted texts, sorted) and their ``idf``.

    ``transform`` weights ``1 + log(tf)`` by ``idf = log((1 + N) / (1 + df)) + 1`` and L2-normalises rows;
    terms outside the vocabulary are ignored.
    """

    vocab: dict[str, int]
    idf: np.ndarray

    @classmethod
    def fit(cls, texts: Sequence[str], min_df: int = 2) -> Tfidf:
        df = Counter(tok for text in texts for tok in set(_TOKEN.findall((text or "").lower())))
        terms = sorted(t for t, c in df.items() if c >= min_df)
        idf = np.log((1 + len(texts)) / (1 + np.array([df[t] for t in terms] or [1], dtype=np.float64))) + 1
        return cls({t: j for j, t in enumerate(terms)}, idf[: max(1, len(terms))])

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """``(len(texts), max(1, |vocab|))`` L2-normalised TF-IDF rows (zero rows for texts without a known term)."""
        rows, cols, vals = [], [], []
        for i, text in enumerate(texts):
            counts = Counter(t for t in _TOKEN.findall((text or "").lower()) if t in self.vocab)
            for tok, c in counts.items():
                rows.append(i)
                cols.append(self.vocab[tok])
                vals.append(1.0 + np.log(c))
        mat = sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), max(1, len(self.vocab))), dtype=np.float64)
        mat = mat @ sp.diags(self.idf)
        norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=1)).ravel())
        return (sp.diags(1 / np.maximum(norms, 1e-12)) @ mat).tocsr()


def tfidf_matrix(texts: list[str], min_df: int = 2) -> sp.csr_matrix:
    """TF-IDF rows of ``texts`` with the vocabulary and idf fitted on ``texts`` themselves."""
    return Tfidf.fit(texts, min_df).transform(texts)


def canonical_components(
    mat: sp.spmatrix, components: np.ndarray, singular: np.ndarray, k: int | None = None, rtol: float = TIE_RTOL
) -> np.ndarray:
    """A unique basis ``(V, k)`` for the top-``k`` right singular vectors of ``mat`` (N, V), from its
    leading ``components`` (V, K) and ``singular`` values (K,), K >= k (all K when ``k`` is None).

    Pass a few more than ``k`` components: when the k-th singular value is tied with the next ones,
    which k-dimensional part of the tied subspace is "the top k" is only defined after step 1 has
    ordered the whole tied group (a group that runs past the K given stays solver-dependent).

    1. Within each group of tied singular values (``singular`` sorted descending, neighbours closer
       than ``rtol`` times the largest) the basis is replaced by a canonical one: Gram-Schmidt over the
       projections of the vocabulary's unit vectors onto the group's subspace, taking at each step the
       term with the largest remaining projection (the lowest term index among those within ``rtol``
       of it). The projections do not depend on the basis a solver returned, so neither does the result.
    2. Each column's sign makes the largest-``|.|`` coordinate of ``mat @ v`` (the fitted texts'
       vectors) positive; among coordinates within ``rtol`` of the largest, the lowest row decides.
    """
    v = np.array(components, dtype=np.float64, copy=True)
    s = np.asarray(singular, dtype=np.float64)
    total = v.shape[1]
    k = total if k is None else min(k, total)
    if k == 0:
        return v[:, :0]
    scale = max(float(np.abs(s).max()), 1e-300)
    start = 0
    while start < k:  # groups that start past k are dropped anyway
        stop = start + 1
        while stop < total and abs(s[stop - 1] - s[stop]) <= rtol * scale:
            stop += 1
        if stop - start > 1:
            v[:, start:stop] = _canonical_subspace(v[:, start:stop], rtol)
        start = stop
    v = v[:, :k]
    emb = np.asarray(mat @ v)  # (N, k)
    mags = np.abs(emb)
    top = (mags >= mags.max(axis=0, keepdims=True) * (1 - rtol)).argmax(axis=0)  # first row near the max
    sign = np.sign(emb[top, np.arange(k)])
    sign[sign == 0] = 1.0
    return v * sign


def _canonical_subspace(basis: np.ndarray, rtol: float) -> np.ndarray:
    """Canonical orthonormal basis (V, g) of the span of ``basis`` (V, g, orthonormal columns)."""
    coords = basis  # row t: the coordinates of term t's projection onto the subspace
    picked: list[np.ndarray] = []
    for _ in range(basis.shape[1]):
        residual = coords if not picked else coords - (coords @ np.stack(picked).T) @ np.stack(picked)  # (V, g)
        norms = np.linalg.norm(residual, axis=1)
        pivot = int(np.argmax(norms >= norms.max() * (1 - rtol)))
        picked.append(residual[pivot] / norms[pivot])
    return basis @ np.stack(picked).T  # (V, g); column i has the coordinates picked[i]


def lsa_embeddings(
    texts: list[str], dim: int = 64, seed: int = 0, fit: Sequence[bool] | np.ndarray | None = None
) -> np.ndarray:
    """Unit-norm ``(len(texts), dim)`` float32 LSA vectors (fewer columns if the vocabulary is tiny).

    The vocabulary, idf and SVD basis are fitted on the texts where ``fit`` is True (all when None);
    every text's vector is its TF-IDF row times that basis, L2-normalised. The truncated SVD is a
    seeded randomized SVD (Halko et al., 2011, with power iterations): a few sparse products instead
    of an ARPACK run; its basis is made unique by :func:`canonical_components`.
    """
    texts = [t or "" for t in texts]
    corpus = texts if fit is None else [t for t, keep in zip(texts, np.asarray(fit, dtype=bool)) if keep]
    model = Tfidf.fit(corpus)
    mat = model.transform(corpus)
    k = max(1, min(dim, min(mat.shape) - 1))
    components, s = _randomized_svd(mat, min(k + TIE_MARGIN, max(1, min(mat.shape))), seed)
    components = canonical_components(mat, components, s, k)
    emb = unit_rows(np.asarray(model.transform(texts) @ components))  # (N, k)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    out[:, : emb.shape[1]] = emb
    return out


def unit_rows(emb: np.ndarray, floor: float = 1e-8) -> np.ndarray:
    """Rows scaled to unit L2 norm; rows shorter than ``floor`` (a text with no loading on the kept
    components: TF-IDF rows have norm 1 or 0) become zero rather than amplified rounding noise."""
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return np.where(norms > floor, emb / np.maximum(norms, floor), 0.0)


def _randomized_svd(
    mat: sp.spmatrix, k: int, seed: int, oversample: int = 10, n_iter: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` right singular vectors ``(cols, k)`` and values of ``mat`` (rows x cols), largest first."""
    rng = np.random.default_rng(seed)
    width = max(1, min(k + oversample, min(mat.shape)))
    q, _ = np.linalg.qr(mat @ rng.standard_normal((mat.shape[1], width)))
    for _ in range(n_iter):
        q, _ = np.linalg.qr(mat.T @ q)
        q, _ = np.linalg.qr(mat @ q)
    small = np.asarray((mat.T @ q).T)  # (width, cols)
    _, s, vt = np.linalg.svd(small, full_matrices=False)
    return vt[:k].T, s[:k]
