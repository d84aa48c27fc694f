"""NOR: neural outfit recommendation with joint matching and comment generation.

Lin, Ren, Chen, Ren, Ma, de Rijke, "Explainable Outfit Recommendation with Joint Outfit Matching and Comment
Generation", IEEE TKDE 2019 (arXiv 1806.08977, first titled NFR). A top and a bottom are sets of parts
(CNN feature-map cells in the paper); **mutual attention** pools each one guided by the other, a matching
decoder predicts whether they match, and a GRU decoder writes a comment attending over the parts of both::

    a_t = softmax(w_tᵀ tanh(W_t F_t + U_t mean(F_b))),  v_t = Σ a_t F_t     (and symmetrically v_b)
    r̂ = σ(MLP[v_t; v_b; v_t ⊙ v_b]),   comment ~ AttentiveGRU(memory = F_t ∪ F_b, h_0 = tanh(W [v_t; v_b]))
    L = BCE(r̂⁺, 1) + BCE(r̂⁻, 0) + λ NLL(comment)

Args (``NORConfig``): ``dim`` 64, ``hidden_dim`` 64 (attention and GRU), ``vocab_size`` 2000, ``max_words`` 20,
``comment_weight`` λ = 1.0, ``dropout`` 0.1.

Note:
    - Parts are the item's image regions where the data set has a region modality (outfit-synthetic), else the
      words of its name (Polyvore here has no images), each plus the item's category embedding; the paper's
      parts are CNN feature-map cells of the item images.
    - The mutual attention takes the other item's *mean* part as its guide (the form in docs/outfit.md); the
      paper's exact form is not in the parts available here [U]. The comment decoder is the shared
      ``AttentiveGRUDecoder`` (additive attention over both items' parts, greedy decoding).
    - Comments are synthetic (built from the item names; docs/outfit.md): NOR's ExpFashion comments are not
      available offline. The comment targets of held-out pairs are never given to the model.
    - The negative bottom is one random training bottom per pair (the paper's sampling is [U]).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from fusionrec.metrics.generation import words
from fusionrec.models.base import LossOutput
from fusionrec.models.outfit.base import ItemEncoder, OutfitBatch, OutfitConfig, OutfitModel, item_inputs, name_word_ids
from fusionrec.nn.fusion.functional import masked_softmax
from fusionrec.nn.text_decoder import BOS, EOS, AttentiveGRUDecoder, WordVocabulary, pad_sequences
from fusionrec.registry import MODELS


class NORConfig(OutfitConfig):
    objective = "pairs"
    protocol = "matching"
    hidden_dim: int = Field(64, gt=0)
    vocab_size: int = Field(2000, gt=4)
    max_words: int = Field(20, gt=0, description="comment words kept (training targets and generation)")
    comment_weight: float = Field(1.0, ge=0, description="λ of the comment NLL in the joint loss")
    dropout: float = Field(0.1, ge=0, lt=1)


class MutualAttention(nn.Module):
    """Attention pooling of one item's parts guided by the mean of the other's (padding masked).

    Shapes: parts (B, R, D), mask (B, R), guide (B, D) -> pooled (B, D), weights (B, R)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.parts = nn.Linear(dim, hidden_dim, bias=False)
        self.guide = nn.Linear(dim, hidden_dim)
        self.score = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, parts: Tensor, mask: Tensor, guide: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.score(torch.tanh(self.parts(parts) + self.guide(guide)[:, None, :]))[..., 0]  # (B, R)
        weights = masked_softmax(logits, mask)
        return torch.einsum("br,brd->bd", weights, parts), weights


def masked_mean(parts: Tensor, mask: Tensor) -> Tensor:
    valid = mask.float()[..., None]
    return (parts * valid).sum(1) / valid.sum(1).clamp_min(1.0)


