"""LightGCN: He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation", SIGIR 2020.

    E^(k+1) = D^-1/2 A D^-1/2 E^(k),    e = mean_{k=0..K} E^(k),    x̂_ui = <e_u, e_i>

BPR loss plus λ times the squared norm of the layer-0 embeddings of the batch.

Note:
    The final embedding is the plain mean over layers (α_k = 1/(K+1)), as in the paper's
    experiments. Propagation uses a torch sparse CSR matrix over the training graph only.
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.batches import PairBatch, UserBatch
from fusionrec.models.base import LossOutput, ModelConfig, Recommender, Scorer, embedding_scorer
from fusionrec.nn.graph import bipartite_adjacency, mean_propagate, sym_normalize, to_torch_sparse
from fusionrec.nn.losses import graph_bpr_terms
from fusionrec.registry import MODELS


class LightGCNConfig(ModelConfig):
    name: str = "lightgcn"
    embedding_dim: int = Field(64, gt=0)
    num_layers: int = Field(2, ge=0)
    reg_weight: float = Field(1e-4, ge=0)


@MODELS.register("lightgcn", config=LightGCNConfig, task="topk", paper="He et al., SIGIR 2020", modalities="none")
class LightGCN(Recommender):
    """Shapes:
    adjacency: sparse (U+I, U+I), symmetric-normalised training graph
    loss: PairBatch users (B,), pos_items (B,), neg_items (B, N)
    score: UserBatch users (B,) -> (B, I) or (B, C)
    """

    adjacency: Tensor  # buffer, sparse (U+I, U+I)

    def __init__(
        self,
        num_users: int,
        num_items: int,
        adjacency: Tensor,
        embedding_dim: int = 64,
        num_layers: int = 2,
        reg_weight: float = 1e-4,
    ) -> None:
        super().__init__()
        self.num_users = num_users
        self.embedding = nn.Embedding(num_users + num_items, embedding_dim)
        nn.init.xavier_uniform_(self.embedding.weight)
        self.register_buffer("adjacency", adjacency, persistent=False)
        self.num_layers = num_layers
        self.reg_weight = reg_weight

    @classmethod
    def from_dataset(cls, config: LightGCNConfig, dataset) -> LightGCN:
        adjacency = to_torch_sparse(sym_normalize(bipartite_adjacency(dataset.matrix("train"))))
        return cls(
            dataset.num_users, dataset.num_items, adjacency, config.embedding_dim, config.num_layers, config.reg_weight
        )

    def propagate(self) -> tuple[Tensor, Tensor]:
        final = mean_propagate(self.adjacency, self.embedding.weight, self.num_layers)  # (U+I, D)
        return final[: self.num_users], final[self.num_users :]

    def loss(self, batch: PairBatch) -> LossOutput:
        users, items = self.propagate()
        ranking, reg = graph_bpr_terms(
            users,
            items,
            self.embedding.weight,
            self.num_users,
            batch.users,
            batch.pos_items,
            batch.neg_items,
            self.reg_weight,
        )
        return LossOutput(ranking + reg, {"bpr": ranking.detach(), "reg": reg.detach()})

    def score(self, batch: UserBatch) -> Tensor:
        return self.scorer()(batch.users, batch.items)

    def scorer(self) -> Scorer:
        users, items = self.propagate()
        return embedding_scorer(users, items)
