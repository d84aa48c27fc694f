"""DeepCoNN: Zheng, Noroozi, Yu, "Joint Deep Modeling of Users and Items Using Reviews for
Recommendation", WSDM 2017.

Two parallel text networks: the user's reviews and the item's reviews each go through word vectors,
a convolution with ReLU, max-pooling over time and a fully connected layer; a factorisation machine
predicts the rating from the concatenation:

    x_u = f(W · maxpool(ReLU(conv(E[doc_u]))) + g),   y_i likewise,   r̂_ui = FM([x_u; y_i])

Note:
    The paper concatenates a user's reviews into one document; here each review is convolved on its
    own and the max runs over every word of every review, so a window never spans two reviews (the
    same features otherwise). Documents are capped (``max_reviews``, ``max_words``) and built from
    training reviews only; the pair's own review is hidden from both documents while training when
    ``task.hide_target_review`` (the default), so training sees what test sees (Catherine & Cohen,
    TransNets, RecSys 2017, showed how much DeepCoNN's reported gains owe to that review). Word
    vectors are trained from scratch by default (the paper used pre-trained word2vec); ``f`` is ReLU
    and dropout acts on x_u and y_i. The FM has ``fm_factors`` factors; its global bias starts at
    the training mean rating. The user and item towers have their own word tables.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.reviews import RatingBatch, review_corpus
from fusionrec.models.base import LossOutput, Recommender
from fusionrec.models.rating.common import (
    FactorizationMachine,
    ReviewCNN,
    ReviewModelConfig,
    as_scores,
    max_over_words,
    mse_loss,
    require_documents,
    training_ratings,
    word_table,
)
from fusionrec.registry import MODELS


class DeepCoNNConfig(ReviewModelConfig):
    name: str = "deepconn"
    latent_dim: int = Field(32, gt=0, description="size of x_u and y_i")
    fm_factors: int = Field(8, gt=0)


class TextTower(nn.Module):
    """Word vectors -> convolution + ReLU -> max over all words of the document -> FC + ReLU.

    Shapes: words (B, R, L) -> (B, latent_dim)."""

    def __init__(self, words: nn.Embedding, num_filters: int, window: int, latent_dim: int, dropout: float) -> None:
        super().__init__()
        self.words = words
        self.cnn = ReviewCNN(words.embedding_dim, num_filters, window)
        self.fc = nn.Linear(num_filters, latent_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, words: Tensor) -> Tensor:
        per_review = max_over_words(self.cnn(words, self.words(words)), words)  # (B, R, K), 0 for empty slots
        document = per_review.max(dim=1).values  # (B, K): ReLU features are >= 0, so empty slots never win
        return self.dropout(torch.relu(self.fc(document)))  # (B, latent)


@MODELS.register("deepconn", config=DeepCoNNConfig, task="rating", paper="Zheng et al., WSDM 2017", modalities="text")
class DeepCoNN(Recommender):
    """Shapes: RatingBatch with both documents (B, R, L) -> (B,)."""

    def __init__(self, mean: float, config: DeepCoNNConfig, word_vectors: tuple[nn.Embedding, nn.Embedding]) -> None:
        super().__init__()
        c = config
        self.user_tower = TextTower(word_vectors[0], c.num_filters, c.window, c.latent_dim, c.dropout)
        self.item_tower = TextTower(word_vectors[1], c.num_filters, c.window, c.latent_dim, c.dropout)
        self.fm = FactorizationMachine(2 * c.latent_dim, c.fm_factors, bias=mean)

    @classmethod
    def from_dataset(cls, config: DeepCoNNConfig, dataset) -> DeepCoNN:
        corpus = review_corpus(dataset, config.documents())
        tables = (
            word_table(corpus, config.word_dim, config.word_vectors),
            word_table(corpus, config.word_dim, config.word_vectors),
        )
        ratings = training_ratings(dataset)
        return cls(float(ratings.mean()) if len(ratings) else 0.0, config, tables)

    def predict(self, batch: RatingBatch) -> Tensor:
        user_words, _, item_words, _ = require_documents(batch, "deepconn")
        x = self.user_tower(user_words)  # (B, latent)
        y = self.item_tower(item_words)  # (B, latent)
        return self.fm(torch.cat([x, y], dim=-1))

    def loss(self, batch: RatingBatch) -> LossOutput:
        return mse_loss(self.predict(batch), batch)

    def score(self, batch: RatingBatch) -> Tensor:
        return as_scores(self.predict(batch))
