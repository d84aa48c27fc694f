"""Review documents for review-based rating prediction, built from TRAINING reviews only.

A review model reads, for a (user, item) pair, the user's document (reviews the user wrote) and the
item's document (reviews written about the item). The classic leak of this family is to build those
documents from every review, so that the review written for a validation or test pair (which says,
in words, what the held-out rating is) sits in the documents the model reads at test time. Here:

- the vocabulary (words in at least ``min_word_count`` training reviews, the ``max_vocab`` most
  frequent, ties by spelling) is counted on training reviews only;
- a document holds training reviews only: the review of a valid or test interaction enters no
  document and no count;
- each document keeps at most ``max_reviews`` reviews (the latest by timestamp, else the last rows)
  and each review its first ``max_words`` in-vocabulary words (out-of-vocabulary words are dropped,
  not mapped to an unknown token); a review with no in-vocabulary word enters no document
  (counted in ``stats["reviews_without_words"]``).

Tokens are lower-cased runs of ``[a-z0-9]`` (the tokeniser of :mod:`fusionrec.data.text`).
Tokenising runs over chunks of reviews with pandas string methods, so 10^6 reviews stay in
bounded memory.

Shapes:
    N training reviews with words, L = max_words, R = max_reviews, U users, I items.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from torch import Tensor

from fusionrec.data.batches import _Batch
from fusionrec.data.dataset import TRAIN, Dataset
from fusionrec.errors import DataError

PAD_WORD = 0  # word id of padding; real words are 1..V-1
NO_REVIEW = -1  # review id of an empty document slot
_TOKEN = re.compile(r"[a-z0-9]+")
_CHUNK = 200_000


@dataclass(frozen=True)
class DocumentSpec:
    """How documents are cut: review count and length caps and the vocabulary's size."""

    max_reviews: int = 10
    max_words: int = 60
    min_word_count: int = 2
    max_vocab: int = 20_000

    def __post_init__(self) -> None:
        for name in ("max_reviews", "max_words", "min_word_count", "max_vocab"):
            if getattr(self, name) < 1:
                raise DataError(f"document setting {name} must be at least 1, got {getattr(self, name)}")


@dataclass
class ReviewCorpus:
    """Training reviews as word ids, and the user and item documents that index them.

    Attributes:
        words: word of each id; ``words[0]`` is the padding token.
        tokens: (N + 1, L) int32 word ids of each training review with words, 0 = padding; the last
            row is all padding (what an empty document slot gathers).
        review_user / review_item / review_row: (N,) the user, item and ``interactions`` row of each.
        user_docs: (U, R) review ids in each user's document, latest first, -1 = empty slot.
        item_docs: (I, R) the same for items.
        row_review: (num_interactions,) review id of each interaction row, -1 when the row is not a
            training row or its review has no words (used to hide a training pair's own review).
        stats: counts for the record (reviews, vocabulary size, truncations, empty reviews).
    """

    words: list[str]
    tokens: np.ndarray
    review_user: np.ndarray
    review_item: np.ndarray
    review_row: np.ndarray
    user_docs: np.ndarray
    item_docs: np.ndarray
    row_review: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def num_reviews(self) -> int:
        return len(self.review_user)

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def words_of(self, review: int) -> list[str]:
        """The kept words of training review ``review`` (padding dropped)."""
        return [self.words[w] for w in self.tokens[review] if w != PAD_WORD]


@dataclass(frozen=True)
class RatingBatch(_Batch):
    """(user, item) pairs with their ratings and, for review models, both documents.

    Shapes: users (B,), items (B,), ratings (B,) float32 (zeros when only predicting);
    user_words (B, R, L) word ids of the user's reviews (0 = padding); user_review_items (B, R) the
    item each of those reviews is about (-1 = empty slot); item_words (B, R, L) and
    item_review_users (B, R) the same for the item's document. Documents are None for models that
    read no text (global mean, biased MF).
    """

    users: Tensor
    items: Tensor
    ratings: Tensor
    user_words: Tensor | None = None
    user_review_items: Tensor | None = None
    item_words: Tensor | None = None
    item_review_users: Tensor | None = None


def tokenize(texts: pd.Series) -> pd.Series:
    """Lists of lower-case ``[a-z0-9]+`` tokens, one per text (missing text: no tokens)."""
    return texts.fillna("").astype(str).str.lower().str.findall(_TOKEN)


def count_words(texts: pd.Series) -> pd.Series:
    """Number of texts each word occurs in (document frequency), counted chunk by chunk."""
    total: pd.Series | None = None
    for start in range(0, len(texts), _CHUNK):
        tokens = tokenize(texts.iloc[start : start + _CHUNK].reset_index(drop=True)).explode().dropna()
        pairs = pd.DataFrame({"text": tokens.index.to_numpy(), "word": tokens.to_numpy()}).drop_duplicates()
        counts = pairs["word"].value_counts()
        total = counts if total is None else total.add(counts, fill_value=0)
    return (total if total is not None else pd.Series(dtype=np.int64)).astype(np.int64)


