"""What the rating models share: their config bases, the MSE loss, word vectors, the review CNN, the FM.

A rating model predicts one rating per (user, item) pair of a :class:`RatingBatch`:
``predict(batch) -> (B,)``; ``score(batch)`` is the same as a ``(B, 1)`` column (the library's
``(B, C)`` score convention with one candidate, the pair's item). A review model's config says which
documents its batches must carry (:meth:`RatingModelConfig.documents`), as a sequential model tells
its task what its sequences must hold; the task builds them from training reviews only.

Shapes: B batch, R reviews per document, L words per review, D word dim, K CNN filters.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from fusionrec.data.dataset import TRAIN, Dataset
from fusionrec.data.reviews import PAD_WORD, DocumentSpec, RatingBatch, ReviewCorpus
from fusionrec.errors import ConfigError, DataError
from fusionrec.models.base import LossOutput, ModelConfig

MINILM_DIM = 384


class RatingModelConfig(ModelConfig):
    """Base of the rating models' configs. Models that read no text need no documents."""

    def documents(self) -> DocumentSpec | None:
        return None


class ReviewModelConfig(RatingModelConfig):
    """Base of the review models' configs: how their documents are cut and their word vectors.

    The document settings are the same defaults for every review model, so that a comparison reads
    the same text; change them for all models of a comparison at once (``model.max_reviews=...``).
    """

    max_reviews: int = Field(10, gt=0, description="reviews kept per user and per item document (latest first)")
    max_words: int = Field(60, gt=0, description="in-vocabulary words kept per review (its first ones)")
    min_word_count: int = Field(2, gt=0, description="a word enters the vocabulary if in this many training reviews")
    max_vocab: int = Field(20_000, gt=1, description="vocabulary size, padding included (most frequent words)")
    word_dim: int = Field(64, gt=0, description="word vector size (384 with word_vectors=minilm)")
    word_vectors: Literal["scratch", "minilm"] = Field(
        "scratch",
        description="scratch: random, trained; minilm: all-MiniLM-L6-v2 input embeddings of each word's "
        "WordPiece pieces (averaged), then trained (needs the text extra)",
    )
    num_filters: int = Field(64, gt=0)
    window: int = Field(3, gt=0)
    dropout: float = Field(0.5, ge=0, lt=1)

    @model_validator(mode="after")
    def _minilm_dim(self) -> ReviewModelConfig:
        if self.word_vectors == "minilm" and self.word_dim != MINILM_DIM:
            raise ValueError(f"word_vectors=minilm gives {MINILM_DIM}-d word vectors: set word_dim={MINILM_DIM}")
        return self

    def documents(self) -> DocumentSpec:
        return DocumentSpec(self.max_reviews, self.max_words, self.min_word_count, self.max_vocab)


def training_ratings(dataset: Dataset) -> np.ndarray:
    """The ratings of the training split (what a model may fit its constants to)."""
    inter = dataset.interactions
    if "rating" not in inter:
        raise DataError(f"{dataset.name}: rating models need a 'rating' column; have: {', '.join(inter.columns)}")
    return inter["rating"].to_numpy()[inter["split"].to_numpy() == TRAIN].astype(np.float64)


def mse_loss(prediction: Tensor, batch: RatingBatch) -> LossOutput:
    loss = torch.mean((prediction - batch.ratings) ** 2)
    return LossOutput(loss, {"mse": loss.detach()})


