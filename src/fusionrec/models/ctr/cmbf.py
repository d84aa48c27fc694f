"""CMBF: Chen, Lu, Wang, Yang, "CMBF: Cross-Modal-Based Fusion Recommendation Algorithm",
Sensors 21(16):5275, 2021 (reference implementation: alibaba/EasyRec ``layers/cmbf.py``).

1. Single-modal towers: image tokens and text tokens (the categorical/numeric fields, one token each,
   and the token sequences with token-type and position embeddings) each go through BERT-style
   self-attention layers.
2. Cross-modal fusion layers (:class:`~fusionrec.nn.fusion.CrossModalTransformer`), for each side
   from the previous layer's outputs of both: ``c = CrossAttn(Q = own, K = V = other)``,
   ``h = LN(c + SelfAttn(c))``, ``out = LN(h + FFN(h))``.
3. Output: the image tokens mean pooled, the field tokens flattened, each sequence mean pooled,
   concatenated, then a DNN and the logit; binary cross-entropy.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.errors import ConfigError
from fusionrec.models.ctr.common import (
    CTRBatch,
    CTRConfig,
    CTRModel,
    FieldEmbedding,
    FieldInfo,
    FieldLayout,
    layout_of,
    masked_mean,
    mlp,
    squared_rows,
)
from fusionrec.nn.fusion.cross_modal_transformer import CrossModalTransformer
from fusionrec.nn.sequence import PostNormLayer, SelfAttention
from fusionrec.registry import MODELS


class CMBFConfig(CTRConfig):
    name: str = "cmbf"
    image_field: str | None = Field(None, description="the content field of the image tower; None: the first one")
    image_tokens: int = Field(
        64, gt=0, description="tokens made from a global image vector (EasyRec image_feature_dim)"
    )
    num_heads: int = Field(2, gt=0)
    num_tower_layers: int = Field(2, ge=0, description="self-attention layers of each single-modal tower")
    cross_modal_layers: int = Field(3, ge=0, description="cross-modal fusion layers (0: the no-fusion ablation)")
    towers: Literal["both", "image", "text"] = Field("both", description="ablation: keep one tower only")
    cross_residual: bool = Field(True, description="add each stream's input to its cross-attention output")
    hidden_dims: tuple[int, ...] = (256, 64)
    dropout: float = Field(0.1, ge=0, lt=1)


@MODELS.register("cmbf", config=CMBFConfig, task="ctr", paper="Chen et al., Sensors 2021", modalities="image, text")
class CMBF(CTRModel):
    """Cross-modal-based fusion of image tokens with field/text tokens for click prediction.

    Args:
        layout: the fitted field layout; one content field is the image (``image_field``), any other
            content field (e.g. a text embedding) becomes one more text token.
        embedding_dim: D of every token (16). image_tokens: tokens of a global image vector (64).
        num_heads: H (2). num_tower_layers: 2. cross_modal_layers: 3 (EasyRec's demo).
        towers: ``both``; ``image`` or ``text`` keep one tower (ablations). cross_residual: True.
        hidden_dims: the DNN ((256, 64)). dropout: 0.1. embedding_reg: 1e-6 (EasyRec's).

    Shapes:
        batch -> image tokens (B, Li, D), text tokens (B, Lt, D) -> towers -> cross layers
        -> [mean image (B, D) | field tokens (B, Fg*D) | mean of each sequence (B, D) | image present (B, 1)]
        -> DNN -> (B,). ``cross_attention``: text->image (B, H, Lt, Li) and image->text (B, H, Li, Lt).

    Note:
        - A global image vector becomes ``image_tokens`` tokens as in EasyRec (project to that many
          scalars, multiply each by a learned D-vector); region grids are projected token by token
          with a learned region position embedding.
        - A missing image is masked: its tokens are padding in every attention and the pooled image
          is zero; the DNN also gets a 0/1 "image present" input so it is told, not shown a black image.
        - ``cross_residual=True`` (EasyRec: no such residual) adds each stream's input to its
          cross-attention output: without it a row whose image is missing loses all its text tokens
          in the first cross layer (attention to no keys is zero).
        - One head count and one D for both streams and the towers (EasyRec: image cross head size 8,
          text 16); attention layers without output projection, as in EasyRec.
        - Multi-valued fields (genres) are token sequences without positions; numeric fields are
          tokens ``x v_f``; a content vector other than the image (e.g. a text embedding) is one more
          text token. EasyRec's optional "other" feature group, concatenated after pooling, is not built.
    """

    def __init__(
        self,
        layout: FieldLayout,
        *,
        embedding_dim: int = 16,
        image_field: str | None = None,
        image_tokens: int = 64,
        num_heads: int = 2,
        num_tower_layers: int = 2,
        cross_modal_layers: int = 3,
        towers: str = "both",
        cross_residual: bool = True,
        hidden_dims: tuple[int, ...] = (256, 64),
        dropout: float = 0.1,
        embedding_reg: float = 1e-6,
    ) -> None:
        super().__init__()
        contents = layout.of_kind("content")
        self.image_index = self._image_index(contents, image_field, required=towers != "text")
        self.layout, self.towers, self.embedding_reg = layout, towers, embedding_reg
        d = embedding_dim
        self.fields_in = FieldEmbedding(layout, d, linear=False)  # categorical, sequence and numeric vectors
        self.use_text, self.use_image = towers in ("both", "text"), towers in ("both", "image")
        # text side: one token per categorical / numeric / other content field, L per sequence field
        sequences = layout.of_kind("sequence")
        ordered = [f.length for f in sequences if f.ordered]
        self.type_embedding = nn.Parameter(torch.randn(len(sequences), d) * 0.02) if sequences else None
        self.position_embedding = nn.Embedding(max(ordered), d) if ordered else None
        self.other_contents = [j for j in range(len(contents)) if j != self.image_index]
        self.content_in = nn.ModuleList(nn.Linear(contents[j].dim, d) for j in self.other_contents)
        # image side
        image = contents[self.image_index] if self.image_index is not None and self.use_image else None
        self.regions = bool(image is not None and image.num_regions)
        if image is not None and self.regions:
            self.image_in: nn.Module = nn.Linear(image.dim, d)
            self.region_position = nn.Parameter(torch.randn(image.num_regions, d) * 0.02)
        elif image is not None:
            self.image_in = nn.Linear(image.dim, image_tokens)
            self.image_map = nn.Parameter(torch.randn(image_tokens, d) * 0.02)  # EasyRec's [1, 64, H] map

        def tower() -> nn.ModuleList:
            return nn.ModuleList(
                PostNormLayer(SelfAttention(d, num_heads, dropout), d, 4 * d, dropout, activation="relu")
                for _ in range(num_tower_layers)
            )

        self.text_tower = tower() if self.use_text else nn.ModuleList()
        self.image_tower = tower() if self.use_image else nn.ModuleList()
        self.cross = nn.ModuleList(
            CrossModalTransformer(d, num_heads=num_heads, dropout=dropout, residual=cross_residual)
            for _ in range(cross_modal_layers if towers == "both" else 0)
        )
        num_flat = len(layout.of_kind("categorical")) + len(layout.of_kind("numeric")) + len(self.other_contents)
        width = (d * (num_flat + len(sequences)) if self.use_text else 0) + (d + 1 if self.use_image else 0)
        self.deep, deep_width = mlp(width, hidden_dims, dropout)
        self.out = nn.Linear(deep_width, 1)
        self.text_tokens = self._text_token_names(layout)

    @staticmethod
    def _image_index(contents: list[FieldInfo], image_field: str | None, required: bool) -> int | None:
        """The image field's position among the content fields (None: none, for the text-only ablation)."""
        names = [f.name for f in contents]
        if image_field is not None and image_field not in names:
            raise ConfigError(f"model.image_field={image_field!r} is not a content field; content fields: {names}")
        if image_field is None and not names:
            if not required:
                return None
            raise ConfigError(
                "cmbf needs an image content field in task.fields (e.g. task.fields.image.source=modality); "
                "or model.towers=text for the field-tower-only ablation"
            )
        return names.index(image_field) if image_field is not None else 0

    @classmethod
    def from_dataset(cls, config: CMBFConfig, dataset: Any) -> CMBF:
        return cls(
            layout_of(dataset, "cmbf"),
            embedding_dim=config.embedding_dim,
            image_field=config.image_field,
            image_tokens=config.image_tokens,
            num_heads=config.num_heads,
            num_tower_layers=config.num_tower_layers,
            cross_modal_layers=config.cross_modal_layers,
            towers=config.towers,
            cross_residual=config.cross_residual,
            hidden_dims=config.hidden_dims,
            dropout=config.dropout,
            embedding_reg=config.embedding_reg,
        )

    def _text_token_names(self, layout: FieldLayout) -> list[tuple[str, int]]:
        """(field name, position) of each text token, in the order ``text_tokens`` builds them."""
        names = [(f.name, 0) for f in layout.of_kind("categorical")] + [(f.name, 0) for f in layout.of_kind("numeric")]
        contents = layout.of_kind("content")
        names += [(contents[j].name, 0) for j in self.other_contents]
        for f in layout.of_kind("sequence"):
            names += [(f.name, p) for p in range(f.length)]
        return names

    # ------------------------------------------------------------------ the two token sets
    def text_side(self, batch: CTRBatch) -> tuple[Tensor, Tensor]:
        """Text tokens (B, Lt, D) and their mask (B, Lt): the single fields first, then each sequence."""
        fi = self.fields_in
        single = [table(batch.categorical[:, j]) for j, table in enumerate(fi.categorical)]  # (B, D) each
        looked_up = [table(codes) for table, codes in zip(fi.sequences, batch.sequences)]  # (B, L, D) each
        fi.reg = squared_rows(single + looked_up, len(batch.labels))  # the embedding L2 of CTRModel.loss
        if fi.numeric is not None:
            single.extend((batch.numeric[:, :, None] * fi.numeric).unbind(1))
        masks = [torch.ones_like(batch.labels, dtype=torch.bool)] * len(single)
        for proj, j in zip(self.content_in, self.other_contents):
            present = batch.content_masks[j]
            values = batch.contents[j]
            single.append(proj(values.mean(1) if values.dim() == 3 else values) * present.to(values.dtype)[:, None])
            masks.append(present)
        tokens = [torch.stack(single, 1)] if single else []
        token_masks = [torch.stack(masks, 1)] if masks else []
        for k, (rows, codes, info) in enumerate(zip(looked_up, batch.sequences, self.layout.of_kind("sequence"))):
            assert self.type_embedding is not None  # built when the layout has sequences
            embedded = rows + self.type_embedding[k]  # (B, L, D)
            if info.ordered and self.position_embedding is not None:  # titles, tags; genres are a set
                embedded = embedded + self.position_embedding(torch.arange(codes.shape[1], device=codes.device))
            tokens.append(embedded)
            token_masks.append(codes > 0)
        return torch.cat(tokens, 1), torch.cat(token_masks, 1)

    def image_side(self, batch: CTRBatch) -> tuple[Tensor, Tensor]:
        """Image tokens (B, Li, D) and their mask (B, Li): all False for a row whose item has no image."""
        assert self.image_index is not None
        values, present = batch.contents[self.image_index], batch.content_masks[self.image_index]
        if self.regions:
            tokens = self.image_in(values) + self.region_position  # (B, R, D)
        else:
            tokens = self.image_in(values)[:, :, None] * self.image_map  # (B, Li, D)
        tokens = tokens * present.to(tokens.dtype)[:, None, None]
        return tokens, present[:, None].expand(-1, tokens.shape[1])

    # ------------------------------------------------------------------ forward
    def encode(self, batch: CTRBatch) -> tuple[Tensor, list[dict[str, Tensor]]]:
        """The DNN input (B, W) and each cross layer's attention weights."""
        parts: list[Tensor] = []
        weights: list[dict[str, Tensor]] = []
        text = text_mask = image = image_mask = None
        if self.use_text:
            text, text_mask = self.text_side(batch)
            for layer in self.text_tower:
                text, _ = layer(text, None, text_mask)  # (B, Lt, D)
        if self.use_image:
            image, image_mask = self.image_side(batch)
            for layer in self.image_tower:
                image, _ = layer(image, None, image_mask)  # (B, Li, D)
        for layer in self.cross:
            fused = layer(image, text, image_mask, text_mask)
            image, text = fused.out, fused.out_b
            weights.append(fused.weights)
        if text is not None and text_mask is not None:
            num_single = len(self.text_tokens) - sum(s.shape[1] for s in batch.sequences)
            parts.append(text[:, :num_single].flatten(1))  # (B, Fg*D)
            start = num_single
            for codes in batch.sequences:
                stop = start + codes.shape[1]
                parts.append(masked_mean(text[:, start:stop], text_mask[:, start:stop]))  # (B, D)
                start = stop
        if image is not None and image_mask is not None:
            parts.append(masked_mean(image, image_mask))  # (B, D)
            parts.append(image_mask[:, :1].to(image.dtype))  # (B, 1) image present
        return torch.cat(parts, -1), weights

    def logits(self, batch: CTRBatch) -> Tensor:
        features, _ = self.encode(batch)
        return self.out(self.deep(features)).squeeze(-1)  # (B,)

    @torch.no_grad()
    def cross_attention(self, batch: CTRBatch) -> dict[str, Tensor]:
        """The last cross layer's attention: ``text_to_image`` (B, H, Lt, Li), ``image_to_text`` (B, H, Li, Lt)."""
        _, weights = self.encode(batch)
        if not weights:
            return {}
        return {"text_to_image": weights[-1]["b_cross"], "image_to_text": weights[-1]["a_cross"]}
