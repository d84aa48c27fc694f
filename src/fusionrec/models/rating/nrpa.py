"""NRPA: Liu, Wu, Wang, Wang, Jiao, Wu, Xie, "NRPA: Neural Recommendation with Personalized Attention",
SIGIR 2019 (short paper).

A user is represented from the reviews the user wrote, an item from the reviews written about it,
by two networks of the same shape. In the user network:

    c_j = ReLU(conv_3(E[w]))_j                             word features of a review (CNN, window 3)
    q_w = ReLU(W_1 e_u + b_1),  α_j = softmax_j(q_wᵀ A_1 c_j),  d_l = Σ_j α_j c_j      (word attention)
    q_r = ReLU(W_2 e_u + b_2),  β_l = softmax_l(q_rᵀ A_2 d_l),  u = Σ_l β_l d_l       (review attention)

e_u is the user's ID embedding, so each user reads words and reviews with their own query; the item
network mirrors this with the item's ID. The rating is a factorisation machine on [u; i], trained
with the mean squared error.

Note (choices the paper leaves open, or differences):
    - One ID embedding per side feeds both queries (two projections, W_1 and W_2); the user and item
      networks share nothing (word tables included).
    - Attention scores are bilinear (``q ᵀ A c``, :class:`fusionrec.nn.fusion.PersonalizedAttention`),
      softmax over real words and real reviews only (padding masked, weight exactly 0).
    - The FM has ``fm_factors`` factors; its global bias starts at the training mean rating; dropout
      acts on u and i before it.
    - Word vectors: trained from scratch by default (``word_vectors=minilm`` starts from MiniLM's
      WordPiece input embeddings); the paper's pre-trained vectors are not specified in the abstract.
    - Documents: at most ``max_reviews`` training reviews of ``max_words`` words each, the pair's own
      review hidden while training (``task.hide_target_review``).
    - Sizes: ID 32 and attention 16 as in the two public reimplementations the project's dossier read,
      64 filters (they use 32 and 100); the abstract states none. Word vectors start N(0, 1).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.reviews import PAD_WORD, RatingBatch, review_corpus
from fusionrec.models.base import LossOutput, Recommender
from fusionrec.models.rating.common import (
    FactorizationMachine,
    ReviewCNN,
    ReviewModelConfig,
    as_scores,
    mse_loss,
    require_documents,
    training_ratings,
    word_table,
)
from fusionrec.nn.fusion.personalized_attention import PersonalizedAttention
from fusionrec.registry import MODELS


class NRPAConfig(ReviewModelConfig):
    name: str = "nrpa"
    id_dim: int = Field(32, gt=0, description="size of the ID embedding the queries come from")
    attention_dim: int = Field(16, gt=0, description="size of the queries q_w, q_r")
    fm_factors: int = Field(8, gt=0)


class PersonalizedSide(nn.Module):
    """One NRPA network (user or item): review CNN, personalised word and review attention.

    Shapes: ids (B,), words (B, R, L) -> vector (B, K), word weights (B, R, L), review weights (B, R)."""

    def __init__(self, num_ids: int, words: nn.Embedding, config: NRPAConfig) -> None:
        super().__init__()
        c = config
        self.ids = nn.Embedding(num_ids, c.id_dim)
        nn.init.normal_(self.ids.weight, std=0.1)
        self.words = words
        self.cnn = ReviewCNN(words.embedding_dim, c.num_filters, c.window)
        self.word_attention = PersonalizedAttention(c.num_filters, c.id_dim, hidden_dim=c.attention_dim)
        self.review_attention = PersonalizedAttention(c.num_filters, c.id_dim, hidden_dim=c.attention_dim)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, ids: Tensor, words: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        e = self.ids(ids)  # (B, id_dim)
        c = self.cnn(words, self.words(words))  # (B, R, L, K)
        word_mask = words != PAD_WORD  # (B, R, L)
        reviews = self.word_attention(c, e, word_mask)  # out (B, R, K), weights (B, R, L)
        review_mask = word_mask.any(-1)  # (B, R): a slot with no word is no review
        document = self.review_attention(reviews.out, e, review_mask)  # out (B, K), weights (B, R)
        return self.dropout(document.out), reviews.weights, document.weights


@MODELS.register("nrpa", config=NRPAConfig, task="rating", paper="Liu et al., SIGIR 2019", modalities="text")
class NRPA(Recommender):
    """Shapes: RatingBatch with both documents -> (B,); :meth:`attention` -> word (B, R, L) and
    review (B, R) weights of both documents."""

    def __init__(
        self, num_users: int, num_items: int, mean: float, config: NRPAConfig, tables: tuple[nn.Embedding, ...]
    ) -> None:
        super().__init__()
        self.user_side = PersonalizedSide(num_users, tables[0], config)
        self.item_side = PersonalizedSide(num_items, tables[1], config)
        self.fm = FactorizationMachine(2 * config.num_filters, config.fm_factors, bias=mean)

    @classmethod
    def from_dataset(cls, config: NRPAConfig, dataset) -> NRPA:
        corpus = review_corpus(dataset, config.documents())
        tables = tuple(word_table(corpus, config.word_dim, config.word_vectors) for _ in range(2))
        ratings = training_ratings(dataset)
        return cls(dataset.num_users, dataset.num_items, float(ratings.mean()) if len(ratings) else 0.0, config, tables)

    def forward_with_attention(self, batch: RatingBatch) -> tuple[Tensor, dict[str, Tensor]]:
        user_words, _, item_words, _ = require_documents(batch, "nrpa")
        u, user_word_weights, user_review_weights = self.user_side(batch.users, user_words)
        i, item_word_weights, item_review_weights = self.item_side(batch.items, item_words)
        prediction = self.fm(torch.cat([u, i], dim=-1))  # (B,)
        return prediction, {
            "user_words": user_word_weights,
            "user_reviews": user_review_weights,
            "item_words": item_word_weights,
            "item_reviews": item_review_weights,
        }

    def predict(self, batch: RatingBatch) -> Tensor:
        return self.forward_with_attention(batch)[0]

    def attention(self, batch: RatingBatch) -> dict[str, Tensor]:
        """Word weights (B, R, L) and review weights (B, R) of the user's and the item's documents."""
        return self.forward_with_attention(batch)[1]

    def loss(self, batch: RatingBatch) -> LossOutput:
        return mse_loss(self.predict(batch), batch)

    def score(self, batch: RatingBatch) -> Tensor:
        return as_scores(self.predict(batch))