def fit_vocabulary(texts: pd.Series, spec: DocumentSpec) -> list[str]:
    """``["<pad>", words...]``: words in at least ``min_word_count`` texts, most frequent first (ties by
    spelling), at most ``max_vocab - 1`` of them."""
    counts = count_words(texts)
    counts = counts[counts >= spec.min_word_count]
    frame = pd.DataFrame({"word": counts.index.astype(str), "count": counts.to_numpy()})
    frame = frame.sort_values(["count", "word"], ascending=[False, True], kind="stable")
    return ["<pad>", *frame["word"].head(spec.max_vocab - 1).tolist()]


def encode_reviews(texts: pd.Series, words: list[str], max_words: int) -> tuple[np.ndarray, np.ndarray]:
    """``(len(texts), max_words)`` int32 ids of each text's first in-vocabulary words (0 = padding) and the
    number of in-vocabulary words each text had before truncation."""
    index = pd.Index(words)
    out = np.zeros((len(texts), max_words), dtype=np.int32)
    lengths = np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), _CHUNK):
        tokens = tokenize(texts.iloc[start : start + _CHUNK].reset_index(drop=True)).explode().dropna()
        ids = index.get_indexer(tokens.to_numpy())
        keep = ids > PAD_WORD
        rows = tokens.index.to_numpy()[keep]
        ids = ids[keep]
        position = pd.Series(rows).groupby(rows).cumcount().to_numpy()
        lengths[start : start + _CHUNK] = np.bincount(rows, minlength=min(_CHUNK, len(texts) - start))
        fits = position < max_words
        out[start + rows[fits], position[fits]] = ids[fits]
    return out, lengths


def documents(owner: np.ndarray, order_key: np.ndarray, num_owners: int, max_reviews: int) -> np.ndarray:
    """``(num_owners, max_reviews)`` review ids grouped by ``owner`` (review i belongs to ``owner[i]``),
    largest ``order_key`` first (ties: later review first), -1 in empty slots."""
    reviews = np.arange(len(owner))
    order = np.lexsort((-reviews, -order_key, owner))
    sorted_owner = owner[order]
    starts = np.searchsorted(sorted_owner, sorted_owner, side="left")
    rank = np.arange(len(order)) - starts
    keep = rank < max_reviews
    docs = np.full((num_owners, max_reviews), NO_REVIEW, dtype=np.int64)
    docs[sorted_owner[keep], rank[keep]] = order[keep]
    return docs


def build_corpus(dataset: Dataset, spec: DocumentSpec) -> ReviewCorpus:
    """The corpus of ``dataset``'s training reviews under ``spec`` (see the module docstring)."""
    inter = dataset.interactions
    if "review" not in inter:
        raise DataError(
            f"{dataset.name}: review models need an interaction column 'review' (review text); "
            f"have: {', '.join(inter.columns)}"
        )
    train_rows = np.flatnonzero(inter["split"].to_numpy() == TRAIN)
    texts = inter["review"].iloc[train_rows].reset_index(drop=True)
    words = fit_vocabulary(texts, spec)
    tokens, lengths = encode_reviews(texts, words, spec.max_words)
    has_words = lengths > 0
    kept_rows = train_rows[has_words]
    review_user = inter["user"].to_numpy()[kept_rows].astype(np.int64)
    review_item = inter["item"].to_numpy()[kept_rows].astype(np.int64)
    when = (
        inter["timestamp"].to_numpy()[kept_rows].astype(np.int64)
        if "timestamp" in inter
        else kept_rows.astype(np.int64)
    )
    user_docs = documents(review_user, when, dataset.num_users, spec.max_reviews)
    item_docs = documents(review_item, when, dataset.num_items, spec.max_reviews)
    row_review = np.full(len(inter), NO_REVIEW, dtype=np.int64)
    row_review[kept_rows] = np.arange(len(kept_rows))
    padded = np.concatenate([tokens[has_words], np.zeros((1, spec.max_words), dtype=np.int32)])
    stats = {
        "training_reviews": int(len(train_rows)),
        "reviews_without_words": int((~has_words).sum()),
        "vocabulary": len(words),
        "reviews_truncated": int((lengths[has_words] > spec.max_words).sum()),
        "users_over_review_cap": int((np.bincount(review_user, minlength=dataset.num_users) > spec.max_reviews).sum()),
        "items_over_review_cap": int((np.bincount(review_item, minlength=dataset.num_items) > spec.max_reviews).sum()),
    }
    return ReviewCorpus(words, padded, review_user, review_item, kept_rows, user_docs, item_docs, row_review, stats)


_CORPORA: dict[tuple[int, DocumentSpec], tuple[weakref.ref, ReviewCorpus]] = {}


def review_corpus(dataset: Dataset, spec: DocumentSpec) -> ReviewCorpus:
    """:func:`build_corpus`, computed once per (data set object, spec): a review model sizes its word
    table from it and its task gathers documents from the same corpus."""
    key = (id(dataset), spec)
    cached = _CORPORA.get(key)
    if cached is not None and cached[0]() is dataset:
        return cached[1]
    corpus = build_corpus(dataset, spec)
    for stale in [k for k, (ref, _) in _CORPORA.items() if ref() is None]:
        del _CORPORA[stale]
    _CORPORA[key] = (weakref.ref(dataset), corpus)
    return corpus
