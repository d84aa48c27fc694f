"""What the outfit models share: their batch, how an item becomes a vector, the set-attention layer, and the
default ways a compatibility scorer answers the three protocols of the ``outfit`` task.

Items: an item is its category plus its content. ``ItemEncoder`` sums a category embedding, a linear
projection of every dense modality of the data set (``text``: MiniLM after ``fusionrec features extract``;
``visual``/``image``...), the mean of every region modality (a visual grid), and, when the data set has no
``text`` modality, a mean word embedding of the item's name over a vocabulary of the *training* outfits' names
(unknown words are skipped). Held-out outfits bring unseen items (Polyvore items belong to one outfit), so
nothing item-specific (no id embedding) is learnt.

Objectives (the config's ``objective``, read by the task): ``outfits`` (batches of training outfits with a
same-category swapped copy as negatives), ``users`` (a synthetic user's history and target outfit) and
``pairs`` (a top, its bottom and a random bottom, the pair's row for its comment).

Shapes:
    B batch, L items per outfit, C candidates, H history length, R regions, W name words, D dim.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.batches import _Batch
from fusionrec.metrics.generation import words
from fusionrec.models.base import ModelConfig, Recommender

Objective = Literal["outfits", "users", "pairs"]
NAME_WORDS = 8


@dataclass(frozen=True)
class OutfitBatch(_Batch):
    """Shapes: items (B, L) item indices (0 where padded), mask (B, L) True = item; negatives (B, L) the same
    outfits with items swapped (``outfits``) or ``[top, wrong bottom]`` (``pairs``); history (B, H) and
    history_mask (B, H) for ``users``; rows (B,) the pair rows (``pairs``: comments)."""

    items: Tensor
    mask: Tensor
    negatives: Tensor | None = None
    history: Tensor | None = None
    history_mask: Tensor | None = None
    rows: Tensor | None = None


class OutfitConfig(ModelConfig):
    """Base of the outfit models' configs."""

    objective: ClassVar[Objective] = "outfits"
    protocol: ClassVar[str] = "compatibility"
    dim: int = Field(64, gt=0, description="item vector width D")
    modalities: tuple[str, ...] | None = Field(None, description="modalities to read (default: all the data set has)")
    name_words: bool | None = Field(None, description="word embedding of item names (default: when no text modality)")


def name_word_ids(dataset: Any, max_words: int = NAME_WORDS) -> tuple[Tensor, dict[str, int]]:
    """(I, W) word ids of every item's name over the vocabulary (word -> id from 1) of training outfits' item
    names (0 = none), and that vocabulary."""
    outfits = dataset.tables["outfits"]
    train = np.unique(
        np.concatenate([np.asarray(x, dtype=np.int64) for x in outfits.loc[outfits["split"] == 0, "items"]])
    )
    names = dataset.items["title"].astype(str).tolist()
    vocab: dict[str, int] = {}
    for i in train:
        for w in words(names[i]):
            vocab.setdefault(w, len(vocab) + 1)
    ids = np.zeros((len(names), max_words), dtype=np.int64)
    for i, name in enumerate(names):
        known = [vocab[w] for w in words(name) if w in vocab][:max_words]
        ids[i, : len(known)] = known
    return torch.from_numpy(ids), vocab


def item_inputs(config: OutfitConfig, dataset: Any) -> dict[str, Any]:
    """Keyword arguments of :class:`ItemEncoder` read from a data set (categories, modalities, name words)."""
    from fusionrec.data.readers.polyvore import item_categories

    names = config.modalities if config.modalities is not None else tuple(dataset.modalities)
    missing = [n for n in names if n not in dataset.modalities]
    if missing:
        dataset.schema.require_modalities(config.name, list(names))
    features = {n: torch.from_numpy(np.array(dataset.modalities[n].values, dtype=np.float32)) for n in names}
    use_words = config.name_words if config.name_words is not None else "text" not in features
    word_ids, vocab = name_word_ids(dataset) if use_words else (None, {})
    return {
        "categories": torch.from_numpy(item_categories(dataset)),
        "num_categories": len(dataset.meta["categories"]),
        "features": features,
        "word_ids": word_ids,
        "vocab_size": len(vocab) + 1,
    }


