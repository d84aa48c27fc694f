"""MKGformer: a hybrid transformer with multi-level fusion for multimodal KG completion, scaled for CPU.

Paper: Chen, Zhang, Li, Deng, Tan, Xu, Huang, Si, Chen, "Hybrid Transformer with Multi-level Fusion
for Multimodal Knowledge Graph Completion", SIGIR 2022 (code: zjunlp/MKGformer). Link prediction is
masked entity prediction: the text stream reads ``[MASK] relation head-entity description`` and the
vision stream the head entity's image patches; the last layers (the M-Encoder) fuse them by

- prefix-guided interaction: visual queries attend over ``[K_text; K_vis]``,
  ``softmax(Q_v [K_t; K_v]^T / sqrt(d)) [V_t; V_v]``;
- correlation-aware fusion: each text token adds the visual tokens it correlates with inside its
  FFN, ``A = softmax(H_t H_v^T)``, ``FFN = W_2 act(W_1 H_t + W_f A H_v)``;

and the ``[MASK]`` state is scored against every entity embedding (1-N), trained with label-smoothed
cross-entropy.

Shapes:
    B queries, E entities, Lt text tokens (3 + description tokens), Lv visual tokens, D dim.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from fusionrec.errors import DataError
from fusionrec.models.base import LossOutput
from fusionrec.models.kg.base import KGBatch, KGConfig, KGModel, Training, embedding_table
from fusionrec.nn.fusion import CorrelationAwareFusion, PrefixGuidedAttention
from fusionrec.nn.fusion.layers import MultiHeadAttention
from fusionrec.registry import MODELS


class MKGformerConfig(KGConfig):
    name: str = "mkgformer"
    training: ClassVar[Training] = "1-N"
    dim: int = Field(64, gt=0, description="hidden size D of both streams")
    num_heads: int = Field(2, gt=0)
    num_layers: int = Field(1, ge=0, description="layers per stream before the M-Encoder")
    num_fusion_layers: int = Field(1, gt=0, description="M-Encoder layers (the paper's code: the last 4 of 12)")
    visual: bool = Field(True, description="false: the text-only variant (no vision stream)")
    prefix_guided: bool = Field(True, description="false: ablate prefix-guided interaction")
    correlation_fusion: bool = Field(True, description="false: ablate correlation-aware fusion")
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    text_modality: str = Field("text_tokens", description="entity description tokens (E, L, d) or vectors (E, d)")
    visual_modality: str = "visual"


def _tokens(values: np.ndarray, mask: np.ndarray) -> tuple[Tensor, Tensor]:
    """A modality as (E, L, d) token vectors and an (E, L) token mask (dense vectors become one token;
    all-zero tokens of a present entity are padding)."""
    tokens = torch.tensor(np.asarray(values, dtype=np.float32))
    if tokens.dim() == 2:
        tokens = tokens[:, None, :]
    present = torch.as_tensor(np.asarray(mask, dtype=bool))[:, None] & (tokens.abs().sum(-1) > 0)
    return tokens, present


class _Block(nn.Module):
    """Post-LayerNorm transformer layer (BERT): self-attention, then a feed-forward sublayer."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.attention = MultiHeadAttention(dim, num_heads, dropout=dropout)
        self.norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.ffn_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        out, _ = self.attention(x, x, key_mask=mask, query_mask=mask)
        x = self.norm(x + self.dropout(out))
        return self.ffn_norm(x + self.dropout(self.ffn(x)))


