"""UVCAN: Liu, Chen, Liu & Hu, "User-Video Co-Attention Network for Personalized Micro-video
Recommendation", WWW 2019.

A user side (user ID + the multimodal features of the user's history) and an item side (item ID +
image regions + text) attend to each other for S reasoning steps, stacked-attention style, so that
the user side produces the fusion weights of the item side and vice versa:

    u^1 = e_u + Fuse({h_u^m}_m; query e_u)                          (user-ID-guided modality fusion)
    v^0 = e_i;   for s = 1..S:   v^s = v^{s-1} + Σ_l α^s_l(u^{s-1}) x_il        (item regions/text)
                                 u^s = u^{s-1} + Σ_m β^s_m(v^s) h_u^m              (user history)
    x̂_ui = <u^S, v^S>   (or MLP([u^S; v^S; u^S ⊙ v^S]))

with ``α^s = softmax_l(wᵀ tanh(W x_il + U u^{s-1}))`` over the item's valid regions and ``h_u^m`` the
mean of modality ``m`` over the user's training items. The default ``S = 1`` reasons in three hops
(u^1, v^1, u^2: the survey's "three-step reasoning"). Each modality contributes its regions: a
``regions`` modality ``(I, R, D_m)`` gives R regions, any other modality one region. Trained with
BPR (default) or pointwise log-loss on the task's sampled negatives, plus L2 on the ID embeddings.

Note:
    No code is public and the paper body was not read (MODELS.md marks the equations [U]): the
    step equations follow the survey's description ("user-side multimodal data produce the fusion
    weights for the item side", "three-step reasoning"), with additive attention and residual
    (stacked) updates from :class:`~fusionrec.nn.fusion.StackedCoAttention`. The first hop, the
    user ID attending over the user's multimodal interests, is a modality fusor (``fusion``); the
    paper's user-side inputs (e.g. the user's own uploaded content) are replaced by the mean
    features of the items in the user's training history. Micro-video frames are replaced by any
    region grid (poster regions); a dot product replaces the paper's click-probability MLP by
    default (``predictor="mlp"`` restores an MLP) and the top-K task's negatives replace its
    click logs. Items missing a modality have its regions masked; users with no history for a
    modality have that entry masked. A training pair's own item is left out of the user's
    history means: otherwise the model learns to match an item against a history that contains
    it, which no test pair does (on ml-100k this overfitting capped valid NDCG@20 near 0.21).
"""

from __future__ import annotations

from typing import Literal, cast

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.batches import PairBatch, UserBatch
from fusionrec.models.base import LossOutput, ModelConfig, Recommender, Scorer
from fusionrec.models.topk.features import modality_tensors, standardize, training_items
from fusionrec.nn.fusion import StackedCoAttention, build_modality_fusion
from fusionrec.nn.fusion.base import PairFusionOutput
from fusionrec.nn.losses import bpr_loss, l2_penalty
from fusionrec.registry import MODELS


class UVCANConfig(ModelConfig):
    name: str = "uvcan"
    embedding_dim: int = Field(64, gt=0)
    modalities: list[str] = ["all"]
    num_steps: int = Field(
        1,
        ge=1,
        description="co-attention steps S after the first hop (S=1: u^1, v^1, u^2, the survey's three-step reasoning)",
    )
    attention_dim: int | None = Field(
        32, gt=0, description="width of the co-attention scores (full-ranking cost grows with it); None: embedding_dim"
    )
    fusion: str = Field("modality_attention", description="modality fusor of the user-ID-guided first hop")
    predictor: Literal["dot", "mlp"] = "dot"
    objective: Literal["bpr", "bce"] = "bpr"
    reg_weight: float = Field(1e-4, ge=0)
    score_budget: int = Field(
        1 << 22, gt=0, description="floats per (users x items x regions x dim) block when ranking all items"
    )


