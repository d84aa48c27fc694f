"""MARIO: Kim et al., "MARIO: Modality-Aware Attention and Modality-Preserving Decoders for
Multimedia Recommendation", CIKM 2022.

Matrix-factorisation based (not a GCN). A user has an embedding ``u_i``; an item has one
embedding per modality: ``v^m_j = E_m f^m_j`` for each content modality m (projected pre-trained
features) and the interaction modality ``v^IN_j`` (a free ID embedding). Modality-aware attention
weighs the modalities per interaction and builds a personalised item embedding:

    a^m_ij = softmax_m(hᵀ tanh(W (u_i ⊙ v^m_j) + b)),   v_ij = Σ_m a^m_ij v^m_j,   r̂_ij = <u_i, v_ij>

Modality-preserving decoders ``D_m`` map ``v_ij`` back to each content modality's pre-trained
features, so that the fused embedding keeps what is specific to each modality:

    L = L_BPR + λ_MP · mean_m ‖D_m(v_ij) - f̃^m_j‖² / F_m   (over the positive pairs that have m)
        + λ (‖u_i‖² + ‖v^IN_j‖² + ‖v^IN_k‖²) / 2

Defaults were chosen on validation NDCG@20 of the ml-100k peer split: run with ``train.lr=5e-3``
(valid 0.219, peak at epoch 8; lr 1e-3: 0.213). On ml-100k's content (title LSA, genres) it stays
below BPR-MF (valid 0.256). Ablations after 30 epochs at lr 1e-3 (content embeddings also under
L2): attention 0.190, ``model.fusion=mean`` 0.211, ``model.preservation_weight=0`` 0.184.

Note:
    No code is public and the paper body was not read offline, so the attention and decoder
    equations above follow the dossier's suggested form (MODELS.md §13, [U]): the attention is
    the ``modality_attention`` block with ``interaction="product"`` (MARIO's ``u ⊙ v^m``), and it
    pools the modality embeddings ``v^m_j`` themselves. The decoders are two-layer MLPs that
    reconstruct the standardised pre-trained features ``f̃^m`` (mean squared error per feature)
    from ``v_ij`` of positive pairs; the interaction modality has no pre-trained target and no
    decoder. ``fusion`` swaps the attention for any modality fusor (``model.fusion=gated``;
    fusors without weights make ``explain`` return None). Items missing a content modality get
    zero weight on it (and no preservation term); the interaction modality is always present.
    Any number of content modalities is taken from the data set (the paper: visual and text).
    The L2 term covers the user and ID embeddings, as in BPR. The content projections then grow
    large (on ml-100k text embeddings end at ~6x the norm of ID ones); putting every modality
    embedding of the batch's items under the L2 term was tried and lowered validation NDCG@20
    (0.215 vs 0.219 at lr 5e-3, 0.204 vs 0.213 at lr 1e-3), so it is not done.
"""

from __future__ import annotations

from typing import cast

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.batches import PairBatch, UserBatch
from fusionrec.errors import DataError
from fusionrec.models.base import LossOutput, ModelConfig, Recommender, Scorer
from fusionrec.models.topk.features import modality_tensors, standardize, training_items
from fusionrec.nn.fusion import ModalityAttention, build_modality_fusion
from fusionrec.nn.losses import bpr_loss, l2_penalty
from fusionrec.registry import MODELS

INTERACTION = "interaction"
PAIR_BUDGET = 1 << 22
"""Pairs x modalities x hidden units per block when scoring all items (4 M floats, 16 MiB)."""


class MARIOConfig(ModelConfig):
    name: str = "mario"
    embedding_dim: int = Field(64, gt=0)
    modalities: list[str] = ["all"]
    fusion: str = "modality_attention"
    fusion_options: dict = Field(
        default_factory=dict,
        description="keyword options of the fusion block "
        "(modality_attention defaults: interaction=product, hidden_dim=16)",
    )
    preservation_weight: float = Field(0.1, ge=0, description="λ_MP, weight of the modality-preserving loss")
    reg_weight: float = Field(1e-4, ge=0)


