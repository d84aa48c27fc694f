"""A dependency-free text modality: TF-IDF followed by a truncated SVD (latent semantic analysis).

Used so that every built-in data set has a usable text vector per item without optional extras;
``fusionrec features extract --modality text`` replaces it with a sentence encoder.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import scipy.sparse as sp

_TOKEN = re.compile(r"[a-z0-9]+")


def tfidf_matrix(texts: list[str], min_df: int = 2) -> sp.csr_matrix:
    tokenised = [_TOKEN.findall(t.lower()) for t in texts]
    df = Counter(tok for toks in tokenised for tok in set(toks))
    vocab = {tok: j for j, tok in enumerate(sorted(t for t, c in df.items() if c >= min_df))}
    rows, cols, vals = [], [], []
    for i, toks in enumerate(tokenised):
        counts = Counter(t for t in toks if t in vocab)
        for tok, c in counts.items():
            rows.append(i)
            cols.append(vocab[tok])
            vals.append(1.0 + np.log(c))
    mat = sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), max(1, len(vocab))), dtype=np.float64)
    idf = np.log((1 + len(texts)) / (1 + np.array([df[t] for t in sorted(vocab, key=vocab.get)] or [1]))) + 1
    mat = mat @ sp.diags(idf)
    norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=1)).ravel())
    return sp.diags(1 / np.maximum(norms, 1e-12)) @ mat


def lsa_embeddings(texts: list[str], dim: int = 64, seed: int = 0) -> np.ndarray:
    """Unit-norm ``(len(texts), dim)`` float32 LSA vectors (fewer columns if the vocabulary is tiny).

    The truncated SVD is a seeded randomized SVD (Halko et al., 2011, with power iterations):
    deterministic, and a few sparse products instead of an ARPACK run.
    """
    mat = tfidf_matrix(texts)
    k = max(1, min(dim, min(mat.shape) - 1))
    u, s = _randomized_svd(mat, k, seed)
    emb = u * s
    emb = emb * np.sign(emb[np.abs(emb).argmax(axis=0), np.arange(emb.shape[1])])  # deterministic sign
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    out[:, : emb.shape[1]] = emb
    return out


def _randomized_svd(mat: sp.spmatrix, k: int, seed: int, oversample: int = 10,
                    n_iter: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` left singular vectors and values of ``mat`` (rows x cols), largest first."""
    rng = np.random.default_rng(seed)
    width = min(k + oversample, min(mat.shape))
    q, _ = np.linalg.qr(mat @ rng.standard_normal((mat.shape[1], width)))
    for _ in range(n_iter):
        q, _ = np.linalg.qr(mat.T @ q)
        q, _ = np.linalg.qr(mat @ q)
    small = np.asarray((mat.T @ q).T)  # (width, cols)
    u_small, s, _ = np.linalg.svd(small, full_matrices=False)
    return (q @ u_small)[:, :k], s[:k]