class ItemEncoder(nn.Module):
    """``e_i = E_c[c_i] + Σ_m W_m x_i^m (+ mean_w E_w[w])``; region modalities are averaged over their non-blank
    regions first. :meth:`regions` gives an item's parts for attention over them (regions, else name words).

    Shapes: categories (I,); features name -> (I, D_m) or (I, R, D_m); word_ids (I, W)."""

    categories: Tensor
    word_ids: Tensor

    def __init__(
        self,
        categories: Tensor,
        num_categories: int,
        features: dict[str, Tensor],
        word_ids: Tensor | None,
        vocab_size: int,
        dim: int,
    ) -> None:
        super().__init__()
        self.register_buffer("categories", categories.long(), persistent=False)
        self.category = nn.Embedding(num_categories, dim)
        self.names = sorted(features)
        for name in self.names:
            self.register_buffer(f"feat_{name}", features[name].float(), persistent=False)
        self.project = nn.ModuleDict({n: nn.Linear(features[n].shape[-1], dim) for n in self.names})
        self.word = None
        if word_ids is not None:
            self.register_buffer("word_ids", word_ids.long(), persistent=False)
            self.word = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.dim = dim

    def _feature(self, name: str) -> Tensor:
        return getattr(self, f"feat_{name}")

    def forward(self, items: Tensor) -> Tensor:
        """(..., D) vectors of item indices (...)."""
        out = self.category(self.categories[items])
        for name in self.names:
            x = self._feature(name)[items]
            if x.dim() == items.dim() + 2:  # regions: mean of the non-blank ones
                present = (x.abs().sum(-1, keepdim=True) > 0).float()
                x = (x * present).sum(-2) / present.sum(-2).clamp_min(1.0)
            out = out + self.project[name](x)
        if self.word is not None:
            ids = self.word_ids[items]  # (..., W)
            valid = (ids > 0).float().unsqueeze(-1)
            out = out + (self.word(ids) * valid).sum(-2) / valid.sum(-2).clamp_min(1.0)
        return out

    def regions(self, items: Tensor) -> tuple[Tensor, Tensor]:
        """An item's parts: ((B, R, D) vectors, (B, R) mask): the projected regions of the first region modality,
        else its name words; each part carries the item's category embedding and dense features."""
        base = self.category(self.categories[items])  # (B, D)
        grid = None
        for name in self.names:
            x = self._feature(name)[items]
            if x.dim() == 3 and grid is None:
                grid = (self.project[name](x), x.abs().sum(-1) > 0)
            elif x.dim() == 2:
                base = base + self.project[name](x)
        if grid is not None:
            return base[:, None, :] + grid[0], grid[1]
        if self.word is not None:
            ids = self.word_ids[items]
            mask = ids > 0
            mask[:, 0] |= ~mask.any(1)  # a name with no known word: one (zero) word, so attention has a slot
            return base[:, None, :] + self.word(ids), mask
        return base[:, None, :], torch.ones_like(items[:, None], dtype=torch.bool)


class SetLayer(nn.Module):
    """A post-norm Transformer layer over a set (no positions), optionally cross-attending to a memory; returns
    the self-attention weights (heads averaged) for explanations.

    Shapes: x (B, L, D); mask (B, L) True = valid; causal (L, L) True = blocked; memory (B, H, D)."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.1, cross: bool = False) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True) if cross else None
        self.norm_cross = nn.LayerNorm(dim) if cross else None
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        mask: Tensor,
        causal: Tensor | None = None,
        memory: Tensor | None = None,
        memory_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        attended, weights = self.self_attn(
            x, x, x, key_padding_mask=~mask, attn_mask=causal, need_weights=True, average_attn_weights=True
        )
        x = self.norm1(x + self.drop(attended))
        if self.cross_attn is not None and memory is not None:
            assert self.norm_cross is not None
            context, _ = self.cross_attn(
                x, memory, memory, key_padding_mask=None if memory_mask is None else ~memory_mask, need_weights=False
            )
            x = self.norm_cross(x + self.drop(context))
        return self.norm2(x + self.drop(self.ff(x))), weights


def cosine_logits(query: Tensor, keys: Tensor, temperature: float) -> Tensor:
    """``cos(q, k) / τ``: (B, D) x (N, D) -> (B, N), or (B, D) x (B, C, D) -> (B, C)."""
    q, k = F.normalize(query, dim=-1), F.normalize(keys, dim=-1)
    if k.dim() == 3:
        return torch.einsum("bd,bcd->bc", q, k) / temperature
    return q @ k.T / temperature


def in_batch_targets(items: Tensor, mask: Tensor, categories: Tensor) -> tuple[Tensor, Tensor]:
    """The batch's items as a candidate pool: ((N,) item indices of valid slots, (N,) their categories)."""
    pool = items[mask]
    return pool, categories[pool]


