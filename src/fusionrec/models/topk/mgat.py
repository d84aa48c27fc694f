"""MGAT: Tao et al., "MGAT: Multimodal Graph Attention Network for Recommendation", Information
Processing & Management 57(5):102277, 2020.

One graph per modality m over the user-item graph (both edge directions). Per modality, nodes
start from ``x⁰ = L2norm([P_m ; tanh(W_m f^m + b_m)])`` (a learned user preference P_m, projected
item features f^m) and each layer l = 1..L applies gated graph attention:

    s_ij = <x_i, LeakyReLU(x_j)>,  α_ij = softmax_{j ∈ N(i)}(s_ij σ(s_ij / sqrt(deg_j)))
    h = LeakyReLU(L2norm(Σ_j α_ij x_j W + b)),  x̂ = LeakyReLU(W_1 x) + e_id,  x' = LeakyReLU(W_g h + x̂)

with ``e_id`` a shared ID embedding added at every layer. A node's modality-m representation is
the concatenation ``[x¹; ...; x^L]``; modalities are fused per node (``fusion``, the mean by
default) and ``ŷ_ui = <z_u, z_i>``. Loss: BPR plus ``reg_weight`` times the squared norm of the
batch's ID embeddings.

Defaults were chosen on validation NDCG@20 of the ml-100k peer split (lr 1e-3 / 5e-3, reg 1e-4 /
1e-2, weight decay 0 / 1e-4): run with ``train.lr=1e-3 train.weight_decay=1e-4`` (valid 0.266;
the other settings 0.251-0.265). It peaks after ~20 epochs and then overfits.

Note:
    Layers: the official code (zltao/MGAT ``Model.py``) returns after the first layer, so its
    second layer and the concatenation are dead code; here all ``num_layers`` layers run
    (default 2, the paper's and the code's intended depth) and their outputs are concatenated as
    the dead code would have. Layer 1 works at ``hidden_dim`` (official ``dim_latent``: 256 / 128
    / 100 per modality; one width here), later layers at ``embedding_dim``.
    Fusion: the official code averages the modalities (``fusion="mean"``, the default); any
    modality fusor can replace it (``model.fusion=gated``), applied per node. Items missing a
    modality get zero (mean-imputed, after standardisation) features for it, keep their edges
    and are left out of that modality in the fusion (its weight is 0), unless they miss every
    modality, in which case all are kept.
    Loss: the official loss is ``-Σ log₂ σ(ŷ_ui - ŷ_uj)`` summed over the batch with Adam weight
    decay on all parameters; here ``-mean ln σ(·)`` (a constant factor) plus an explicit L2 on the
    batch's ID embeddings (``train.weight_decay`` still applies weight decay to everything).
    Evaluation is full ranking, not the official 1,000 sampled negatives. The gated attention runs
    as fused sparse kernels on a fixed CSR graph (``GatedGraphAttentionConv`` with a
    ``CSRGraph``): no per-edge (E, D) tensors.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.batches import PairBatch, UserBatch
from fusionrec.models.base import LossOutput, ModelConfig, Recommender, Scorer, embedding_scorer
from fusionrec.models.topk.features import modality_tensors, standardize, training_items
from fusionrec.nn.fusion import GatedGraphAttentionConv, build_modality_fusion
from fusionrec.nn.graph import CSRGraph, bipartite_adjacency
from fusionrec.nn.losses import graph_bpr_terms
from fusionrec.registry import MODELS

leaky_relu = nn.functional.leaky_relu


class MGATConfig(ModelConfig):
    name: str = "mgat"
    embedding_dim: int = Field(64, gt=0, description="D: ID embedding and per-layer output width (official dim_x)")
    hidden_dim: int = Field(64, gt=0, description="projected feature width of layer 1 (official dim_latent)")
    num_layers: int = Field(2, ge=1, description="gated attention layers per modality; outputs are concatenated")
    modalities: list[str] = ["all"]
    fusion: str = "mean"
    fusion_options: dict = Field(default_factory=dict, description="keyword options of the fusion block")
    reg_weight: float = Field(1e-4, ge=0)


class ModalityGraphEncoder(nn.Module):
    """One modality's MGAT branch: projected item features + user preference, L gated attention layers.

    Shapes:
        features: (I, F_m); id_embedding: (U+I, D) -> (U+I, L·D)
    """

    def __init__(self, num_users: int, feature_dim: int, embedding_dim: int, hidden_dim: int, num_layers: int) -> None:
        super().__init__()
        self.preference = nn.Parameter(nn.init.xavier_normal_(torch.empty(num_users, hidden_dim)))
        self.project = nn.Linear(feature_dim, hidden_dim)
        dims = [hidden_dim] + [embedding_dim] * (num_layers - 1)
        self.convs = nn.ModuleList(GatedGraphAttentionConv(d, d) for d in dims)
        self.linears = nn.ModuleList(nn.Linear(d, embedding_dim) for d in dims)  # W_1 (official linear_layer)
        self.gates = nn.ModuleList(nn.Linear(d, embedding_dim) for d in dims)  # W_g (official g_layer)
        for layer in [*self.linears, *self.gates]:
            nn.init.xavier_normal_(layer.weight)

    def forward(
        self, features: Tensor, id_embedding: Tensor, graph: CSRGraph, weights: list[Tensor] | None = None
    ) -> Tensor:
        items = torch.tanh(self.project(features))  # (I, H)
        x = nn.functional.normalize(torch.cat([self.preference, items]), dim=-1)  # (U+I, H)
        outputs = []
        for conv, linear, gate in zip(self.convs, self.linears, self.gates):
            attended = conv(x, graph)  # out (U+I, d), weights (E,)
            if weights is not None:
                weights.append(attended.weights)
            h = leaky_relu(attended.out)  # (U+I, d)
            x_hat = leaky_relu(linear(x)) + id_embedding  # (U+I, D)
            x = leaky_relu(gate(h) + x_hat)  # (U+I, D)
            outputs.append(x)
        return torch.cat(outputs, dim=-1)  # (U+I, L·D)


@MODELS.register("mgat", config=MGATConfig, task="topk", paper="Tao et al., IP&M 2020", modalities="any (default all)")
class MGAT(Recommender):
    """Shapes:
    features: {m: (I, F_m)}; masks: {m: (I,)}; graph: CSR over U+I nodes (user-item, both directions)
    loss: PairBatch users (B,), pos_items (B,), neg_items (B, N)
    score: UserBatch users (B,) -> (B, I) or (B, C)
    """

    node_mask: Tensor  # buffer (U+I, M)

    def __init__(
        self,
        num_users: int,
        num_items: int,
        features: dict[str, Tensor],
        masks: dict[str, Tensor],
        graph: CSRGraph,
        embedding_dim: int = 64,
        hidden_dim: int = 64,
        num_layers: int = 2,
        fusion: str = "mean",
        fusion_options: dict | None = None,
        reg_weight: float = 1e-4,
    ) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.modality_names = list(features)
        self.graph = graph
        self.id_embedding = nn.Parameter(nn.init.xavier_normal_(torch.empty(num_users + num_items, embedding_dim)))
        self.encoders = nn.ModuleDict(
            {
                m: ModalityGraphEncoder(num_users, f.shape[1], embedding_dim, hidden_dim, num_layers)
                for m, f in features.items()
            }
        )
        for m, f in features.items():
            self.register_buffer(f"features_{m}", f, persistent=False)
        present = torch.stack([masks[m] for m in self.modality_names], dim=1)  # (I, M)
        present[~present.any(dim=1)] = True  # an item missing every modality keeps them all
        node_mask = torch.cat([torch.ones(num_users, len(features), dtype=torch.bool), present])  # (U+I, M)
        self.register_buffer("node_mask", node_mask, persistent=False)
        self.fusion = build_modality_fusion(fusion, num_layers * embedding_dim, len(features), **(fusion_options or {}))
        self.reg_weight = reg_weight

    @classmethod
    def from_dataset(cls, config: MGATConfig, dataset) -> MGAT:
        features, masks = modality_tensors(dataset, config.modalities, "MGAT")
        fit = training_items(dataset)  # content statistics from the training items only
        features = {m: standardize(f, masks[m], fit) for m, f in features.items()}
        graph = CSRGraph.from_scipy(bipartite_adjacency(dataset.matrix("train")))
        return cls(
            dataset.num_users,
            dataset.num_items,
            features,
            masks,
            graph,
            config.embedding_dim,
            config.hidden_dim,
            config.num_layers,
            config.fusion,
            config.fusion_options,
            config.reg_weight,
        )

    def propagate(self, attention: dict[str, list[Tensor]] | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Fused user and item representations ``(U, L·D)``, ``(I, L·D)`` and the fusion weights ``(U+I, M)``.

        With ``attention`` (a dict), each modality's per-layer neighbour weights ``(E,)`` (in
        ``self.graph``'s CSR edge order) are stored under its name.
        """
        reps = {}
        for m, encoder in self.encoders.items():
            layers: list[Tensor] | None = [] if attention is not None else None
            reps[m] = encoder(getattr(self, f"features_{m}"), self.id_embedding, self.graph, layers)  # (U+I, L·D)
            if attention is not None:
                assert layers is not None  # a list whenever attention is given
                attention[m] = layers
        fused = self.fusion(reps, self.node_mask)  # out (U+I, L·D), weights (U+I, M) or None
        weights = fused.weights["pool"] if isinstance(fused.weights, dict) else fused.weights
        return fused.out[: self.num_users], fused.out[self.num_users :], weights

    def loss(self, batch: PairBatch) -> LossOutput:
        users, items, _ = self.propagate()
        ranking, reg = graph_bpr_terms(
            users,
            items,
            self.id_embedding,
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
        users, items, _ = self.propagate()
        return embedding_scorer(users, items)

    def explain(self, users: Tensor, items: Tensor) -> dict[str, Tensor] | None:
        """The modality fusion weights of each pair's item and user nodes (``(B, M)`` each; M = ``modality_names``).

        MGAT fuses per node, so a pair's weights are its item's (``modality_weights``) and its
        user's (``user_modality_weights``); ``None`` for a fusor without weights (sum, concat).
        """
        _, _, weights = self.propagate()
        if weights is None:
            return None
        return {"modality_weights": weights[self.num_users + items], "user_modality_weights": weights[users]}
