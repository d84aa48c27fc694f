"""VLSNR: Han, Huang, Luan, "VLSNR: Vision-Linguistics Coordination Time Sequence-aware News
Recommendation", arXiv 2210.02946, 2022 (no code released).

News: image and title embedded in one space (CLIP in the paper), image-text attention between the
title tokens and the image regions, pooled into one news vector. User: self-attention over the
chronological click sequence (position embeddings), then an attentional GRU whose update gate is
scaled by each click's relevance to the candidate (AUGRU):

    a_h = softmax_h(score(s_h, c));  h_t = (1 - a_t u_t) h_{t-1} + a_t u_t ñ_t;  u_c = h_H + Σ_h β_h s_h

with ``β`` an additive attention over the self-attended clicks (long-term interest) and ``h_H`` the
AUGRU state (short-term, candidate-aware). Score ``ŷ = u_cᵀ c``; softmax cross-entropy (npratio).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.models.news.common import (
    ImageInput,
    NewsBatch,
    NewsConfig,
    NewsModel,
    TitleInput,
    attention_pool,
    image_input,
    news_set,
    title_input,
)
from fusionrec.nn.fusion.attentional_gru import AttentionalGRU
from fusionrec.nn.fusion.layers import AdditiveScore, MultiHeadAttention
from fusionrec.registry import MODELS


class VLSNRConfig(NewsConfig):
    name: str = "vlsnr"
    image_modality: str = Field("image_regions", description="regions (I, R, Dv) or pooled (I, Dv) image features")
    use_image: bool = Field(True, description="False: the text-only ablation")
    max_positions: int = Field(64, gt=0, description="position embeddings of the click sequence (longer: clipped)")


@MODELS.register(
    "vlsnr", config=VLSNRConfig, task="news", paper="Han et al., arXiv 2210.02946", modalities="text, image regions"
)
class VLSNR(NewsModel):
    """Image-text attention news encoder; self-attention + attentional GRU user encoder.

    Args:
        title: title token input; image: image region input or None (text-only ablation).
        num_news: I.
        dim, num_heads, attention_dim, dropout: as in :class:`~fusionrec.models.news.common.NewsConfig`.
        max_positions: click positions embedded (counted from the most recent). Default 64.

    Shapes:
        batch history (B, H), candidates (B, C) -> scores (B, C); the AUGRU runs over (B C, H, D).

    Note:
        CLIP is replaced by the offline encoders (trained word embeddings or MiniLM token vectors for
        the title, the EfficientNet-Lite0 7x7 grid for the image), each projected into one D-space and
        trained. The image-text attention is one cross-attention of the title tokens over the regions
        (residual) and an image pooling queried by the pooled title; the news vector is their sum. The
        paper's exact layers are unverified (body not read, no code): the AUGRU cell is the dossier's
        suggested form (:class:`~fusionrec.nn.fusion.AttentionalGRU`), and the final user vector adds the
        AUGRU state to an additive pooling of the self-attended clicks.
    """

    def __init__(
        self,
        title: TitleInput,
        image: ImageInput | None,
        num_news: int,
        dim: int = 64,
        num_heads: int = 4,
        attention_dim: int = 64,
        dropout: float = 0.2,
        max_positions: int = 64,
    ) -> None:
        super().__init__()
        self.num_news = num_news
        self.title, self.image = title, image
        self.dropout = nn.Dropout(dropout)
        self.title_attention = MultiHeadAttention(dim, num_heads, dropout=dropout)
        self.title_pool = AdditiveScore(dim, None, attention_dim)
        if image is not None:
            self.image_text = MultiHeadAttention(dim, num_heads, dropout=dropout)  # title tokens -> regions
            self.image_pool = AdditiveScore(dim, dim, attention_dim)  # regions, queried by the title
        self.positions = nn.Embedding(max_positions, dim)
        self.click_attention = MultiHeadAttention(dim, num_heads, dropout=dropout)
        self.click_norm = nn.LayerNorm(dim)
        self.long_term = AdditiveScore(dim, None, attention_dim)
        self.gru = AttentionalGRU(dim, query_dim=dim, attention_dim=attention_dim)

    @classmethod
    def from_dataset(cls, config: VLSNRConfig, dataset: Any) -> VLSNR:
        image = image_input(config.image_modality, dataset, config.dim, "vlsnr") if config.use_image else None
        return cls(
            title_input(config, dataset),
            image,
            dataset.num_items,
            config.dim,
            config.num_heads,
            config.attention_dim,
            config.dropout,
            config.max_positions,
        )

    def encode_news(self, news: Tensor) -> dict[str, Tensor]:
        """(N,) -> ``news`` (N, D), ``title`` (N, L) and (image branch) ``regions`` (N, R) weights."""
        tokens, token_mask = self.title(news)  # (N, L, D), (N, L)
        tokens = self.dropout(tokens)
        attended, _ = self.title_attention(tokens, tokens, key_mask=token_mask, query_mask=token_mask)
        tokens = tokens + attended  # (N, L, D)
        out: dict[str, Tensor] = {}
        if self.image is not None:
            regions, region_mask = self.image(news)  # (N, R, D), (N, R)
            seen, _ = self.image_text(tokens, regions, key_mask=region_mask, query_mask=token_mask)  # (N, L, D)
            tokens = tokens + seen
        title, out["title"] = attention_pool(self.title_pool, tokens, token_mask)  # (N, D), (N, L)
        vector = title
        if self.image is not None:
            image, out["regions"] = attention_pool(self.image_pool, regions, region_mask, title)  # (N, D), (N, R)
            vector = title + image
        out["news"] = vector
        return out

    def encode_clicks(self, clicks: Tensor, mask: Tensor) -> Tensor:
        """Self-attention over the click sequence (oldest first). (B, H, D), (B, H) -> (B, H, D)."""
        length = clicks.shape[1]
        recency = (length - 1 - torch.arange(length, device=clicks.device)).clamp_max(self.positions.num_embeddings - 1)
        x = clicks + self.positions(recency)[None]  # (B, H, D)
        attended, _ = self.click_attention(x, x, key_mask=mask, query_mask=mask)
        return self.click_norm(x + self.dropout(attended)) * mask[..., None].to(x.dtype)  # (B, H, D)

    def _forward(self, batch: NewsBatch) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        news, hist_at, cand_at = news_set(batch)
        encoded = self.encode_news(news)
        clicks = self.encode_clicks(encoded["news"][hist_at], batch.history_mask)  # (B, H, D)
        candidates = encoded["news"][cand_at]  # (B, C, D)
        long_term, _ = attention_pool(self.long_term, clicks, batch.history_mask)  # (B, D)
        B, C, D = candidates.shape
        H = clicks.shape[1]
        sequence = clicks[:, None].expand(B, C, H, D).reshape(B * C, H, D)
        mask = batch.history_mask[:, None].expand(B, C, H).reshape(B * C, H)
        state = self.gru(sequence, candidates.reshape(B * C, D), mask)  # out (B C, D), weights (B C, H)
        user = state.out.view(B, C, D) + long_term[:, None]  # (B, C, D)
        scores = (user * candidates).sum(-1)  # (B, C)
        assert isinstance(state.weights, Tensor)
        candidate_weights: dict[str, Tensor] = {k: encoded[k][cand_at] for k in ("title", "regions") if k in encoded}
        return scores, state.weights.view(B, C, H), candidate_weights

    def score(self, batch: NewsBatch) -> Tensor:
        return self._forward(batch)[0]

    def attention(self, batch: NewsBatch) -> dict[str, Tensor]:
        _, history, candidate = self._forward(batch)
        out = {"history": history[0, 0], "title": candidate["title"][0, 0]}
        if "regions" in candidate:
            out["regions"] = candidate["regions"][0, 0]
        return out
