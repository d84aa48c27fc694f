"""BPR-MF: Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009.

    x̂_ui = <p_u, q_i> + b_i,    L = -Σ ln σ(x̂_ui - x̂_uj) + λ (‖p_u‖² + ‖q_i‖² + ‖q_j‖² + b_i² + b_j²) / 2

Note:
    The item bias ``b_i`` is optional (``item_bias``, on by default, as in Cornac's BPR); Rendle's
    paper has no bias. Trained with the optimiser of ``train`` (Adam by default) on mini-batches
    rather than the paper's stochastic gradient descent with bootstrap sampling.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.batches import PairBatch, UserBatch
from fusionrec.models.base import LossOutput, ModelConfig, Recommender, Scorer, embedding_scorer
from fusionrec.nn.losses import bpr_loss, l2_penalty
from fusionrec.registry import MODELS


class BPRConfig(ModelConfig):
    name: str = "bpr"
    embedding_dim: int = Field(64, gt=0)
    item_bias: bool = True
    reg_weight: float = Field(1e-4, ge=0)
    init_std: float = Field(0.1, gt=0, description="std of the normal initialisation of the embeddings")


@MODELS.register("bpr", config=BPRConfig, task="topk", paper="Rendle et al., UAI 2009", modalities="none")
class BPR(Recommender):
    """Matrix factorisation trained with the BPR pairwise loss.

    Shapes:
        loss: PairBatch users (B,), pos_items (B,), neg_items (B, N)
        score: UserBatch users (B,) -> (B, I) or (B, C)
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        embedding_dim: int = 64,
        item_bias: bool = True,
        reg_weight: float = 1e-4,
        init_std: float = 0.1,
    ) -> None:
        super().__init__()
        self.user_emb = nn.Embedding(num_users, embedding_dim)
        self.item_emb = nn.Embedding(num_items, embedding_dim)
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)
        self.item_bias = nn.Parameter(torch.zeros(num_items)) if item_bias else None
        self.reg_weight = reg_weight

    @classmethod
    def from_dataset(cls, config: BPRConfig, dataset) -> BPR:
        return cls(
            dataset.num_users,
            dataset.num_items,
            config.embedding_dim,
            config.item_bias,
            config.reg_weight,
            config.init_std,
        )

    def lookup_embeddings(self) -> tuple[nn.Embedding, ...]:
        return self.user_emb, self.item_emb

    def loss(self, batch: PairBatch) -> LossOutput:
        # each row is gathered once and reused by the scores and the penalty (a gather's backward is
        # most of a step's cost at this size)
        u = self.user_emb(batch.users)  # (B, D)
        q_pos, q_neg = self.item_emb(batch.pos_items), self.item_emb(batch.neg_items)  # (B, D), (B, N, D)
        pos = (u * q_pos).sum(-1)  # (B,)
        neg = (u.unsqueeze(1) * q_neg).sum(-1)  # (B, N)
        used = [u, q_pos, q_neg]
        if self.item_bias is not None:
            b_pos, b_neg = self.item_bias[batch.pos_items], self.item_bias[batch.neg_items]
            pos, neg = pos + b_pos, neg + b_neg
            used += [b_pos, b_neg]
        ranking = bpr_loss(pos, neg)
        reg = self.reg_weight * l2_penalty(*used, batch_size=len(batch))
        return LossOutput(ranking + reg, {"bpr": ranking.detach(), "reg": reg.detach()})

    def score(self, batch: UserBatch) -> Tensor:
        return self.scorer()(batch.users, batch.items)

    def scorer(self) -> Scorer:
        return embedding_scorer(self.user_emb.weight, self.item_emb.weight, self.item_bias)
