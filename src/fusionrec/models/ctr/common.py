"""What the CTR models share: the field layout the ``ctr`` task fits, its typed batch, the field
embeddings every model starts from, and the binary cross-entropy loss with embedding L2.

The task fits the layout (vocabularies, buckets, normalisation) on training rows and hands it to
the models through ``dataset.meta[LAYOUT_KEY]``; a model never reads the run config.

Shapes:
    B batch, F fields, Fc single-valued categorical fields, Fn numeric fields, L tokens of a
    sequence field, D embedding dim, Dm a content vector's dim, R regions.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from fusionrec.data.batches import _Batch
from fusionrec.errors import DataError
from fusionrec.models.base import LossOutput, ModelConfig, Recommender

LAYOUT_KEY = "ctr_layout"
FieldKind = Literal["categorical", "sequence", "numeric", "content"]


@dataclass(frozen=True)
class FieldInfo:
    """One input field as the models see it.

    ``kind``: ``categorical`` (one code, 0 = unknown), ``sequence`` (codes, 0 = padding; ``ordered``
    for token sequences such as titles, unordered for multi-valued fields such as genres), ``numeric``
    (one normalised float), ``content`` (an item feature: a vector (Dm,) or ``num_regions`` tokens).
    ``vocab_size`` counts code 0; ``length`` is a sequence's padded length L; ``labels`` name the codes
    (for explanations)."""

    name: str
    kind: FieldKind
    vocab_size: int = 0
    dim: int = 0
    num_regions: int = 0
    length: int = 0
    ordered: bool = False
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldLayout:
    """The fields of a run, in the order of the task's ``fields`` section."""

    fields: tuple[FieldInfo, ...]

    def of_kind(self, kind: FieldKind) -> list[FieldInfo]:
        return [f for f in self.fields if f.kind == kind]


def layout_of(dataset: Any, model: str) -> FieldLayout:
    layout = dataset.meta.get(LAYOUT_KEY)
    if not isinstance(layout, FieldLayout):
        raise DataError(f"{model} is a ctr model: build the ctr task on the data set first (it fits the field layout)")
    return layout


@dataclass(frozen=True)
class CTRBatch(_Batch):
    """Labelled rows, fields grouped by kind in layout order.

    Shapes: rows (B,) interaction row ids (-1 for a scored hypothetical row); users, items (B,);
    labels (B,) float 0/1; categorical (B, Fc) int64; numeric (B, Fn) float; sequences: one (B, L)
    int64 per sequence field; contents: one (B, Dm) or (B, R, Dm) float per content field;
    content_masks: one (B,) bool per content field (False: the item lacks it; its values are zeros
    and the models mask it)."""

    rows: Tensor
    users: Tensor
    items: Tensor
    labels: Tensor
    categorical: Tensor
    numeric: Tensor
    sequences: tuple[Tensor, ...] = ()
    contents: tuple[Tensor, ...] = ()
    content_masks: tuple[Tensor, ...] = ()


class CTRConfig(ModelConfig):
    """What every CTR model takes: the embedding dim D and the L2 weight on the embeddings a batch reads."""

    embedding_dim: int = 16
    embedding_reg: float = 1e-6


