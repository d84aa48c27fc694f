"""Modalities built from item tables: text vectors and multi-hot categories, and the items content
statistics are fitted on.

What content statistics see (docs/features.md): a statistic learnt from item content (the TF-IDF
vocabulary and idf, the SVD basis of LSA text vectors; in models, standardisation means and
deviations, k-means centroids) is fitted on the items that occur in training
(:func:`training_item_mask`) and then applied to every item, so items held out of training (every
test item of a cold-item split) do not shape it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fusionrec.data.dataset import TRAIN, Dataset, Modality
from fusionrec.data.text import lsa_embeddings


def training_item_mask(dataset: Dataset) -> np.ndarray:
    """Bool ``(I,)``: True for the items with at least one training interaction (``split == 0``).

    Every content statistic is fitted on these items and applied to all (docs/features.md, "What
    content statistics see"). A data set without training interactions (not split yet) gives all
    True: then there is nothing to hold out.
    """
    inter = dataset.interactions
    items = inter["item"].to_numpy()[inter["split"].to_numpy() == TRAIN]
    if not len(items):
        return np.ones(dataset.num_items, dtype=bool)
    return np.bincount(items.astype(np.int64), minlength=dataset.num_items)[: dataset.num_items] > 0


def text_modality(texts: list[str], dim: int, what: str, fit: Sequence[bool] | np.ndarray | None = None) -> Modality:
    """LSA vectors of ``texts``; empty texts are flagged missing.

    The TF-IDF vocabulary, idf and SVD basis are fitted on the non-empty texts where ``fit`` is True
    (pass :func:`training_item_mask` once the data set is split; None: every non-empty text) and
    every text is folded in, so a text outside ``fit`` changes only its own vector.
    """
    present = np.array([bool(t and t.strip()) for t in texts], dtype=bool)
    chosen = present if fit is None else present & np.asarray(fit, dtype=bool)
    values = lsa_embeddings([t or "" for t in texts], dim, fit=chosen) * present[:, None]
    scope = "" if fit is None else f", fitted on {int(chosen.sum())} training items"
    return Modality(values, present, "dense", f"tfidf-lsa-{dim} of {what}{scope}")


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