@MODELS.register(
    "mario", config=MARIOConfig, task="topk", paper="Kim et al., CIKM 2022", modalities="any (default all)"
)
class MARIO(Recommender):
    """Shapes:
    features: {m: (I, F_m)} standardised; masks: {m: (I,)}
    loss: PairBatch users (B,), pos_items (B,), neg_items (B, N)
    score: UserBatch users (B,) -> (B, I) or (B, C)
    explain: (B,), (B,) -> {"modality_weights": (B, M)}, M = content modalities + interaction
    """

    present: Tensor  # buffer (I, M)

    def __init__(
        self,
        num_users: int,
        num_items: int,
        features: dict[str, Tensor],
        masks: dict[str, Tensor],
        embedding_dim: int = 64,
        fusion: str = "modality_attention",
        fusion_options: dict | None = None,
        preservation_weight: float = 0.1,
        reg_weight: float = 1e-4,
    ) -> None:
        super().__init__()
        if INTERACTION in features:
            raise DataError(f"MARIO names its ID modality {INTERACTION!r}; rename the data set's modality of that name")
        self.modality_names = [*features, INTERACTION]
        self.user_emb = nn.Embedding(num_users, embedding_dim)
        self.item_emb = nn.Embedding(num_items, embedding_dim)  # v^IN, the interaction modality
        nn.init.xavier_normal_(self.user_emb.weight)
        nn.init.xavier_normal_(self.item_emb.weight)
        self.encoders = nn.ModuleDict({m: nn.Linear(f.shape[1], embedding_dim) for m, f in features.items()})
        self.decoders = nn.ModuleDict(
            {
                m: nn.Sequential(
                    nn.Linear(embedding_dim, embedding_dim), nn.Tanh(), nn.Linear(embedding_dim, f.shape[1])
                )
                for m, f in features.items()
            }
        )
        for m, f in features.items():
            self.register_buffer(f"features_{m}", f, persistent=False)
        present = torch.stack([masks[m] for m in features] + [torch.ones(num_items, dtype=torch.bool)], dim=1)
        self.register_buffer("present", present, persistent=False)  # (I, M)
        opts = dict(fusion_options or {})
        if fusion == "modality_attention":
            opts = {"interaction": "product", "hidden_dim": 16, **opts}
        self.fusion = build_modality_fusion(fusion, embedding_dim, len(self.modality_names), **opts)
        self.preservation_weight = preservation_weight
        self.reg_weight = reg_weight

    @classmethod
    def from_dataset(cls, config: MARIOConfig, dataset) -> MARIO:
        features, masks = modality_tensors(dataset, config.modalities, "MARIO")
        fit = training_items(dataset)  # content statistics from the training items only
        features = {m: standardize(f, masks[m], fit) for m, f in features.items()}
        return cls(
            dataset.num_users,
            dataset.num_items,
            features,
            masks,
            config.embedding_dim,
            config.fusion,
            config.fusion_options,
            config.preservation_weight,
            config.reg_weight,
        )

    def modality_embeddings(self, items: Tensor | None = None) -> Tensor:
        """``[v^1_j, ..., v^IN_j]`` of ``items`` (all when None). Shapes: (C,) -> (C, M, D)."""

        def rows(name: str) -> Tensor:
            f = getattr(self, f"features_{name}")
            return f if items is None else f[items]

        content = [encoder(rows(m)) for m, encoder in self.encoders.items()]  # M-1 x (C, D)
        ids = self.item_emb.weight if items is None else self.item_emb(items)
        return torch.stack([*content, ids], dim=1)  # (C, M, D)

    def personalise(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor | None]:
        """``v_ij`` and the modality weights ``a_ij`` of the pairs ``(users[p], items[p])``.

        Shapes: users, items (P,) -> (P, D), (P, M) or None.
        """
        fused = self.fusion(self.modality_embeddings(items), self.present[items], query=self.user_emb(users))
        weights = fused.weights["pool"] if isinstance(fused.weights, dict) else fused.weights
        return fused.out, weights

    def preservation_loss(self, fused: Tensor, items: Tensor) -> Tensor:
        """Mean squared error of each content modality's decoder on the pairs whose item has it."""
        losses = []
        for col, (m, decoder) in enumerate(self.decoders.items()):
            has = self.present[items, col].to(fused.dtype)  # (P,)
            error = (decoder(fused) - getattr(self, f"features_{m}")[items]).pow(2).mean(-1)  # (P,)
            losses.append((error * has).sum() / has.sum().clamp_min(1.0))
        return torch.stack(losses).mean() if losses else fused.new_zeros(())

    def loss(self, batch: PairBatch) -> LossOutput:
        num_neg = batch.neg_items.shape[1]
        users = torch.cat([batch.users, batch.users.repeat_interleave(num_neg)])  # (B + B·N,)
        items = torch.cat([batch.pos_items, batch.neg_items.reshape(-1)])  # (B + B·N,)
        modal = self.modality_embeddings(items)  # (B + B·N, M, D)
        query = self.user_emb(users)  # (B + B·N, D)
        fused = self.fusion(modal, self.present[items], query=query).out  # (B + B·N, D)
        scores = (query * fused).sum(-1)  # (B + B·N,)
        pos, neg = scores[: len(batch)], scores[len(batch) :].view(len(batch), num_neg)
        ranking = bpr_loss(pos, neg)
        preservation = self.preservation_loss(fused[: len(batch)], batch.pos_items)
        reg = self.reg_weight * l2_penalty(
            self.user_emb(batch.users),
            self.item_emb(batch.pos_items),
            self.item_emb(batch.neg_items),
            batch_size=len(batch),
        )
        total = ranking + self.preservation_weight * preservation + reg
        return LossOutput(total, {"bpr": ranking.detach(), "mp": preservation.detach(), "reg": reg.detach()})

    def score(self, batch: UserBatch) -> Tensor:
        return self.scorer()(batch.users, batch.items)

    def scorer(self) -> Scorer:
        """Scores every (user, item) pair with its own modality weights, in blocks of bounded memory."""
        item_modalities = self.modality_embeddings()  # (I, M, D)
        pairwise = isinstance(self.fusion, ModalityAttention)

        def score(users: Tensor, items: Tensor | None) -> Tensor:
            candidates = torch.arange(len(item_modalities), device=users.device) if items is None else items
            x, mask = item_modalities[candidates], self.present[candidates]  # (C, M, D), (C, M)
            u = self.user_emb(users)  # (B, D)
            step = max(1, PAIR_BUDGET // max(1, len(candidates) * x.shape[1] * x.shape[2]))
            blocks = []
            for start in range(0, len(users), step):
                ub = u[start : start + step]  # (b, D)
                if pairwise:
                    fused = cast(ModalityAttention, self.fusion).pairwise(x, mask, ub).out  # (b, C, D)
                else:
                    b, c = len(ub), len(candidates)
                    query = ub.repeat_interleave(c, dim=0)  # (b·C, D)
                    flat = self.fusion(x.repeat(b, 1, 1), mask.repeat(b, 1), query=query).out  # (b·C, D)
                    fused = flat.view(b, c, -1)  # (b, C, D)
                blocks.append((fused * ub[:, None, :]).sum(-1))  # (b, C)
            return torch.cat(blocks)  # (B, C)

        return score

    def explain(self, users: Tensor, items: Tensor) -> dict[str, Tensor] | None:
        """The modality weights ``a_ij`` of each (user, item) pair, ``(B, M)`` over ``modality_names``."""
        _, weights = self.personalise(users, items)
        return None if weights is None else {"modality_weights": weights}