@MODELS.register("nor", config=NORConfig, task="outfit", paper="Lin et al., TKDE 2019", modalities="text, image")
class NOR(OutfitModel):
    """Mutual attention, matching decoder and comment generator, trained jointly (module docstring)."""

    comments: Tensor

    def __init__(
        self,
        items: ItemEncoder,
        vocabulary: WordVocabulary,
        comments: Tensor,
        config: NORConfig,
        part_words: dict[str, int] | None = None,
        names: list[str] | None = None,
    ) -> None:
        super().__init__()
        dim, hidden = items.dim, config.hidden_dim
        self.items_encoder = items
        self.attend_top = MutualAttention(dim, hidden)
        self.attend_bottom = MutualAttention(dim, hidden)
        self.match = nn.Sequential(
            nn.Linear(3 * dim, hidden), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(hidden, 1)
        )
        self.initial = nn.Linear(2 * dim, hidden)
        self.decoder = AttentiveGRUDecoder(len(vocabulary), dim, hidden, dim, dropout=config.dropout)
        self.vocabulary = vocabulary
        self.register_buffer("comments", comments.long(), persistent=False)  # (P, T) training pairs only
        self.config = config
        self.part_words, self.names = part_words or {}, names or []

    @classmethod
    def from_dataset(cls, config: NORConfig, dataset: Any) -> NOR:
        pairs = dataset.tables["pairs"]
        train = pairs["split"].to_numpy() == 0
        texts = pairs["comment"].astype(str).to_numpy()
        vocabulary = WordVocabulary.fit(texts[train], config.vocab_size)
        encoded = [vocabulary.encode(t, config.max_words) if keep else [] for t, keep in zip(texts, train)]
        comments = pad_sequences(encoded, config.max_words + 2)
        _, vocab = name_word_ids(dataset)
        if config.name_words is None:  # parts: image regions where there are some, else the name's words
            names = config.modalities if config.modalities is not None else tuple(dataset.modalities)
            grids = any(dataset.modalities[n].kind == "regions" for n in names)
            config = config.model_copy(update={"name_words": not grids})
        return cls(
            ItemEncoder(**item_inputs(config, dataset), dim=config.dim),
            vocabulary,
            comments,
            config,
            vocab,
            dataset.items["title"].astype(str).tolist(),
        )

    def pool(self, tops: Tensor, bottoms: Tensor) -> dict[str, Tensor]:
        """Parts, masks, mutual-attention weights and pooled vectors of (top, bottom) pairs (B,)."""
        parts_t, mask_t = self.items_encoder.regions(tops)
        parts_b, mask_b = self.items_encoder.regions(bottoms)
        v_t, a_t = self.attend_top(parts_t, mask_t, masked_mean(parts_b, mask_b))
        v_b, a_b = self.attend_bottom(parts_b, mask_b, masked_mean(parts_t, mask_t))
        return {
            "parts_t": parts_t,
            "mask_t": mask_t,
            "parts_b": parts_b,
            "mask_b": mask_b,
            "v_t": v_t,
            "v_b": v_b,
            "a_t": a_t,
            "a_b": a_b,
        }

    def _logit(self, p: dict[str, Tensor]) -> Tensor:
        return self.match(torch.cat([p["v_t"], p["v_b"], p["v_t"] * p["v_b"]], -1))[:, 0]

    def _memory(self, p: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        memory = torch.cat([p["parts_t"], p["parts_b"]], 1)
        mask = torch.cat([p["mask_t"], p["mask_b"]], 1)
        initial = torch.tanh(self.initial(torch.cat([p["v_t"], p["v_b"]], -1)))
        return memory, mask, initial

    def loss(self, batch: OutfitBatch) -> LossOutput:
        assert batch.negatives is not None and batch.rows is not None
        positive = self.pool(batch.items[:, 0], batch.items[:, 1])
        negative = self.pool(batch.negatives[:, 0], batch.negatives[:, 1])
        logits = torch.cat([self._logit(positive), self._logit(negative)])
        labels = torch.cat([torch.ones(len(batch.items)), torch.zeros(len(batch.items))]).to(logits)
        match = F.binary_cross_entropy_with_logits(logits, labels)
        memory, mask, initial = self._memory(positive)
        comment = self.decoder.nll(self.comments[batch.rows], memory, mask, initial).mean()
        loss = match + self.config.comment_weight * comment
        return LossOutput(loss, {"match": match.detach(), "comment": comment.detach()})

    def outfit_scores(self, items: Tensor, mask: Tensor) -> Tensor:
        """The matching logit of the outfit's first two slots (top and bottom in category order)."""
        return self._logit(self.pool(items[:, 0], items[:, 1]))

    def match_scores(self, tops: Tensor, bottoms: Tensor) -> Tensor:
        b, c = bottoms.shape
        return self._logit(self.pool(tops.repeat_interleave(c), bottoms.reshape(-1))).reshape(b, c)

    def generate_comments(self, tops: Tensor, bottoms: Tensor) -> list[str]:
        """Greedy comments for (top, bottom) pairs (B,)."""
        tokens, _ = self._generate(tops, bottoms)
        return [self.vocabulary.decode(row) for row in tokens.tolist()]

    def _generate(self, tops: Tensor, bottoms: Tensor) -> tuple[Tensor, Tensor]:
        memory, mask, initial = self._memory(self.pool(tops, bottoms))
        return self.decoder.generate(memory, mask, initial, bos_id=BOS, eos_id=EOS, max_len=self.config.max_words + 1)

    def _part_labels(self, item: int, count: int) -> list[str]:
        grids = any(self.items_encoder._feature(n).dim() == 3 for n in self.items_encoder.names)
        if self.items_encoder.word is not None and not grids:
            known = [w for w in words(self.names[item]) if w in self.part_words] if self.names else []
            return [*known, *[f"word {k}" for k in range(len(known), count)]][:count]
        return [f"region {k}" for k in range(count)]

    def mutual_attention(self, top: int, bottom: int) -> dict[str, Any]:
        """Explanation of one pair: the mutual attention over each item's parts, the match score, the comment and
        which parts each generated word attended to."""
        with torch.no_grad():
            p = self.pool(torch.tensor([top]), torch.tensor([bottom]))
            tokens, attention = self._generate(torch.tensor([top]), torch.tensor([bottom]))
            match = float(torch.sigmoid(self._logit(p))[0])
        a_t = p["a_t"][0][p["mask_t"][0]].tolist()
        a_b = p["a_b"][0][p["mask_b"][0]].tolist()
        top_labels, bottom_labels = self._part_labels(top, len(a_t)), self._part_labels(bottom, len(a_b))
        return {
            "weights": {
                "top parts (mutual attention)": dict(zip(top_labels, a_t)),
                "bottom parts (mutual attention)": dict(zip(bottom_labels, a_b)),
            },
            "match": match,
            "comment": self.vocabulary.decode(tokens[0].tolist()),
            "comment_attention": np.round(attention[0].numpy(), 4).tolist(),
        }
