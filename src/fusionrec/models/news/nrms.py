"""NRMS: Wu, Wu, Ge, Qi, Huang, Xie, "Neural News Recommendation with Multi-Head Self-Attention",
EMNLP-IJCNLP 2019.

News encoder: title word embeddings -> multi-head self-attention -> additive attention pooling
``r = Σ_l softmax_l(qᵀ tanh(W h_l + b)) h_l``. User encoder: multi-head self-attention over the
clicked news vectors -> additive attention pooling ``u``. Click score ``ŷ = uᵀ r_c``; trained with
softmax cross-entropy over 1 clicked + K non-clicked news of the same impression.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.models.news.common import (
    NewsBatch,
    NewsConfig,
    NewsModel,
    TitleInput,
    attention_pool,
    news_set,
    title_input,
)
from fusionrec.nn.fusion.layers import AdditiveScore, MultiHeadAttention
from fusionrec.registry import MODELS


class NRMSConfig(NewsConfig):
    name: str = "nrms"
    num_heads: int = Field(4, gt=0, description="H of both self-attentions (the paper: 16 heads of 16 dims)")


class TitleSelfAttention(nn.Module):
    """NRMS's news encoder (also MM-Rec's and VLSNR's text-only path): tokens -> MHSA -> additive pooling.

    Shapes: tokens (N, L, D), mask (N, L) -> news (N, D), token vectors (N, L, D), weights (N, L)."""

    def __init__(self, dim: int, num_heads: int, attention_dim: int, dropout: float) -> None:
        super().__init__()
        self.attention = MultiHeadAttention(dim, num_heads, dropout=dropout, out_proj=False)
        self.pool = AdditiveScore(dim, None, attention_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h, _ = self.attention(self.dropout(tokens), self.dropout(tokens), key_mask=mask, query_mask=mask)  # (N, L, D)
        h = self.dropout(h)
        news, weights = attention_pool(self.pool, h, mask)  # (N, D), (N, L)
        return news, h, weights


@MODELS.register("nrms", config=NRMSConfig, task="news", paper="Wu et al., EMNLP 2019", modalities="text")
class NRMS(NewsModel):
    """Multi-head self-attention news and user encoders (text only).

    Args:
        title: the title token input (:class:`~fusionrec.models.news.common.TitleInput`).
        num_news: I.
        dim: D. Default 64.
        num_heads: H. Default 4.
        attention_dim: width of the additive attentions. Default 64 (the paper: 200).
        dropout: on word vectors and attention outputs. Default 0.2.

    Shapes:
        batch history (B, H), candidates (B, C) -> scores (B, C).

    Note:
        Words are embedded by a trained table (the paper initialises it with 300-d GloVe, which is
        not available offline), or by offline MiniLM token vectors (``title_source``). D = 64 with 4
        heads (the paper: 16 x 16 = 256) for CPU budgets. The self-attentions have no output
        projection, as in the paper.
    """

    def __init__(
        self,
        title: TitleInput,
        num_news: int,
        dim: int = 64,
        num_heads: int = 4,
        attention_dim: int = 64,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.num_news = num_news
        self.title = title
        self.news_encoder = TitleSelfAttention(dim, num_heads, attention_dim, dropout)
        self.user_attention = MultiHeadAttention(dim, num_heads, dropout=dropout, out_proj=False)
        self.user_pool = AdditiveScore(dim, None, attention_dim)
        self.dropout = nn.Dropout(dropout)

    @classmethod
    def from_dataset(cls, config: NRMSConfig, dataset: Any) -> NRMS:
        return cls(
            title_input(config, dataset),
            dataset.num_items,
            config.dim,
            config.num_heads,
            config.attention_dim,
            config.dropout,
        )

    def encode_news(self, news: Tensor) -> tuple[Tensor, Tensor]:
        """(N,) news -> vectors (N, D), title-word weights (N, L)."""
        tokens, mask = self.title(news)  # (N, L, D), (N, L)
        vectors, _, weights = self.news_encoder(tokens, mask)
        return vectors, weights

    def encode_user(self, history: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """history news vectors (B, H, D), mask (B, H) -> user (B, D), history weights (B, H)."""
        h, _ = self.user_attention(history, history, key_mask=mask, query_mask=mask)  # (B, H, D)
        return attention_pool(self.user_pool, self.dropout(h), mask)

    def _forward(self, batch: NewsBatch) -> tuple[Tensor, Tensor, Tensor]:
        news, hist_at, cand_at = news_set(batch)
        vectors, word_weights = self.encode_news(news)  # (N, D), (N, L)
        user, history_weights = self.encode_user(vectors[hist_at], batch.history_mask)  # (B, D), (B, H)
        scores = torch.einsum("bd,bcd->bc", user, vectors[cand_at])  # (B, C)
        return scores, history_weights, word_weights[cand_at]

    def score(self, batch: NewsBatch) -> Tensor:
        return self._forward(batch)[0]

    def attention(self, batch: NewsBatch) -> dict[str, Tensor]:
        _, history, words = self._forward(batch)
        return {"history": history[0], "title": words[0, 0]}
