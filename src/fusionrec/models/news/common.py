"""What the news models share: their batch, their config base, the title and image inputs, the loss.

A news model scores the candidates of impressions from the user's clicked history. News are item
indices ``0..I-1``; index ``I`` is the padding news (no title, no image). The task tokenises titles
(its vocabulary comes from the news that training impressions show) and leaves the result in
``dataset.meta[NEWS_TEXT_KEY]`` before the model is built; region or token features come from the
data set's modalities.

Shapes:
    B impressions (or training samples), H history length, C candidates, L title tokens, R image
    regions, D dim, N distinct news in a batch.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.batches import _Batch
from fusionrec.errors import DataError
from fusionrec.models.base import LossOutput, ModelConfig, Recommender
from fusionrec.nn.fusion.functional import masked_softmax
from fusionrec.nn.fusion.layers import AdditiveScore

NEWS_TEXT_KEY = "news_text"


@dataclass(frozen=True)
class NewsText:
    """Tokenised titles: ``ids`` (I + 1, L) int64 word ids (0 padding, 1 unknown; the last row is the
    padding news), ``vocab`` the words (``vocab[0] = "<pad>"``, ``vocab[1] = "<unk>"``)."""

    ids: np.ndarray
    vocab: list[str]


@dataclass(frozen=True)
class NewsBatch(_Batch):
    """Impressions (evaluation) or training samples (1 click + K non-clicked of its impression).

    Shapes: users (B,); history (B, H) news indices (padding = I), history_mask (B, H) bool;
    candidates (B, C), candidate_mask (B, C) bool; labels (B, C) float 0/1 (zeros at padding)."""

    users: Tensor
    history: Tensor
    history_mask: Tensor
    candidates: Tensor
    candidate_mask: Tensor
    labels: Tensor


class NewsConfig(ModelConfig):
    """Base of the news models' configs."""

    dim: int = Field(64, gt=0, description="D, the dim of word, region, news and user vectors")
    num_heads: int = Field(4, gt=0, description="attention heads (D must be divisible by it)")
    attention_dim: int = Field(64, gt=0, description="width of the additive attention poolings")
    title_source: str = Field(
        "words",
        description="title tokens: 'words' (trained word embeddings over the task's vocabulary) or a regions "
        "modality of token vectors, e.g. 'title_tokens' from `fusionrec features extract DATA -m text --column "
        "title --regions`",
    )
    dropout: float = Field(0.2, ge=0, lt=1)
    word_init_std: float | None = Field(
        None, gt=0, description="std of the word embeddings' normal start (None: PyTorch's N(0, 1); GloVe-like: 0.1)"
    )


def news_text(dataset: Any) -> NewsText:
    text = dataset.meta.get(NEWS_TEXT_KEY)
    if text is None:
        raise DataError(f"{dataset.name}: news models are built by the news task (its titles are not tokenised yet)")
    return text


class TitleInput(nn.Module):
    """Title tokens as vectors: trained word embeddings, or offline token vectors projected to D.

    Shapes: news (...) -> tokens (..., L, D), mask (..., L)."""

    ids: Tensor
    mask: Tensor
    features: Tensor

    def __init__(
        self, ids: Tensor, vocab_size: int, dim: int, features: Tensor | None = None, init_std: float | None = None
    ) -> None:
        super().__init__()
        if features is None:
            self.register_buffer("ids", ids, persistent=False)  # (I + 1, L)
            self.register_buffer("mask", ids > 0, persistent=False)
            self.words: nn.Embedding | None = nn.Embedding(vocab_size, dim, padding_idx=0)
            if init_std is not None:
                with torch.no_grad():
                    self.words.weight.normal_(0.0, init_std)
                    self.words.weight[0].zero_()
            self.project: nn.Linear | None = None
        else:
            self.register_buffer("features", features, persistent=False)  # (I + 1, L, Dt)
            self.register_buffer("mask", features.abs().sum(-1) > 0, persistent=False)
            self.words, self.project = None, nn.Linear(features.shape[-1], dim)

    def forward(self, news: Tensor) -> tuple[Tensor, Tensor]:
        if self.words is not None:
            return self.words(self.ids[news]), self.mask[news]  # (..., L, D), (..., L)
        assert self.project is not None
        return self.project(self.features[news]), self.mask[news]


