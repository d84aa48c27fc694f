"""VBPR: He & McAuley, "VBPR: Visual Bayesian Personalized Ranking from Implicit Feedback", AAAI 2016.

    x̂_ui = β_i + <γ_u, γ_i> + <θ_u, E f_i> + <β', f_i>

``f_i`` is the item's content vector: the selected modalities (``modalities``, default text),
each standardised with the means and deviations of the training items that have it (docs/models.md,
"What content statistics see"), concatenated. BPR loss with L2 on the latent
factors (``reg_weight``) and on ``E`` and ``β'`` (``feature_reg_weight``).

Note:
    The paper uses CNN image features only; any modality (text, genres, images) may stand in for
    ``f_i``. Items missing a modality get zeros for it, so their content term falls back to the
    other modalities (or to zero). Cornac's VBPR broadcasts one loss term into a batch x batch
    matrix; here every term is per pair.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.batches import PairBatch, UserBatch
from fusionrec.models.base import LossOutput, ModelConfig, Recommender, Scorer
from fusionrec.models.topk.features import modality_tensors, standardize, training_items
from fusionrec.nn.losses import bpr_loss, l2_penalty
from fusionrec.registry import MODELS


class VBPRConfig(ModelConfig):
    name: str = "vbpr"
    embedding_dim: int = Field(32, gt=0, description="size of γ (the content part θ has content_dim)")
    content_dim: int = Field(32, gt=0)
    modalities: list[str] = ["text"]
    reg_weight: float = Field(1e-4, ge=0)
    feature_reg_weight: float = Field(1e-4, ge=0)


@MODELS.register(
    "vbpr", config=VBPRConfig, task="topk", paper="He & McAuley, AAAI 2016", modalities="any (default text)"
)
class VBPR(Recommender):
    """Shapes:
    features: (I, F) concatenated item content
    loss: PairBatch users (B,), pos_items (B,), neg_items (B, N)
    score: UserBatch users (B,) -> (B, I) or (B, C)
    """

    features: Tensor  # buffer (I, F)

    def __init__(
        self,
        num_users: int,
        features: Tensor,
        embedding_dim: int = 32,
        content_dim: int = 32,
        reg_weight: float = 1e-4,
        feature_reg_weight: float = 1e-4,
    ) -> None:
        super().__init__()
        num_items, feature_dim = features.shape
        self.register_buffer("features", features, persistent=False)
        self.gamma_user = nn.Embedding(num_users, embedding_dim)
        self.gamma_item = nn.Embedding(num_items, embedding_dim)
        self.theta_user = nn.Embedding(num_users, content_dim)
        self.item_bias = nn.Parameter(torch.zeros(num_items))
        self.projection = nn.Linear(feature_dim, content_dim, bias=False)  # E
        self.content_bias = nn.Linear(feature_dim, 1, bias=False)  # β'
        for emb in (self.gamma_user, self.gamma_item, self.theta_user):
            nn.init.normal_(emb.weight, std=0.1)
        nn.init.zeros_(self.content_bias.weight)
        self.reg_weight = reg_weight
        self.feature_reg_weight = feature_reg_weight

    @classmethod
    def from_dataset(cls, config: VBPRConfig, dataset) -> VBPR:
        features, masks = modality_tensors(dataset, config.modalities, "VBPR")
        fit = training_items(dataset)  # content statistics from the training items only
        content = torch.cat([standardize(features[n], masks[n], fit) for n in features], dim=-1)  # (I, F)
        return cls(
            dataset.num_users,
            content,
            config.embedding_dim,
            config.content_dim,
            config.reg_weight,
            config.feature_reg_weight,
        )

    def item_representations(self, items: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """γ_i, E f_i and β_i + <β', f_i> of ``items`` (all when None)."""
        f = self.features if items is None else self.features[items]  # (..., F)
        gamma = self.gamma_item.weight if items is None else self.gamma_item(items)
        bias = (self.item_bias if items is None else self.item_bias[items]) + self.content_bias(f).squeeze(-1)
        return gamma, self.projection(f), bias

    def lookup_embeddings(self) -> tuple[nn.Embedding, ...]:
        return self.gamma_user, self.gamma_item, self.theta_user

    def loss(self, batch: PairBatch) -> LossOutput:
        gu, tu = self.gamma_user(batch.users), self.theta_user(batch.users)  # (B, D)

        def pair_score(items: Tensor) -> Tensor:
            gamma, content, bias = self.item_representations(items)
            if items.dim() == 2:
                return (gu.unsqueeze(1) * gamma).sum(-1) + (tu.unsqueeze(1) * content).sum(-1) + bias
            return (gu * gamma).sum(-1) + (tu * content).sum(-1) + bias

        pos, neg = pair_score(batch.pos_items), pair_score(batch.neg_items)
        ranking = bpr_loss(pos, neg)
        reg = self.reg_weight * l2_penalty(
            gu,
            tu,
            self.gamma_item(batch.pos_items),
            self.gamma_item(batch.neg_items),
            self.item_bias[batch.pos_items],
            self.item_bias[batch.neg_items],
            batch_size=len(batch),
        )
        feature_reg = (
            self.feature_reg_weight * (self.projection.weight.pow(2).sum() + self.content_bias.weight.pow(2).sum()) / 2
        )
        return LossOutput(ranking + reg + feature_reg, {"bpr": ranking.detach(), "reg": (reg + feature_reg).detach()})

    def score(self, batch: UserBatch) -> Tensor:
        return self.scorer()(batch.users, batch.items)

    def scorer(self) -> Scorer:
        gamma, content, bias = self.item_representations()
        item_side = torch.cat([gamma, content], dim=-1)  # (I, D + C)
        user_side = torch.cat([self.gamma_user.weight, self.theta_user.weight], dim=-1)  # (U, D + C)

        def score(users: Tensor, items: Tensor | None) -> Tensor:
            it = item_side if items is None else item_side[items]
            b = bias if items is None else bias[items]
            return user_side[users] @ it.T + b  # (B, C)

        return score