class _FusionLayer(nn.Module):
    """One M-Encoder layer: a vision layer with prefix-guided attention over the text tokens, and a
    text layer whose FFN is correlation-aware fusion with that layer's visual output."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.vision_attention = PrefixGuidedAttention(dim, num_heads=num_heads, dropout=dropout)
        self.vision_norm = nn.LayerNorm(dim)
        self.vision_ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.vision_ffn_norm = nn.LayerNorm(dim)
        self.text_attention = MultiHeadAttention(dim, num_heads, dropout=dropout)
        self.text_norm = nn.LayerNorm(dim)
        self.fusion = CorrelationAwareFusion(dim, dropout=dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        text: Tensor,
        text_mask: Tensor,
        vision: Tensor,
        vision_mask: Tensor,
        prefix_mask: Tensor,
        fusion_mask: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        guided = self.vision_attention(vision, text, mask=vision_mask, prefix_mask=prefix_mask)
        vision = self.vision_norm(vision + self.dropout(guided.out))  # (B, Lv, D)
        vision = self.vision_ffn_norm(vision + self.dropout(self.vision_ffn(vision))) * vision_mask[..., None]
        attended, _ = self.text_attention(text, text, key_mask=text_mask, query_mask=text_mask)
        text = self.text_norm(text + self.dropout(attended))  # (B, Lt, D); the FFN is the fusion below
        fused = self.fusion(text, vision, mask=text_mask, vision_mask=fusion_mask)
        return fused.out, vision, fused.weights, guided.weights  # weights (B, Lt, Lv), (B, H, Lv, Lt + Lv)


@MODELS.register(
    "mkgformer", config=MKGformerConfig, task="kg", paper="Chen et al., SIGIR 2022", modalities="text, visual"
)
class MKGformer(KGModel):
    """MKGformer (Chen et al., 2022), scaled for CPU.

    Args:
        num_entities: E. num_relations: R. text_tokens: (E, Lt', dt) entity description tokens and their
        mask (E, Lt'); visual_tokens: (E, Lv, dv) and mask, or None (text only). dim: D (64).
        num_heads: 2. num_layers: separate layers per stream (1). num_fusion_layers: M-Encoder layers (1).
        prefix_guided, correlation_fusion: the two fusion levels (ablations). label_smoothing: 0.1.

    Shapes:
        score_queries: entities (B,), relations (B,) in [0, 2R) -> (B, E).

    Note:
        Substitutions, for two shared CPU cores: the text stream's lower layers are the frozen,
        pre-computed MiniLM-L6 token states of each entity's description (the ``text_tokens``
        modality of ``fusionrec features extract --regions``, a few tokens), not BERT-base
        fine-tuned end to end; the vision stream reads visual
        tokens from the data set (the ``visual`` modality: EfficientNet-Lite0 patches or class
        prototypes, or the synthetic KG's planted patches), not CLIP ViT-B/32 patches; both are
        projected to a small D and run ``num_layers`` trainable layers each before
        ``num_fusion_layers`` M-Encoder layers (the code: 8 + 4 of 12, 768-d). Entities are
        embedding rows (input token of the head entity and output classes, tied, as the paper's
        added entity tokens), relations learned tokens rather than relation text; a head query
        uses a learned inverse relation (the code adds reversed triples the same way). No stage-1
        entity pre-training; the loss is label-smoothed cross-entropy over all entities (the
        code's option for WN18). Correlation-aware fusion scores with the layer's attended text
        states and masks padded visual tokens (see ``nn.fusion.multi_level``). The ablations
        mask the prefix (no prefix-guided interaction) or the visual tokens inside the FFN (no
        correlation-aware fusion), leaving the rest of the network unchanged.
    """

    text_tokens: Tensor
    text_present: Tensor
    visual_tokens: Tensor
    visual_present: Tensor

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        text_tokens: tuple[Tensor, Tensor],
        visual_tokens: tuple[Tensor, Tensor] | None,
        *,
        dim: int = 64,
        num_heads: int = 2,
        num_layers: int = 1,
        num_fusion_layers: int = 1,
        prefix_guided: bool = True,
        correlation_fusion: bool = True,
        label_smoothing: float = 0.1,
        dropout: float = 0.1,
        relation_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.num_entities, self.num_relations = num_entities, num_relations
        self.prefix_guided, self.correlation_fusion, self.label_smoothing = (
            prefix_guided,
            correlation_fusion,
            label_smoothing,
        )
        self.relation_names = relation_names or [f"r{r}" for r in range(num_relations)]
        self.register_buffer("text_tokens", text_tokens[0], persistent=False)  # (E, Lt', dt)
        self.register_buffer("text_present", text_tokens[1], persistent=False)  # (E, Lt')
        self.entity = embedding_table(num_entities, dim)
        self.relation = embedding_table(2 * num_relations, dim)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.text_in = nn.Linear(text_tokens[0].shape[-1], dim)
        self.text_position = nn.Parameter(torch.zeros(3 + text_tokens[0].shape[1], dim))
        self.text_norm = nn.LayerNorm(dim)
        self.text_layers = nn.ModuleList(_Block(dim, num_heads, dropout) for _ in range(num_layers))
        self.visual = visual_tokens is not None
        if visual_tokens is not None:
            self.register_buffer("visual_tokens", visual_tokens[0], persistent=False)  # (E, Lv, dv)
            self.register_buffer("visual_present", visual_tokens[1], persistent=False)  # (E, Lv)
            self.visual_in = nn.Linear(visual_tokens[0].shape[-1], dim)
            self.visual_position = nn.Parameter(torch.zeros(visual_tokens[0].shape[1], dim))
            self.visual_norm = nn.LayerNorm(dim)
            self.visual_layers = nn.ModuleList(_Block(dim, num_heads, dropout) for _ in range(num_layers))
            self.fusion_layers = nn.ModuleList(_FusionLayer(dim, num_heads, dropout) for _ in range(num_fusion_layers))
        else:  # text only: the same depth of plain text layers
            self.fusion_layers = nn.ModuleList(_Block(dim, num_heads, dropout) for _ in range(num_fusion_layers))
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim))
        self.bias = nn.Parameter(torch.zeros(num_entities))
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.text_position, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)

    @classmethod
    def from_dataset(cls, config: MKGformerConfig, dataset: Any) -> MKGformer:
        text = dataset.modalities.get(config.text_modality)
        if text is None:
            raise DataError(
                f"mkgformer reads entity descriptions from the {config.text_modality!r} modality; {dataset.name} has "
                f"{', '.join(dataset.modalities) or 'none'} (set model.text_modality)"
            )
        visual = None
        if config.visual:
            found = dataset.modalities.get(config.visual_modality)
            if found is None:
                raise DataError(
                    f"mkgformer needs visual tokens (modality {config.visual_modality!r}); {dataset.name} has "
                    f"{', '.join(dataset.modalities) or 'none'}: set model.visual=false for the text-only variant"
                )
            visual = _tokens(found.values, found.mask)
        return cls(
            dataset.num_items,
            len(dataset.meta["relations"]),
            _tokens(text.values, text.mask),
            visual,
            dim=config.dim,
            num_heads=config.num_heads,
            num_layers=config.num_layers,
            num_fusion_layers=config.num_fusion_layers,
            prefix_guided=config.prefix_guided,
            correlation_fusion=config.correlation_fusion,
            label_smoothing=config.label_smoothing,
            dropout=config.dropout,
            relation_names=list(dataset.meta["relations"]),
        )

    def encode(self, entities: Tensor, relations: Tensor) -> tuple[Tensor, dict[str, list[Tensor]]]:
        """The ``[MASK]`` state (B, D) of each query and the fusion weights of each M-Encoder layer."""
        batch = len(entities)
        description = self.text_in(self.text_tokens[entities])  # (B, Lt', D)
        text = torch.cat(
            [
                self.mask_token.expand(batch, 1, -1),
                self.relation(relations)[:, None, :],
                self.entity(entities)[:, None, :],
                description,
            ],
            dim=1,
        )  # (B, Lt, D)
        text = self.dropout(self.text_norm(text + self.text_position))
        always = torch.ones(batch, 3, dtype=torch.bool, device=text.device)
        text_mask = torch.cat([always, self.text_present[entities]], dim=1)  # (B, Lt)
        for layer in self.text_layers:
            text = layer(text, text_mask)
        weights: dict[str, list[Tensor]] = {"correlation": [], "prefix": []}
        if not self.visual:
            for layer in self.fusion_layers:
                text = layer(text, text_mask)
            return self.head(text[:, 0]), weights
        vision_mask = self.visual_present[entities]  # (B, Lv)
        vision = self.dropout(self.visual_norm(self.visual_in(self.visual_tokens[entities]) + self.visual_position))
        for layer in self.visual_layers:
            vision = layer(vision, vision_mask) * vision_mask[..., None]
        prefix_mask = text_mask if self.prefix_guided else torch.zeros_like(text_mask)
        fusion_mask = vision_mask if self.correlation_fusion else torch.zeros_like(vision_mask)
        for layer in self.fusion_layers:
            text, vision, correlation, prefix = layer(text, text_mask, vision, vision_mask, prefix_mask, fusion_mask)
            weights["correlation"].append(correlation)
            weights["prefix"].append(prefix)
        return self.head(text[:, 0]), weights

    def score_queries(self, entities: Tensor, relations: Tensor) -> Tensor:
        state, _ = self.encode(entities, relations)
        return state @ self.entity.weight.T + self.bias  # (B, E)

    def loss(self, batch: KGBatch) -> LossOutput:
        logits = self.score_queries(batch.entities, batch.relations)  # (B, E)
        loss = F.cross_entropy(logits, batch.targets, label_smoothing=self.label_smoothing)
        return LossOutput(loss, {"ce": loss.detach()})

    @torch.no_grad()
    def query_attention(self, entity: int, relation: int) -> dict[str, Any]:
        """For one query: per M-Encoder layer, the text-to-visual correlation weights (Lt, Lv) and the
        visual tokens' prefix-guided attention over [text; visual] (Lv, Lt + Lv, mean over heads)."""
        was_training = self.training
        self.eval()
        _, weights = self.encode(torch.tensor([entity]), torch.tensor([relation]))
        self.train(was_training)
        name = self.relation_names[relation % self.num_relations] + ("^-1" if relation >= self.num_relations else "")
        num_description = self.text_tokens.shape[1]
        text_labels = ["[MASK]", name, "[head entity]", *(f"word {i + 1}" for i in range(num_description))]
        num_visual = self.visual_tokens.shape[1] if self.visual else 0
        grids: dict[str, np.ndarray] = {}
        for i, (correlation, prefix) in enumerate(zip(weights["correlation"], weights["prefix"])):
            grids[f"text-to-visual correlation, fusion layer {i + 1}"] = correlation[0].numpy()
            grids[f"prefix-guided attention of visual tokens, fusion layer {i + 1}"] = prefix[0].mean(0).numpy()
        return {
            "text_tokens": text_labels,
            "visual_tokens": [f"patch {j + 1}" for j in range(num_visual)],
            "grids": grids,
        }