class ImageInput(nn.Module):
    """Image regions (or one pooled vector, R = 1) projected to D; missing images are fully masked.

    Shapes: news (...) -> regions (..., R, D), mask (..., R)."""

    features: Tensor
    present: Tensor

    def __init__(self, features: Tensor, present: Tensor, dim: int) -> None:
        super().__init__()
        if features.dim() == 2:
            features = features[:, None]  # (I + 1, 1, Dv)
        self.register_buffer("features", features, persistent=False)  # (I + 1, R, Dv)
        self.register_buffer("present", present, persistent=False)  # (I + 1,)
        self.project = nn.Linear(features.shape[-1], dim)
        self.num_regions = int(features.shape[1])

    def forward(self, news: Tensor) -> tuple[Tensor, Tensor]:
        regions = torch.tanh(self.project(self.features[news]))  # (..., R, D)
        mask = self.present[news][..., None].expand(regions.shape[:-1])  # (..., R)
        return regions, mask


def title_input(config: NewsConfig, dataset: Any) -> TitleInput:
    text = news_text(dataset)
    ids = torch.from_numpy(np.asarray(text.ids, dtype=np.int64))
    if config.title_source == "words":
        return TitleInput(ids, len(text.vocab), config.dim, init_std=config.word_init_std)
    modality = dataset.modalities.get(config.title_source)
    if modality is None or modality.kind != "regions":
        have = ", ".join(n for n, m in dataset.modalities.items() if m.kind == "regions") or "none"
        raise DataError(
            f"{dataset.name}: model.title_source={config.title_source!r} needs a regions modality of token vectors "
            f"(regions modalities: {have}); extract one with `fusionrec features extract DATA -m text --column title "
            "--regions`, or use title_source=words"
        )
    values = torch.from_numpy(np.array(modality.values))
    padded = torch.cat([values, values.new_zeros(1, *values.shape[1:])])  # the padding news
    return TitleInput(ids, len(text.vocab), config.dim, padded)


def image_input(name: str, dataset: Any, dim: int, model: str) -> ImageInput:
    modality = dataset.modalities.get(name)
    if modality is None:
        have = ", ".join(dataset.modalities) or "none"
        raise DataError(
            f"{model} needs the image modality {name!r}; data set {dataset.name!r} has: {have} (extract it with "
            f"`fusionrec features extract {dataset.name} -m image --regions`, set model.image_modality, or "
            "model.use_image=false)"
        )
    values = torch.from_numpy(np.array(modality.values))
    padded = torch.cat([values, values.new_zeros(1, *values.shape[1:])])
    present = torch.cat([torch.from_numpy(modality.mask), torch.zeros(1, dtype=torch.bool)])
    return ImageInput(padded, present, dim)


def attention_pool(
    scorer: AdditiveScore, x: Tensor, mask: Tensor | None, query: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``Σ_l softmax_l(score(x_l[, q])) x_l`` with masked entries weighted zero.

    Shapes: x (..., L, D); mask (..., L) -> (..., D), weights (..., L)."""
    weights = masked_softmax(scorer(x, query), mask, dim=-1)  # (..., L)
    return (weights[..., None] * x).sum(-2), weights


def news_set(batch: NewsBatch) -> tuple[Tensor, Tensor, Tensor]:
    """The distinct news of a batch and where the history and candidates find them.

    Returns: news (N,), history positions (B, H), candidate positions (B, C)."""
    flat = torch.cat([batch.history.reshape(-1), batch.candidates.reshape(-1)])
    news, inverse = torch.unique(flat, return_inverse=True)
    split = batch.history.numel()
    return news, inverse[:split].view_as(batch.history), inverse[split:].view_as(batch.candidates)


def impression_loss(scores: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    """Softmax cross-entropy of the clicked candidate against the others of its sample (npratio loss).

    Shapes: scores, labels, mask (B, C) -> scalar."""
    logits = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    log_p = F.log_softmax(logits, dim=-1)
    return -(log_p * labels).sum() / labels.sum().clamp_min(1.0)


class NewsModel(Recommender):
    """A model of the ``news`` task: ``score(batch)`` gives ``(B, C)`` candidate scores."""

    num_news: int  # I (index I is the padding news)

    def loss(self, batch: NewsBatch) -> LossOutput:
        scores = self.score(batch)
        loss = impression_loss(scores, batch.labels, batch.candidate_mask)
        return LossOutput(loss, {"softmax_ce": loss.detach()})

    @abc.abstractmethod
    def score(self, batch: NewsBatch) -> Tensor:
        """(B, C) scores of the candidates (padding candidates get any value; the task masks them)."""

    @abc.abstractmethod
    def attention(self, batch: NewsBatch) -> dict[str, Tensor]:
        """The weights behind the scores of a one-impression, one-candidate batch: ``history`` (H,),
        ``title`` (L,) over the candidate's title tokens and, with an image branch, ``regions`` (R,)."""
