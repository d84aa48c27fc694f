"""MM-Rec: Wu, Wu, Qi, Zhang, Huang, Xu, "MM-Rec: Visiolinguistic Model Empowered Multimodal News
Recommendation", SIGIR 2022 (short; arXiv 2104.07407). Official code: zcfinal/MM-Rec.

News encoder: a two-stream co-attentional transformer (ViLBERT) over the title words and the image
regions gives a text vector ``r_t`` and an image vector ``r_v`` per news. User encoder, for each
candidate ``c = (c_t, c_v)``: four candidate-aware attention poolings over the clicked news
``H_t, H_v``, one per (candidate modality a, history modality b):

    α_ab = softmax_h((W_ab c_a)ᵀ H_b[h])       u_c = Σ_{a, b ∈ {t, v}} Σ_h α_ab[h] H_b[h]

Score ``ŷ = (c_t + c_v)ᵀ u_c``; softmax cross-entropy over 1 clicked + K non-clicked news.
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
from fusionrec.nn.fusion.cross_modal_transformer import CrossModalTransformer
from fusionrec.nn.fusion.functional import masked_softmax
from fusionrec.nn.fusion.layers import AdditiveScore, MultiHeadAttention
from fusionrec.registry import MODELS

PAIRS = ("tt", "tv", "vt", "vv")  # (candidate modality, history modality)


class MMRecConfig(NewsConfig):
    name: str = "mm_rec"
    image_modality: str = Field("image_regions", description="regions (I, R, Dv) or pooled (I, Dv) image features")
    use_image: bool = Field(True, description="False: the text-only ablation (title stream and t->t pooling only)")
    num_layers: int = Field(1, gt=0, description="co-attentional layers (ViLBERT-base: 6 co-attention of 12 layers)")
    apply_history_mask: bool = Field(
        True, description="mask padded history in the candidate-aware poolings (False: the official code's behaviour)"
    )


@MODELS.register(
    "mm_rec", config=MMRecConfig, task="news", paper="Wu et al., SIGIR 2022", modalities="text, image regions"
)
class MMRec(NewsModel):
    """Co-attentional title/image news encoder and four cross-modal candidate-aware user poolings.

    Args:
        title: title token input; image: image region input or None (text-only ablation).
        num_news: I.
        dim, num_heads, attention_dim, dropout: as in :class:`~fusionrec.models.news.common.NewsConfig`.
        num_layers: co-attentional layers. Default 1.
        apply_history_mask: mask padded history entries. Default True.

    Shapes:
        batch history (B, H), candidates (B, C) -> scores (B, C); news tokens (N, L, D), regions (N, R, D).

    Note:
        ViLBERT (pre-trained on Conceptual Captions) is replaced by one trained co-attentional layer
        (:class:`~fusionrec.nn.fusion.CrossModalTransformer`: cross-attention, self-attention, FFN per
        stream) over trained word embeddings or offline MiniLM token vectors and the 7x7
        EfficientNet-Lite0 grid (49 regions) in place of Mask R-CNN ROIs with box embeddings; the
        streams are pooled by additive attention instead of ViLBERT's first token. The candidate-aware
        scores are a dot product with a linear map of the candidate vector (the code's exact scoring
        function is unverified here). The official ``CandidateAttention`` takes the history mask but
        never applies it, so padded history news take part in every pooling; here the mask is applied
        (``apply_history_mask=False`` reproduces the official behaviour). A news without an image gets
        ``r_v = 0``; its image stream is fully masked.
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
        num_layers: int = 1,
        apply_history_mask: bool = True,
    ) -> None:
        super().__init__()
        self.num_news = num_news
        self.title, self.image = title, image
        self.apply_history_mask = apply_history_mask
        self.dropout = nn.Dropout(dropout)
        if image is None:
            self.text_layers = nn.ModuleList(
                MultiHeadAttention(dim, num_heads, dropout=dropout, out_proj=False) for _ in range(num_layers)
            )
        else:
            self.co_layers = nn.ModuleList(
                CrossModalTransformer(dim, num_heads=num_heads, hidden_dim=2 * dim, dropout=dropout, residual=True)
                for _ in range(num_layers)
            )
            self.image_pool = AdditiveScore(dim, None, attention_dim)
        self.text_pool = AdditiveScore(dim, None, attention_dim)
        pairs = PAIRS if image is not None else PAIRS[:1]
        self.candidate_maps = nn.ModuleDict({p: nn.Linear(dim, dim, bias=False) for p in pairs})

    @classmethod
    def from_dataset(cls, config: MMRecConfig, dataset: Any) -> MMRec:
        image = image_input(config.image_modality, dataset, config.dim, "mm_rec") if config.use_image else None
        return cls(
            title_input(config, dataset),
            image,
            dataset.num_items,
            config.dim,
            config.num_heads,
            config.attention_dim,
            config.dropout,
            config.num_layers,
            config.apply_history_mask,
        )

    def encode_news(self, news: Tensor) -> dict[str, Tensor]:
        """(N,) news -> ``t`` (N, D), ``v`` (N, D) (image branch only), ``title`` (N, L), ``regions`` (N, R) weights."""
        tokens, token_mask = self.title(news)  # (N, L, D), (N, L)
        tokens = self.dropout(tokens)
        out: dict[str, Tensor] = {}
        if self.image is None:
            for layer in self.text_layers:
                attended, _ = layer(tokens, tokens, key_mask=token_mask, query_mask=token_mask)
                tokens = tokens + attended  # (N, L, D)
        else:
            regions, region_mask = self.image(news)  # (N, R, D), (N, R)
            for layer in self.co_layers:
                fused = layer(tokens, regions, token_mask, region_mask)
                tokens, regions = fused.out, fused.out_b  # (N, L, D), (N, R, D)
            assert regions is not None
            out["v"], out["regions"] = attention_pool(self.image_pool, regions, region_mask)  # (N, D), (N, R)
        out["t"], out["title"] = attention_pool(self.text_pool, tokens, token_mask)  # (N, D), (N, L)
        return out

    def _forward(self, batch: NewsBatch) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        news, hist_at, cand_at = news_set(batch)
        encoded = self.encode_news(news)
        mask = batch.history_mask[:, None, :] if self.apply_history_mask else None  # (B, 1, H)
        user = torch.zeros(())
        history_weights = {}
        for pair, linear in self.candidate_maps.items():
            candidate = encoded[pair[0]][cand_at]  # (B, C, D)
            history = encoded[pair[1]][hist_at]  # (B, H, D)
            scores = torch.einsum("bcd,bhd->bch", linear(candidate), history)  # (B, C, H)
            alpha = masked_softmax(scores, mask, dim=-1)  # (B, C, H)
            user = user + torch.einsum("bch,bhd->bcd", alpha, history)  # (B, C, D)
            history_weights[pair] = alpha
        candidate_vector = encoded["t"][cand_at] + (encoded["v"][cand_at] if "v" in encoded else 0.0)  # (B, C, D)
        scores = (candidate_vector * user).sum(-1)  # (B, C)
        candidate_weights: dict[str, Tensor] = {k: encoded[k][cand_at] for k in ("title", "regions") if k in encoded}
        return scores, history_weights, candidate_weights

    def score(self, batch: NewsBatch) -> Tensor:
        return self._forward(batch)[0]

    def attention(self, batch: NewsBatch) -> dict[str, Tensor]:
        _, history, candidate = self._forward(batch)
        out = {f"history {p[0]}->{p[1]}": w[0, 0] for p, w in history.items()}
        out["history"] = torch.stack([w[0, 0] for w in history.values()]).mean(0)  # (H,)
        out["title"] = candidate["title"][0, 0]
        if "regions" in candidate:
            out["regions"] = candidate["regions"][0, 0]
        return out