def masked_mean(tokens: Tensor, mask: Tensor) -> Tensor:
    """Mean of the unmasked tokens; zeros where a row has none. Shapes: (B, L, D), (B, L) -> (B, D)."""
    weights = mask.to(tokens.dtype)[..., None]  # (B, L, 1)
    return (tokens * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class FieldEmbedding(nn.Module):
    """One D-dim vector per field (``forward``), and one weight per field for a linear term (``linear``).

    categorical: a lookup; sequence: the mean of its tokens' vectors (padding excluded); numeric:
    ``x * v_f``; content (only with ``use_content``): a linear projection of the vector (regions mean
    pooled first), zeros when the item lacks it. ``vectors`` / ``linear`` False leave that part out
    (LR has no vectors; DCN-v2, AutoInt and CMBF no linear term).

    Shapes: batch -> (B, F', D) with F' the fields used; linear -> (B,).
    """

    def __init__(
        self, layout: FieldLayout, dim: int, use_content: bool = False, *, vectors: bool = True, linear: bool = True
    ) -> None:
        super().__init__()
        self.layout, self.use_content = layout, use_content
        categorical, sequences = layout.of_kind("categorical"), layout.of_kind("sequence")
        num_numeric = len(layout.of_kind("numeric"))
        contents = layout.of_kind("content") if use_content else []
        self.categorical = nn.ModuleList(nn.Embedding(f.vocab_size, dim) for f in categorical if vectors)
        self.sequences = nn.ModuleList(nn.Embedding(f.vocab_size, dim, padding_idx=0) for f in sequences if vectors)
        self.numeric = nn.Parameter(torch.randn(num_numeric, dim) * 0.01) if vectors and num_numeric else None
        self.contents = nn.ModuleList(nn.Linear(f.dim, dim) for f in contents if vectors)
        # first-order weights: one scalar per code, per numeric field, per content vector
        self.categorical_w = nn.ModuleList(nn.Embedding(f.vocab_size, 1) for f in categorical if linear)
        self.sequences_w = nn.ModuleList(nn.Embedding(f.vocab_size, 1, padding_idx=0) for f in sequences if linear)
        self.numeric_w = nn.Parameter(torch.zeros(num_numeric)) if linear and num_numeric else None
        self.contents_w = nn.ModuleList(nn.Linear(f.dim, 1, bias=False) for f in contents if linear)
        for table in [*self.categorical, *self.sequences]:
            nn.init.normal_(table.weight, std=0.01)
        for table in [*self.categorical_w, *self.sequences_w]:
            nn.init.zeros_(table.weight)
        self.num_fields = len(categorical) + len(sequences) + num_numeric + len(contents)
        self.reg: Tensor | None = None  # L2 of the rows the last forward (or LR's linear) read

    @staticmethod
    def _pooled_content(values: Tensor, mask: Tensor) -> Tensor:
        pooled = values.mean(1) if values.dim() == 3 else values  # (B, Dm)
        return pooled * mask.to(pooled.dtype)[:, None]

    def _content_fields(self, batch: CTRBatch) -> list[tuple[Tensor, Tensor]]:
        """(values, mask) of the content fields used, in layout order."""
        return list(zip(batch.contents, batch.content_masks)) if self.use_content else []

    def forward(self, batch: CTRBatch) -> Tensor:
        parts = [table(batch.categorical[:, j]) for j, table in enumerate(self.categorical)]  # (B, D) each
        tokens = [table(codes) for table, codes in zip(self.sequences, batch.sequences)]  # (B, L, D) each
        self.reg = squared_rows(parts + tokens, len(batch.labels))
        for vectors, codes in zip(tokens, batch.sequences):
            parts.append(masked_mean(vectors, codes > 0))  # (B, D)
        if self.numeric is not None:
            parts.extend((batch.numeric[:, :, None] * self.numeric).unbind(1))  # (B, D) each
        for proj, (values, mask) in zip(self.contents, self._content_fields(batch)):
            parts.append(proj(self._pooled_content(values, mask)) * mask.to(values.dtype)[:, None])  # (B, D)
        return torch.stack(parts, 1)  # (B, F', D)

    def linear(self, batch: CTRBatch) -> Tensor:
        weights = [table(batch.categorical[:, j]) for j, table in enumerate(self.categorical_w)]  # (B, 1) each
        tokens = [table(codes) for table, codes in zip(self.sequences_w, batch.sequences)]  # (B, L, 1) each
        if not self.categorical and not self.sequences:  # LR: its weights are what the L2 is on
            self.reg = squared_rows(weights + tokens, len(batch.labels))
        out = batch.labels.new_zeros(batch.labels.shape)  # (B,)
        for w in weights:
            out = out + w.squeeze(-1)
        for w, codes in zip(tokens, batch.sequences):
            out = out + masked_mean(w, codes > 0).squeeze(-1)
        if self.numeric_w is not None:
            out = out + batch.numeric @ self.numeric_w
        for proj, (values, mask) in zip(self.contents_w, self._content_fields(batch)):
            out = out + proj(self._pooled_content(values, mask)).squeeze(-1)
        return out


def squared_rows(rows: list[Tensor], batch_size: int) -> Tensor | None:
    """Sum of squares of the embedding rows a batch read, per row of the batch (the CTR embedding L2)."""
    if not rows:
        return None
    return sum(r.pow(2).sum() for r in rows) / max(batch_size, 1)  # type: ignore[return-value]


def mlp(in_dim: int, hidden: tuple[int, ...], dropout: float) -> tuple[nn.Sequential, int]:
    """Linear-ReLU-Dropout blocks; returns the stack and its output width."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU(), nn.Dropout(dropout)]
        in_dim = width
    return nn.Sequential(*layers), in_dim


class CTRModel(Recommender):
    """Base of the CTR models: ``logits(batch) -> (B,)``; the loss is binary cross-entropy plus
    ``embedding_reg`` x the L2 of the embedding rows read; ``score`` is the logit as a (B, 1) column."""

    embedding_reg: float = 0.0
    fields_in: FieldEmbedding  # every CTR model embeds its fields with one

    @abc.abstractmethod
    def logits(self, batch: CTRBatch) -> Tensor:
        """The click logit of every row. Shapes: batch -> (B,)."""

    def loss(self, batch: CTRBatch) -> LossOutput:
        self.fields_in.reg = None
        bce = nn.functional.binary_cross_entropy_with_logits(self.logits(batch), batch.labels)
        reg = self.fields_in.reg if self.fields_in.reg is not None else bce.new_zeros(())  # set by the lookups
        return LossOutput(bce + self.embedding_reg * reg, {"bce": bce.detach(), "reg": reg.detach()})

    def score(self, batch: Any) -> Tensor:
        return self.logits(batch)[:, None]  # (B, 1)

    def lookup_embeddings(self) -> tuple[nn.Embedding, ...]:
        """The field tables, read row by row: ``train.sparse_embeddings`` gives them sparse gradients, so a
        step no longer updates whole tables (what dominates at 10^5+ users or items)."""
        fi = self.fields_in
        return (*fi.categorical, *fi.sequences, *fi.categorical_w, *fi.sequences_w)  # type: ignore[arg-type]
