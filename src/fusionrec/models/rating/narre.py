"""NARRE: Chen, Zhang, Liu, Ma, "Neural Attentional Rating Regression with Review-level Explanations",
WWW 2018.

Each review is encoded by a CNN with max-pooling (O_l). A review's usefulness weight comes from its
text and the ID of the other side of the review (for a user's review, the item it is about):

    a*_l = hᵀ ReLU(W_O O_l + W_u u_{i_l} + b_1) + b_2,   a_l = softmax_l(a*_l)
    X_u = W_0 Σ_l a_l O_l + b_0                         (Y_i likewise from the item's reviews)
    h_0 = (p_u + X_u) ⊙ (q_i + Y_i),   r̂_ui = w_1ᵀ h_0 + b_u + b_i + μ

Note:
    Documents are capped (``max_reviews``, ``max_words``) and built from training reviews only, with
    the pair's own review hidden while training when ``task.hide_target_review`` (the official code
    keeps it in). Word vectors are trained from scratch by default (the official code loads
    pre-trained word2vec); the user and item sides have their own word tables, CNNs and attention.
    μ is the training mean, fixed. Dropout acts on X_u and Y_i, as in the official code.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.reviews import RatingBatch, review_corpus
from fusionrec.models.base import LossOutput, Recommender
from fusionrec.models.rating.common import (
    ReviewCNN,
    ReviewModelConfig,
    as_scores,
    max_over_words,
    mse_loss,
    require_documents,
    training_ratings,
    word_table,
)
from fusionrec.nn.fusion.functional import masked_softmax
from fusionrec.registry import MODELS


class NARREConfig(ReviewModelConfig):
    name: str = "narre"
    latent_dim: int = Field(32, gt=0, description="size of p_u, X_u, q_i, Y_i")
    id_dim: int = Field(32, gt=0, description="size of the ID embeddings inside the review attention")
    attention_dim: int = Field(32, gt=0)


class ReviewSide(nn.Module):
    """One side of NARRE: review CNN, ID-aware review attention, projection to the latent space.

    Shapes: words (B, R, L), other (B, R) ids of each review's other side (-1 = empty slot)
    -> features (B, latent), weights (B, R)."""

    def __init__(self, words: nn.Embedding, num_other: int, config: NARREConfig) -> None:
        super().__init__()
        c = config
        self.words = words
        self.cnn = ReviewCNN(words.embedding_dim, c.num_filters, c.window)
        self.other_ids = nn.Embedding(num_other, c.id_dim)
        nn.init.normal_(self.other_ids.weight, std=0.1)
        self.review_proj = nn.Linear(c.num_filters, c.attention_dim)  # W_O, b_1
        self.id_proj = nn.Linear(c.id_dim, c.attention_dim, bias=False)  # W_u
        self.h = nn.Linear(c.attention_dim, 1)  # h, b_2
        self.out = nn.Linear(c.num_filters, c.latent_dim)  # W_0, b_0
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, words: Tensor, other: Tensor) -> tuple[Tensor, Tensor]:
        present = other >= 0  # (B, R)
        reviews = max_over_words(self.cnn(words, self.words(words)), words)  # (B, R, K)
        hidden = torch.relu(self.review_proj(reviews) + self.id_proj(self.other_ids(other.clamp(min=0))))
        weights = masked_softmax(self.h(hidden).squeeze(-1), present)  # (B, R)
        pooled = (weights.unsqueeze(-1) * reviews).sum(1)  # (B, K)
        return self.dropout(self.out(pooled)), weights


@MODELS.register("narre", config=NARREConfig, task="rating", paper="Chen et al., WWW 2018", modalities="text")
class NARRE(Recommender):
    """Shapes: RatingBatch with both documents -> (B,); :meth:`attention` -> review weights (B, R)."""

    def __init__(
        self, num_users: int, num_items: int, mean: float, config: NARREConfig, tables: tuple[nn.Embedding, ...]
    ) -> None:
        super().__init__()
        c = config
        self.user_side = ReviewSide(tables[0], num_items, c)  # a user's reviews are about items
        self.item_side = ReviewSide(tables[1], num_users, c)  # an item's reviews are by users
        self.user_ids = nn.Embedding(num_users, c.latent_dim)  # p_u
        self.item_ids = nn.Embedding(num_items, c.latent_dim)  # q_i
        for table in (self.user_ids, self.item_ids):
            nn.init.uniform_(table.weight, -0.1, 0.1)
        self.user_bias = nn.Embedding(num_users, 1)
        self.item_bias = nn.Embedding(num_items, 1)
        for table in (self.user_bias, self.item_bias):
            nn.init.zeros_(table.weight)
        self.w1 = nn.Linear(c.latent_dim, 1, bias=False)
        self.register_buffer("mean", torch.tensor(float(mean)))

    @classmethod
    def from_dataset(cls, config: NARREConfig, dataset) -> NARRE:
        corpus = review_corpus(dataset, config.documents())
        tables = tuple(word_table(corpus, config.word_dim, config.word_vectors) for _ in range(2))
        ratings = training_ratings(dataset)
        return cls(dataset.num_users, dataset.num_items, float(ratings.mean()) if len(ratings) else 0.0, config, tables)

    def forward_with_attention(self, batch: RatingBatch) -> tuple[Tensor, dict[str, Tensor]]:
        user_words, user_review_items, item_words, item_review_users = require_documents(batch, "narre")
        x_u, user_weights = self.user_side(user_words, user_review_items)  # (B, latent), (B, R)
        y_i, item_weights = self.item_side(item_words, item_review_users)
        h0 = (self.user_ids(batch.users) + x_u) * (self.item_ids(batch.items) + y_i)  # (B, latent)
        bias = self.user_bias(batch.users).squeeze(-1) + self.item_bias(batch.items).squeeze(-1)
        prediction = self.w1(h0).squeeze(-1) + bias + self.mean  # (B,)
        return prediction, {"user_reviews": user_weights, "item_reviews": item_weights}

    def predict(self, batch: RatingBatch) -> Tensor:
        return self.forward_with_attention(batch)[0]

    def attention(self, batch: RatingBatch) -> dict[str, Tensor]:
        """Review weights of both documents: ``user_reviews`` and ``item_reviews`` (B, R)."""
        return self.forward_with_attention(batch)[1]

    def loss(self, batch: RatingBatch) -> LossOutput:
        return mse_loss(self.predict(batch), batch)

    def score(self, batch: RatingBatch) -> Tensor:
        return as_scores(self.predict(batch))
