"""HCGCN: Mu et al., "Learning Hybrid Behavior Patterns for Multimedia Recommendation", ACM MM 2022.

Items' modality features are encoded into one space (``e^m_i = W_m f^m_i``) and fused
(``c_i = Fuse_m(e^m_i)``, queried by the item's ID embedding); an item GCN on a sparse kNN
item-item graph built from modality similarity smooths them (``c̄ = mean(c, S c, ..., S^J c)``).
Users start from ID embeddings, items from ID + content: ``x_u = e_u``, ``x_i = e_i + c̄_i``.
Users and items are co-clustered into K clusters with shared centroids μ
(``π_nk = softmax_k(cos(z_n, μ_k) / τ_c)``), and propagation is hierarchical:

    z = mean_{l=0..L} Â^l x   (global: the whole user-item graph)
      + mean_{l=0..L} Â_c^l x (local: only edges inside a co-cluster, ``argmax π_u = argmax π_i``)

``ŷ_ui = <z_u, z_i>``. The clusters are dynamic: every ``recluster_every`` epochs each node is
reassigned to its nearest centroid and the local graph rebuilt. Losses, each weighted from config:

    L = BPR(ŷ) + λ_cc BPR(log <π_u, π_i>)                          (co-clustering ranking, user-item)
        + λ_ic KL(P ‖ Q) over the batch's items                  (item clustering, DEC-style target P)
        + λ_cl mean_{m<m'} InfoNCE(e^m_i, e^m'_i)                (CLIP-style, symmetric, in-batch)
        + λ (‖e_u‖² + ‖e_i‖² + ‖e_j‖²) / 2

Defaults were chosen on validation NDCG@20 of the ml-100k peer split (lr 1e-3 / 5e-3, reg 1e-4 /
1e-3): the default ``train.lr=1e-3`` with reg 1e-4 (valid 0.276, best epoch ~90; lr 5e-3 peaks at
0.271 after ~20 epochs). The cluster count, k and the loss weights were not searched.

Note:
    No code is public and the paper body was not read offline (MODELS.md §5: only the components
    and the three losses are known), so every equation above is this library's reading of them:
    the kNN graph is LATTICE-style (per modality, cosine top-k over the pre-trained features,
    symmetrised, D^-1/2 S D^-1/2, averaged over modalities; fixed, built in chunks); "local
    co-clustered subgraphs + global message passing" is LightGCN on the co-cluster subgraph plus
    LightGCN on the whole graph; the co-clustering ranking loss is a BPR loss on soft co-cluster
    affinities; the item-clustering loss is DEC's self-training KL (Xie et al., ICML 2016) with
    cosine soft assignments; the contrastive loss runs over every pair of modalities (image-text
    when those are the two), on items that have both. The first clusters are k-means clusters of
    the items' pre-trained features, centroids fitted on the training items and every item assigned
    to its nearest (users take their items' majority cluster); feature standardisation also uses the
    training items' statistics, while the kNN graph links every item, held-out ones included, by
    its own content (docs/models.md, "What content statistics see"); centroids start at
    those clusters' mean initial representation. Items missing a modality are masked in the fusion,
    the kNN graph and the contrastive loss. ``fusion`` (default ``modality_self_attention``) swaps
    the modality fusor (``model.fusion=mean``). The in-batch InfoNCE sees at most ``contrastive_items``
    (4,096) of the batch's items, a random subset when there are more: at the default batch (2,048
    pairs) that is every item, at the 25,000-pair batches of large data sets it keeps a step from
    spending 80 % of its time on 16,000 x 16,000 logits.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.batches import PairBatch, UserBatch
from fusionrec.models.base import LossOutput, ModelConfig, Recommender, Scorer, embedding_scorer
from fusionrec.models.topk.features import modality_tensors, standardize, training_items
from fusionrec.nn.fusion import build_modality_fusion
from fusionrec.nn.graph import bipartite_adjacency, knn_graph, mean_propagate, sym_normalize, to_torch_sparse
from fusionrec.nn.losses import bpr_loss, info_nce, l2_penalty
from fusionrec.registry import MODELS


class HCGCNConfig(ModelConfig):
    name: str = "hcgcn"
    embedding_dim: int = Field(64, gt=0)
    num_layers: int = Field(2, ge=0, description="user-item propagation layers (global and local)")
    item_layers: int = Field(1, ge=0, description="item-item kNN graph layers")
    knn_k: int = Field(10, gt=0)
    num_clusters: int = Field(8, gt=0)
    recluster_every: int = Field(1, gt=0, description="epochs between dynamic re-clusterings")
    modalities: list[str] = ["all"]
    fusion: str = "modality_self_attention"
    fusion_options: dict = Field(default_factory=dict, description="keyword options of the fusion block")
    cluster_temperature: float = Field(0.2, gt=0, description="τ_c of the soft cluster assignments")
    cocluster_weight: float = Field(0.1, ge=0, description="λ_cc, co-clustering ranking loss")
    cluster_weight: float = Field(0.1, ge=0, description="λ_ic, item-clustering loss")
    contrastive_weight: float = Field(0.1, ge=0, description="λ_cl, CLIP-style modality contrastive loss")
    temperature: float = Field(0.2, gt=0, description="InfoNCE temperature")
    contrastive_items: int | None = Field(
        4096,
        gt=1,
        description="at most this many item pairs (a random subset of the batch's) in the in-batch "
        "InfoNCE, whose logits grow quadratically with the batch; None: all",
    )
    reg_weight: float = Field(1e-4, ge=0)


def item_item_graph(features: dict[str, Tensor], masks: dict[str, Tensor], k: int) -> sp.csr_matrix:
    """Mean over modalities of the symmetrised, normalised cosine kNN graphs. Shapes: {m: (I, F_m)} -> (I, I)."""
    graphs = []
    for m, f in features.items():
        knn = knn_graph(f, k, mask=masks[m])
        graphs.append(sym_normalize(knn.maximum(knn.T)))
    return (sum(graphs[1:], graphs[0]) / len(graphs)).tocsr()


def kmeans(x: Tensor, k: int, iterations: int = 20, fit: Tensor | None = None) -> Tensor:
    """Hard k-means labels of the rows of ``x`` (cosine, k-means++-free: centres start at evenly spaced rows).

    The centroids are fitted on the rows where ``fit`` is True (all when None; HCGCN passes the
    training items), then every row, fitted or not, takes its nearest centroid.

    Shapes: x (N, F), fit (N,) bool -> (N,) in ``[0, k)``.
    """
    x = nn.functional.normalize(x, dim=-1)
    rows = x if fit is None or not bool(fit.any()) else x[fit]  # (N_fit, F)
    centres = rows[torch.linspace(0, len(rows) - 1, k).long()].clone()  # (K, F)
    for _ in range(iterations):
        labels = (rows @ centres.T).argmax(1)  # (N_fit,)
        sums = torch.zeros_like(centres).index_add_(0, labels, rows)
        counts = torch.bincount(labels, minlength=k)
        centres = torch.where(counts[:, None] > 0, nn.functional.normalize(sums, dim=-1), centres)
    return (x @ centres.T).argmax(1)


@MODELS.register(
    "hcgcn", config=HCGCNConfig, task="topk", paper="Mu et al., ACM MM 2022", modalities="any (default all)"
)
class HCGCN(Recommender):
    """Shapes:
    features: {m: (I, F_m)}; masks: {m: (I,)}; interactions: scipy (U, I) training matrix;
    item_graph: sparse (I, I); item_clusters: (I,) initial clusters
    loss: PairBatch users (B,), pos_items (B,), neg_items (B, N)
    score: UserBatch users (B,) -> (B, I) or (B, C)
    """

    present: Tensor  # buffer (I, M)
    item_graph: Tensor  # buffer, sparse (I, I)
    adjacency: Tensor  # buffer, sparse (U+I, U+I)
    clusters: Tensor  # buffer (U+I,)
    local_adjacency: Tensor  # buffer, sparse (U+I, U+I)

    def __init__(
        self,
        num_users: int,
        num_items: int,
        features: dict[str, Tensor],
        masks: dict[str, Tensor],
        interactions: sp.csr_matrix,
        item_graph: Tensor,
        item_clusters: Tensor,
        embedding_dim: int = 64,
        num_layers: int = 2,
        item_layers: int = 1,
        num_clusters: int = 8,
        recluster_every: int = 1,
        fusion: str = "modality_self_attention",
        fusion_options: dict | None = None,
        cluster_temperature: float = 0.2,
        cocluster_weight: float = 0.1,
        cluster_weight: float = 0.1,
        contrastive_weight: float = 0.1,
        temperature: float = 0.2,
        reg_weight: float = 1e-4,
        contrastive_items: int | None = 4096,
    ) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.modality_names = list(features)
        self.embedding = nn.Embedding(num_users + num_items, embedding_dim)
        nn.init.xavier_uniform_(self.embedding.weight)
        self.encoders = nn.ModuleDict({m: nn.Linear(f.shape[1], embedding_dim) for m, f in features.items()})
        self.fusion = build_modality_fusion(fusion, embedding_dim, len(features), **(fusion_options or {}))
        self.centroids = nn.Parameter(torch.empty(num_clusters, embedding_dim))
        for m, f in features.items():
            self.register_buffer(f"features_{m}", f, persistent=False)
        self.register_buffer("present", torch.stack([masks[m] for m in features], dim=1), persistent=False)  # (I, M)
        self.register_buffer("item_graph", item_graph, persistent=False)
        self.interactions = sp.csr_matrix(interactions, dtype=np.float32)
        self.register_buffer(
            "adjacency", to_torch_sparse(sym_normalize(bipartite_adjacency(self.interactions))), persistent=False
        )
        user_clusters = self._majority_clusters(item_clusters, num_clusters)
        self.register_buffer("clusters", torch.cat([user_clusters, item_clusters]))  # (U+I,), saved with the model
        self.register_buffer("local_adjacency", self._local_adjacency(self.clusters), persistent=False)
        self.num_layers, self.item_layers, self.recluster_every = num_layers, item_layers, recluster_every
        self.cluster_temperature, self.temperature, self.reg_weight = cluster_temperature, temperature, reg_weight
        self.cocluster_weight, self.cluster_weight = cocluster_weight, cluster_weight
        self.contrastive_weight, self.contrastive_items = contrastive_weight, contrastive_items
        with torch.no_grad():  # centroids start at the initial clusters' mean representation
            z = nn.functional.normalize(self.propagate()[0], dim=-1)  # (U+I, D)
            sums = torch.zeros(num_clusters, embedding_dim).index_add_(0, self.clusters, z)
            self.centroids.copy_(nn.functional.normalize(sums + 1e-3 * torch.randn_like(sums), dim=-1))

    @classmethod
    def from_dataset(cls, config: HCGCNConfig, dataset) -> HCGCN:
        features, masks = modality_tensors(dataset, config.modalities, "HCGCN")
        fit = training_items(dataset)  # content statistics from the training items only
        features = {m: standardize(f, masks[m], fit) for m, f in features.items()}
        graph = to_torch_sparse(item_item_graph(features, masks, config.knn_k))
        content = torch.cat([nn.functional.normalize(f, dim=-1) for f in features.values()], dim=-1)  # (I, ΣF)
        clusters = kmeans(content, config.num_clusters, fit=fit)
        return cls(
            dataset.num_users,
            dataset.num_items,
            features,
            masks,
            dataset.matrix("train"),
            graph,
            clusters,
            config.embedding_dim,
            config.num_layers,
            config.item_layers,
            config.num_clusters,
            config.recluster_every,
            config.fusion,
            config.fusion_options,
            config.cluster_temperature,
            config.cocluster_weight,
            config.cluster_weight,
            config.contrastive_weight,
            config.temperature,
            config.reg_weight,
            config.contrastive_items,
        )

    # ----------------------------------------------------------------------------------- clusters
    def _majority_clusters(self, item_clusters: Tensor, num_clusters: int) -> Tensor:
        """Each user's most frequent cluster among its training items (cluster 0 without any). -> (U,)"""
        onehot = sp.csr_matrix(
            (np.ones(len(item_clusters), np.float32), (np.arange(len(item_clusters)), item_clusters.numpy())),
            shape=(len(item_clusters), num_clusters),
        )
        counts = np.asarray((self.interactions @ onehot).todense())  # (U, K)
        return torch.from_numpy(counts.argmax(1)).long()

    def _local_adjacency(self, clusters: Tensor) -> Tensor:
        """The normalised user-item graph restricted to edges inside a co-cluster. -> sparse (U+I, U+I)"""
        coo = self.interactions.tocoo()
        labels = clusters.cpu().numpy()
        keep = labels[coo.row] == labels[self.num_users + coo.col]
        local = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=coo.shape)
        return to_torch_sparse(sym_normalize(bipartite_adjacency(local))).to(self.adjacency.device)

    def assignments(self, z: Tensor) -> Tensor:
        """Soft cluster assignments ``π = softmax_k(cos(z, μ_k) / τ_c)``. Shapes: (N, D) -> (N, K)."""
        cos = nn.functional.normalize(z, dim=-1) @ nn.functional.normalize(self.centroids, dim=-1).T
        return torch.softmax(cos / self.cluster_temperature, dim=-1)

    def on_epoch_start(self, epoch: int) -> None:
        """Dynamic graph clustering: reassign every node to its nearest centroid, rebuild the local graph."""
        if epoch > 1 and (epoch - 1) % self.recluster_every == 0:
            with torch.no_grad():
                self.clusters.copy_(self.assignments(self.propagate()[0]).argmax(1))
            self.local_adjacency = self._local_adjacency(self.clusters)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        result = super().load_state_dict(state_dict, strict, assign)
        self.local_adjacency = self._local_adjacency(self.clusters)  # follow the restored clusters
        return result

    # -------------------------------------------------------------------------------- propagation
    def item_content(self) -> tuple[Tensor, Tensor | None, dict[str, Tensor]]:
        """Graph-smoothed fused content ``c̄`` (I, D), the fusion weights (I, M) and each ``e^m`` (I, D)."""
        modal = {m: enc(getattr(self, f"features_{m}")) for m, enc in self.encoders.items()}  # {m: (I, D)}
        fused = self.fusion(modal, self.present, query=self.embedding.weight[self.num_users :])  # out (I, D)
        weights = fused.weights["pool"] if isinstance(fused.weights, dict) else fused.weights
        content = mean_propagate(self.item_graph, fused.out, self.item_layers)  # (I, D)
        return content, weights, modal

    def propagate(self) -> tuple[Tensor, Tensor | None, dict[str, Tensor]]:
        """Final node representations ``z`` (U+I, D) (users first), the fusion weights and ``e^m``."""
        content, weights, modal = self.item_content()
        ego = self.embedding.weight
        x = torch.cat([ego[: self.num_users], ego[self.num_users :] + content])  # (U+I, D)
        z = (
            mean_propagate(self.adjacency, x, self.num_layers)  # (U+I, D) global
            + mean_propagate(self.local_adjacency, x, self.num_layers)
        )  # + local
        return z, weights, modal

    # --------------------------------------------------------------------------------------- loss
    def loss(self, batch: PairBatch) -> LossOutput:
        z, _, modal = self.propagate()
        users, items = z[: self.num_users], z[self.num_users :]
        u = users[batch.users]  # (B, D)
        pos = (u * items[batch.pos_items]).sum(-1)  # (B,)
        neg = (u.unsqueeze(1) * items[batch.neg_items]).sum(-1)  # (B, N)
        ranking = bpr_loss(pos, neg)
        pi_u = self.assignments(u)  # (B, K)
        pi_pos, pi_neg = self.assignments(items[batch.pos_items]), self.assignments(items[batch.neg_items])
        affinity_pos = (pi_u * pi_pos).sum(-1).clamp_min(1e-8).log()  # (B,)
        affinity_neg = (pi_u.unsqueeze(1) * pi_neg).sum(-1).clamp_min(1e-8).log()  # (B, N)
        cocluster = bpr_loss(affinity_pos, affinity_neg)
        clustering = self.item_clustering_loss(pi_pos)
        contrastive = self.contrastive_loss(modal, batch.pos_items)
        ego = self.embedding.weight
        reg = self.reg_weight * l2_penalty(
            ego[batch.users],
            ego[self.num_users + batch.pos_items],
            ego[self.num_users + batch.neg_items],
            batch_size=len(batch),
        )
        total = (
            ranking
            + self.cocluster_weight * cocluster
            + self.cluster_weight * clustering
            + self.contrastive_weight * contrastive
            + reg
        )
        return LossOutput(
            total,
            {
                "bpr": ranking.detach(),
                "cocluster": cocluster.detach(),
                "cluster": clustering.detach(),
                "contrastive": contrastive.detach(),
                "reg": reg.detach(),
            },
        )

    @staticmethod
    def item_clustering_loss(q: Tensor) -> Tensor:
        """DEC self-training: ``KL(P ‖ Q)``, ``p_ik ∝ q_ik² / f_k``, ``f_k = Σ_i q_ik`` (P detached). (B, K) -> ()."""
        target = q.pow(2) / q.sum(0, keepdim=True)  # (B, K)
        target = (target / target.sum(-1, keepdim=True)).detach()
        return (target * (target.clamp_min(1e-8).log() - q.clamp_min(1e-8).log())).sum(-1).mean()

    def contrastive_loss(self, modal: dict[str, Tensor], items: Tensor) -> Tensor:
        """Symmetric InfoNCE between every two modalities' embeddings of the batch's items that have both
        (at most ``contrastive_items`` of them, a random subset)."""
        items = torch.unique(items)
        losses = []
        for (a, ma), (b, mb) in itertools.combinations(enumerate(self.modality_names), 2):
            both = items[self.present[items, a] & self.present[items, b]]  # (P,)
            if len(both) > 1:
                losses.append(info_nce(modal[ma][both], modal[mb][both], self.temperature, self.contrastive_items))
        return torch.stack(losses).mean() if losses else self.centroids.new_zeros(())

    # ------------------------------------------------------------------------------------ scoring
    def score(self, batch: UserBatch) -> Tensor:
        return self.scorer()(batch.users, batch.items)

    def scorer(self) -> Scorer:
        z, _, _ = self.propagate()
        return embedding_scorer(z[: self.num_users], z[self.num_users :])

    def explain(self, users: Tensor, items: Tensor) -> dict[str, Tensor] | None:
        """The item's modality fusion weights ``(B, M)`` and both sides' soft cluster assignments ``(B, K)``."""
        z, weights, _ = self.propagate()
        out = {
            "user_clusters": self.assignments(z[users]),  # (B, K)
            "item_clusters": self.assignments(z[self.num_users + items]),
        }  # (B, K)
        if weights is not None:
            out["modality_weights"] = weights[items]
        return out