class OutfitModel(Recommender):
    """A model of the ``outfit`` task. Subclasses give :meth:`outfit_scores`; the protocols' other questions
    default to plugging candidates into outfits and scoring those (a model with a better way overrides them)."""

    items_encoder: ItemEncoder

    @abc.abstractmethod
    def outfit_scores(self, items: Tensor, mask: Tensor) -> Tensor:
        """(B,) compatibility of outfits (B, L)."""

    def score(self, batch: OutfitBatch) -> Tensor:
        return self.outfit_scores(batch.items, batch.mask)

    def fill_scores(self, items: Tensor, mask: Tensor, blank: Tensor, candidates: Tensor) -> Tensor:
        """(B, C) scores of candidates (B, C) for the slot ``blank`` (B,) of outfits (B, L)."""
        b, c = candidates.shape
        filled = items.repeat_interleave(c, 0).clone()  # (B*C, L)
        filled[torch.arange(b * c, device=items.device), blank.repeat_interleave(c)] = candidates.reshape(-1)
        return self.outfit_scores(filled, mask.repeat_interleave(c, 0)).reshape(b, c)

    def next_scores(
        self,
        prefix: Tensor,
        prefix_mask: Tensor,
        candidates: Tensor,
        history: Tensor | None = None,
        history_mask: Tensor | None = None,
    ) -> Tensor:
        """(B, C) scores of candidates for the next item after a (left-aligned) prefix; the user's history is
        ignored by the non-personalised models."""
        b = prefix.shape[0]
        items = torch.cat([prefix, prefix.new_zeros(b, 1)], 1)
        mask = torch.cat([prefix_mask, prefix_mask.new_ones(b, 1)], 1)
        blank = torch.full((b,), prefix.shape[1], dtype=torch.long, device=prefix.device)
        return self.fill_scores(items, mask, blank, candidates)

    def match_scores(self, tops: Tensor, bottoms: Tensor) -> Tensor:
        """(B, C) scores of bottoms (B, C) for tops (B,)."""
        b, c = bottoms.shape
        pairs = torch.stack([tops.repeat_interleave(c), bottoms.reshape(-1)], 1)
        return self.outfit_scores(pairs, torch.ones_like(pairs, dtype=torch.bool)).reshape(b, c)


def bpr(positive: Tensor, negative: Tensor) -> Tensor:
    """Mean ``-log σ(s⁺ - s⁻)``."""
    return -F.logsigmoid(positive - negative).mean()


class MaskedOutfitEncoder(nn.Module):
    """FOM's network: the items of an outfit with one slot replaced by a learnt ``[MASK]`` vector, through
    Transformer layers without positions (an outfit is a set); the output at the blank is the slot's query.

    Shapes: items (B, L), mask (B, L), blank (B,) -> (B, D) and the last layer's attention (B, L, L)."""

    def __init__(self, items: ItemEncoder, num_heads: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.items = items
        self.mask_token = nn.Parameter(torch.randn(items.dim) * 0.02)
        self.layers = nn.ModuleList(SetLayer(items.dim, num_heads, dropout) for _ in range(num_layers))

    def forward(self, items: Tensor, mask: Tensor, blank: Tensor) -> tuple[Tensor, Tensor]:
        x = self.items(items)  # (B, L, D)
        is_blank = F.one_hot(blank, items.shape[1]).bool()  # (B, L)
        x = torch.where(is_blank[..., None], self.mask_token.expand_as(x), x)  # the blank's own item is never read
        mask = mask | is_blank
        weights = x.new_zeros(items.shape[0], items.shape[1], items.shape[1])
        for layer in self.layers:
            x, weights = layer(x, mask)
        rows = torch.arange(items.shape[0], device=items.device)
        return x[rows, blank], weights
