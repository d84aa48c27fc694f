"""Modalities built from item tables: text vectors and multi-hot categories."""

from __future__ import annotations

import numpy as np

from fusionrec.data.dataset import Modality
from fusionrec.data.text import lsa_embeddings


def text_modality(texts: list[str], dim: int, what: str) -> Modality:
    """LSA vectors of ``texts``; empty texts are flagged missing."""
    present = np.array([bool(t and t.strip()) for t in texts])
    values = lsa_embeddings([t or "" for t in texts], dim) * present[:, None]
    return Modality(values, present, "dense", f"tfidf-lsa-{dim} of {what}")


def category_modality(categories: list[str], what: str, sep: str = "|", ignore: tuple[str, ...] = ()) -> Modality:
    """Multi-hot codes of ``sep``-joined categories; items without one are flagged missing."""
    lists = [[c for c in (s or "").split(sep) if c and c not in ignore] for s in categories]
    labels = sorted({c for cs in lists for c in cs})
    column = {c: j for j, c in enumerate(labels)}
    rows = np.repeat(np.arange(len(lists)), [len(cs) for cs in lists])
    cols = np.array([column[c] for cs in lists for c in cs], dtype=np.int64)
    values = np.zeros((len(lists), len(labels)), dtype=np.float32)
    values[rows, cols] = 1.0
    return Modality(values, values.sum(axis=1) > 0, "categorical", f"{what} (multi-hot)", labels)