def require_documents(batch: RatingBatch, model: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    if batch.user_words is None or batch.item_words is None:
        raise ConfigError(f"{model} reads review documents, and this batch has none (built for a model without text)")
    assert batch.user_review_items is not None and batch.item_review_users is not None
    return batch.user_words, batch.user_review_items, batch.item_words, batch.item_review_users


def word_table(corpus: ReviewCorpus, dim: int, vectors: str) -> nn.Embedding:
    """The trainable word table (padding row zero and frozen at zero), from scratch or MiniLM."""
    table = nn.Embedding(corpus.vocab_size, dim, padding_idx=PAD_WORD)
    with torch.no_grad():
        if vectors == "minilm":
            table.weight.copy_(torch.from_numpy(minilm_word_vectors(corpus.words)))
        else:
            nn.init.normal_(
                table.weight, std=1.0
            )  # torch default; a 0.1 start left the FM interaction inert for epochs
        table.weight[PAD_WORD] = 0.0
    return table


def minilm_word_vectors(words: list[str]) -> np.ndarray:
    """``(len(words), 384)``: each word's all-MiniLM-L6-v2 WordPiece input embeddings, averaged (row 0,
    padding, zero). Input (not contextual) embeddings, because a word of the vocabulary has no context."""
    from fusionrec.features.text import SentenceTransformerEncoder

    model = SentenceTransformerEncoder("minilm").model
    tokenizer = model.tokenizer
    embeddings = model[0].auto_model.embeddings.word_embeddings.weight.detach().cpu().numpy()
    pieces = tokenizer(words[1:], add_special_tokens=False)["input_ids"]
    out = np.zeros((len(words), embeddings.shape[1]), dtype=np.float32)
    for row, ids in enumerate(pieces, start=1):
        if ids:
            out[row] = embeddings[ids].mean(axis=0)
    return out


class ReviewCNN(nn.Module):
    """One convolution over each review's words (window ``window``, 'same' padding) with ReLU.

    Shapes: words (B, R, L) ids, embedded (B, R, L, D) -> (B, R, L, K) features, zero at padded words."""

    def __init__(self, word_dim: int, num_filters: int, window: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(word_dim, num_filters, window, padding=window // 2)
        self.window = window

    def forward(self, words: Tensor, embedded: Tensor) -> Tensor:
        b, r, length, d = embedded.shape
        x = embedded.reshape(b * r, length, d).transpose(1, 2)  # (B*R, D, L)
        c = torch.relu(self.conv(x))[..., :length].transpose(1, 2)  # (B*R, L, K); even windows pad one extra
        return c.reshape(b, r, length, -1) * (words != PAD_WORD).unsqueeze(-1).to(c.dtype)  # (B, R, L, K)


def max_over_words(features: Tensor, words: Tensor) -> Tensor:
    """Max-pooling over each review's real words. (B, R, L, K) -> (B, R, K); zero for empty reviews."""
    masked = features.masked_fill((words == PAD_WORD).unsqueeze(-1), float("-inf"))
    pooled = masked.max(dim=2).values
    return torch.where(torch.isfinite(pooled), pooled, torch.zeros_like(pooled))


class FactorizationMachine(nn.Module):
    """Rendle's factorisation machine, ``w0 + <w, x> + sum_{i<j} <v_i, v_j> x_i x_j`` (ICDM 2010).

    The pairwise term is ``0.5 * sum_f ((x V)_f^2 - (x^2 V^2)_f)``. Shapes: x (B, n) -> (B,)."""

    def __init__(self, num_features: int, num_factors: int, bias: float = 0.0, factor_std: float = 0.1) -> None:
        super().__init__()
        self.linear = nn.Linear(num_features, 1)
        self.factors = nn.Parameter(torch.randn(num_features, num_factors) * factor_std)
        nn.init.constant_(self.linear.bias, bias)  # w0 starts at the training mean: no epochs spent finding it

    def forward(self, x: Tensor) -> Tensor:
        pairwise = 0.5 * ((x @ self.factors) ** 2 - (x**2) @ (self.factors**2)).sum(-1)  # (B,)
        return self.linear(x).squeeze(-1) + pairwise


def as_scores(prediction: Tensor) -> Tensor:
    """A rating prediction (B,) as the library's (B, C) scores with one candidate per row."""
    return prediction.unsqueeze(-1)


def extra_documents(config: Any) -> DocumentSpec | None:
    documents = getattr(config, "documents", None)
    return documents() if callable(documents) else None