def history_means(history: sp.spmatrix, features: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of ``features`` over each user's training items that have them, and how many there are.

    Shapes: history (U, I) binary scipy matrix; features (I, D); present (I,) bool
    -> means (U, D) (zero for users with no such item), counts (U,) float.
    """
    history = sp.csr_matrix(history, dtype=np.float32)
    weight = present.numpy().astype(np.float32)[:, None]  # (I, 1)
    total = history @ (features.numpy() * weight)  # (U, D)
    count = history @ weight  # (U, 1)
    means = torch.from_numpy(np.asarray(total / np.maximum(count, 1.0), dtype=np.float32))
    return means, torch.from_numpy(np.asarray(count, dtype=np.float32).ravel())


@MODELS.register(
    "uvcan",
    config=UVCANConfig,
    task="topk",
    paper="Liu et al., WWW 2019",
    modalities="any (regions modalities give image regions)",
)
class UVCAN(Recommender):
    """Shapes:
    features[m]: (I, R_m, D_m) (R_m = 1 for vector modalities); masks[m]: (I,)
    user_features[m]: (U, D_m) mean of features[m] (regions averaged) over the user's training items
    item regions: (I, L, D) with L = Σ_m R_m; user modality entries: (U, M, D)
    loss: PairBatch users (B,), pos_items (B,), neg_items (B, N)
    score: UserBatch users (B,) -> (B, I) or (B, C)
    explain: users (B,), items (B,) -> regions (B, L), modalities (B, M), ... (see ``explain``)
    """

    region_mask: Tensor  # buffer (I, L)
    region_modality: Tensor  # buffer (L,)
    user_counts: Tensor  # buffer (U, M)
    item_mask: Tensor  # buffer (I, M)

    def __init__(
        self,
        features: dict[str, Tensor],
        masks: dict[str, Tensor],
        user_features: dict[str, Tensor],
        user_counts: dict[str, Tensor],
        embedding_dim: int = 64,
        num_steps: int = 1,
        attention_dim: int | None = 32,
        fusion: str = "modality_attention",
        predictor: Literal["dot", "mlp"] = "dot",
        objective: Literal["bpr", "bce"] = "bpr",
        reg_weight: float = 1e-4,
        score_budget: int = 1 << 22,
    ) -> None:
        super().__init__()
        self.modality_names = list(features)
        num_items = next(iter(features.values())).shape[0]
        num_users = next(iter(user_features.values())).shape[0]
        dim = embedding_dim
        self.user_emb = nn.Embedding(num_users, dim)
        self.item_emb = nn.Embedding(num_items, dim)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        self.encoders = nn.ModuleList(nn.Linear(f.shape[-1], dim) for f in features.values())
        for k, name in enumerate(features):
            self.register_buffer(f"features_{k}", features[name], persistent=False)  # (I, R_m, D_m)
            self.register_buffer(f"user_features_{k}", user_features[name], persistent=False)  # (U, D_m)
        regions = [f.shape[1] for f in features.values()]
        region_mask = torch.cat([masks[n][:, None].expand(-1, r) for n, r in zip(features, regions)], 1)  # (I, L)
        self.register_buffer("region_mask", region_mask, persistent=False)
        self.register_buffer(
            "region_modality",
            torch.repeat_interleave(torch.arange(len(regions)), torch.tensor(regions)),
            persistent=False,
        )
        self.register_buffer("user_counts", torch.stack([user_counts[n] for n in features], 1), persistent=False)
        self.register_buffer("item_mask", torch.stack([masks[n] for n in features], 1), persistent=False)  # (I, M)
        self.region_modality_names = [self.modality_names[m] for m in self.region_modality.tolist()]
        self.fusion = build_modality_fusion(fusion, dim, len(features))
        self.co_attention = StackedCoAttention(dim, num_steps=num_steps, hidden_dim=attention_dim)
        self.mlp = nn.Sequential(nn.Linear(3 * dim, dim), nn.ReLU(), nn.Linear(dim, 1)) if predictor == "mlp" else None
        self.objective = objective
        self.reg_weight = reg_weight
        self.score_budget = score_budget

    @classmethod
    def from_dataset(cls, config: UVCANConfig, dataset) -> UVCAN:
        features, masks = modality_tensors(dataset, config.modalities, "UVCAN", keep_regions=True)
        fit = training_items(dataset)  # content statistics from the training items only
        features = {n: standardize(f if f.dim() == 3 else f[:, None], masks[n], fit) for n, f in features.items()}
        history = dataset.matrix("train")
        means = {n: history_means(history, f.mean(1), masks[n]) for n, f in features.items()}  # (U, D_m), (U,)
        return cls(
            features,
            masks,
            {n: m[0] for n, m in means.items()},
            {n: m[1] for n, m in means.items()},
            config.embedding_dim,
            config.num_steps,
            config.attention_dim,
            config.fusion,
            config.predictor,
            config.objective,
            config.reg_weight,
            config.score_budget,
        )

    # ------------------------------------------------------------------------------ representations

    def item_regions(self, items: Tensor | None = None) -> Tensor:
        """Projected regions of ``items`` (all when None), modality by modality. Shapes: -> (C, L, D)."""
        parts = []
        for k, encoder in enumerate(self.encoders):
            f = getattr(self, f"features_{k}")  # (I, R_m, D_m)
            parts.append(encoder(f if items is None else f[items]))  # (C, R_m, D)
        return torch.cat(parts, dim=1)  # (C, L, D)

    def user_entries(self, users: Tensor | None = None, leave_out: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``h_u^m``: the projected history mean of each modality (its regions averaged) of ``users``.

        The projection is affine, so the mean of projections is the projection of the raw history
        mean, computed once in ``from_dataset``. ``leave_out`` (B,) names, per row, a training item
        of that user to drop from the means (-1: none): a training pair must not see its own item
        in the history, as no test pair does.

        Shapes: users (B,) or None (all) -> entries (B, M, D), valid (B, M).
        """
        counts = self.user_counts if users is None else self.user_counts[users]  # (B, M)
        if leave_out is not None:
            drop = (leave_out >= 0)[:, None] & self.item_mask[leave_out.clamp_min(0)] & (counts > 0)  # (B, M)
            left = counts - drop.to(counts.dtype)  # (B, M)
        entries = []
        for k, encoder in enumerate(self.encoders):
            raw = getattr(self, f"user_features_{k}")  # (U, D_m)
            raw = raw if users is None else raw[users]  # (B, D_m)
            if leave_out is not None:
                own = getattr(self, f"features_{k}")[leave_out.clamp_min(0)].mean(1)  # (B, D_m)
                without = (raw * counts[:, k, None] - own) / left[:, k, None].clamp_min(1.0)  # (B, D_m)
                raw = torch.where(drop[:, k, None], without, raw)
            entries.append(encoder(raw))  # (B, D)
        valid = (counts if leave_out is None else left) > 0  # (B, M)
        return torch.stack(entries, 1) * valid[..., None].to(entries[0].dtype), valid  # (B, M, D), (B, M)

    def first_hop(self, users: Tensor, entries: Tensor, valid: Tensor) -> tuple[Tensor, Tensor | None]:
        """u^1 = e_u + Fuse(h_u; query e_u). Shapes: users (B,), entries (B, M, D) -> (B, D), weights (B, M)."""
        e = self.user_emb(users)  # (B, D)
        fused = self.fusion(entries, valid, query=e)
        weights = fused.weights["pool"] if isinstance(fused.weights, dict) else fused.weights
        return e + fused.out, weights

    def predict(self, u: Tensor, v: Tensor) -> Tensor:
        """Scores of final user/item states. Shapes: (..., D), (..., D) -> (...)."""
        if self.mlp is None:
            return (u * v).sum(-1)
        return self.mlp(torch.cat([u, v, u * v], dim=-1)).squeeze(-1)

    def _pairs(
        self, users: Tensor, items: Tensor, in_history: Tensor | None = None
    ) -> tuple[PairFusionOutput, Tensor | None]:
        """Co-attention of aligned (user, item) pairs, each distinct item (and user) encoded once.

        ``in_history`` (P,) marks the pairs whose item is in the user's training history: their
        user side is built without that item (so per pair, not per user).

        Shapes: users (P,), items (P,) -> out (P, D), out_b (P, D), weights; first-hop weights (P, M).
        """
        if in_history is None:
            users_once, user_index = torch.unique(users, return_inverse=True)  # (Bu,), (P,)
            entries, valid = self.user_entries(users_once)  # (Bu, M, D), (Bu, M)
        else:
            users_once, user_index = users, torch.arange(len(users), device=users.device)
            entries, valid = self.user_entries(users, torch.where(in_history, items, -1))  # (P, M, D), (P, M)
        items_once, item_index = torch.unique(items, return_inverse=True)  # (Bi,), (P,)
        u1, user_weights = self.first_hop(users_once, entries, valid)  # (Bu, D), (Bu, M)
        out = self.co_attention.indexed(
            entries,
            self.item_regions(items_once),
            user_index,
            item_index,
            valid,
            self.region_mask[items_once],
            query_a=u1,
            query_b=self.item_emb(items_once),
        )
        return out, None if user_weights is None else user_weights[user_index]

    # ------------------------------------------------------------------------------------ training

    def loss(self, batch: PairBatch) -> LossOutput:
        items = torch.cat([batch.pos_items[:, None], batch.neg_items], dim=1)  # (B, 1+N)
        users = batch.users[:, None].expand_as(items)  # (B, 1+N)
        positive = torch.zeros(items.shape, dtype=torch.bool, device=items.device)  # (B, 1+N)
        positive[:, 0] = True  # training positives are in the user's history, sampled negatives are not
        out, _ = self._pairs(users.reshape(-1), items.reshape(-1), positive.reshape(-1))
        scores = self.predict(out.out, cast(Tensor, out.out_b)).view(items.shape)  # (B, 1+N); co-attention sets out_b
        if self.objective == "bpr":
            ranking = bpr_loss(scores[:, 0], scores[:, 1:])
        else:
            labels = torch.zeros_like(scores)
            labels[:, 0] = 1.0
            ranking = nn.functional.binary_cross_entropy_with_logits(scores, labels)
        reg = self.reg_weight * l2_penalty(self.user_emb(batch.users), self.item_emb(items), batch_size=len(batch))
        return LossOutput(ranking + reg, {self.objective: ranking.detach(), "reg": reg.detach()})

    # ------------------------------------------------------------------------------------- ranking

    def score(self, batch: UserBatch) -> Tensor:
        return self.scorer()(batch.users, batch.items)

    def scorer(self) -> Scorer:
        """All-pairs co-attention, chunked over items so each block holds ``score_budget`` floats.

        Everything that depends on one side only (item regions, user entries, u^1, key projections)
        is computed once; only the S attention steps run per (user, item) pair.
        """
        regions = self.item_regions()  # (I, L, D)
        entries, valid = self.user_entries()  # (U, M, D), (U, M)
        width = max(regions.shape[1], entries.shape[1]) * regions.shape[-1]

        def score(users: Tensor, items: Tensor | None) -> Tensor:
            a, mask_a = entries[users], valid[users]  # (B, M, D), (B, M)
            u1, _ = self.first_hop(users, a, mask_a)  # (B, D)
            candidates = torch.arange(regions.shape[0], device=regions.device) if items is None else items
            chunk = max(1, self.score_budget // (len(users) * width))
            blocks = []
            for part in candidates.split(chunk):  # item chunks, not items
                out = self.co_attention.pairwise(
                    a, regions[part], mask_a, self.region_mask[part], query_a=u1, query_b=self.item_emb(part)
                )
                blocks.append(self.predict(out.out, cast(Tensor, out.out_b)))  # (B, c); co-attention sets out_b
            return torch.cat(blocks, dim=1)  # (B, C)

        return score

    def explain(self, users: Tensor, items: Tensor) -> dict[str, Tensor]:
        """Attention behind the scores of aligned (user, item) pairs.

        Returns:
            regions: (B, L) the item-side attention of the last step over the item's regions
                (``region_modality_names`` names each region's modality); sums to 1 over valid regions.
            region_steps: (B, S, L) the item-side attention of every step.
            modalities: (B, M) the last step's region attention summed per modality
                (``modality_names`` order).
            user_modalities: (B, M) the first hop's modality weights, when the fusor has weights.
            user_steps: (B, S, M) the user-side attention of every step.
        """
        out, user_weights = self._pairs(users, items)
        weights = cast("dict[str, Tensor]", out.weights)  # co-attention's maps: {"a": ..., "b": ...}
        region_steps = weights["b"]  # (B, S, L)
        last = region_steps[:, -1]  # (B, L)
        modalities = last.new_zeros(len(users), len(self.modality_names)).index_add_(1, self.region_modality, last)
        explanation = {
            "regions": last,
            "region_steps": region_steps,
            "modalities": modalities,
            "user_steps": weights["a"],
        }
        if user_weights is not None:
            explanation["user_modalities"] = user_weights
        return explanation
