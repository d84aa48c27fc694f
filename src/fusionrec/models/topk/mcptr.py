"""MCPTR: Liu, Ma, Schubert, Ouyang & Xiong, "Multi-Modal Contrastive Pre-training for
Recommendation", ICMR 2022.

Stage 1 pre-trains multimodal user and item representations; stage 2 fine-tunes an existing
recommender (BPR-MF or LightGCN, ``base``) initialised with them, on the interactions only:

    item:  x_i^m = W_m f_i^m,   g_i = GraphEnc(G_i),   e_i = InterAgg([x_i^1 .. x_i^M, g_i])
    user:  t_u^m = Σ_{j ∈ N(u)} softmax_j(wᵀ tanh(V x_j^m)) x_j^m  (intra-modal aggregation),
           g_u = GraphEnc(G_u),   e_u = InterAgg([t_u^1 .. t_u^M, g_u])
    L_pre = BCE(σ(e_u · e_i), r_ui) + λ InfoNCE(x_i^a, x_i^b; in-batch negatives, τ)

``InterAgg`` is self-attention over the modality tokens ("each modality occupies the same
position"), then pooling (:class:`~fusionrec.nn.fusion.ModalitySelfAttention`, or any modality
fusor by ``fusion``). ``G_u`` / ``G_i`` are the user-user and item-item co-interaction graphs (each
node linked to its ``num_neighbors`` most co-interacted nodes), encoded by parameter-free LightGCN
propagation of ID embeddings. ``(a, b)`` are the text and image modalities (``contrastive_modalities``).
Stage 2 copies ``e_u`` / ``e_i`` into the base model's embeddings and trains it with BPR.

Both stages run in one ``fit``: stage 1 runs in ``on_epoch_start(1)`` for ``pretrain_epochs``
epochs with its own optimiser (``pretrain_optimizer``, ``pretrain_lr``, ``pretrain_weight_decay``,
``pretrain_grad_clip``, all in the model config; ``train.optimizer``, ``train.lr``,
``train.weight_decay`` and ``train.grad_clip`` are fit's and apply to stage 2 only); its per-epoch
losses are kept in ``pretrain_history`` and recorded under ``model_extra.pretrain`` in
``record.json``. The trained stage-1 network is then copied into ``stage1`` and kept, frozen
(``requires_grad=False``, so stage 2 never updates it): its parameters are part of the model's
``state_dict``, hence of ``best.pt`` / ``last.pt``, and ``load_run`` restores them, so ``explain``
(which modality views shaped a pair's initial embeddings) works on a loaded run; its inputs
(features, graphs, histories) are non-persistent buffers rebuilt from the data set. Negatives of
the pre-training BCE loss come from the task's negative pool (:meth:`on_fit_start`).

Note:
    No code is public and the paper body was not read (MODELS.md marks the forms [U]); every
    deviation below is a guess at an unverified detail. Users have no reviews in the data sets
    here: a user's "review" texts are the text (and other modality) features of the items in the
    user's training history, aggregated by query-free attention (``user_aggregation``; ``"mean"``
    averages); as in review-based models, a training pair's own item stays in the user's history
    during pre-training (it only shapes the initialisation: stage 2 sees interactions only).
    Encoders are linear projections of pre-extracted features (the paper trains text and image
    encoders). The graph encoder is LightGCN propagation over kNN co-interaction graphs
    (the paper's graph encoder and graph construction are unverified). Negatives of the BCE loss
    are uniform over the top-K task's negative pool (``task.negative_items()``: the items that occur
    in training by default, every item with ``task.negative_pool=all``), redrawn where the user
    interacted with them in training; without ``fit`` (``pretrain`` called directly) the pool is the
    training items. Feature standardisation uses statistics of the training items only
    (docs/models.md, "What content statistics see"). With no image modality
    the contrastive pair is the first two of the item views (modalities, then ``graph``); it is
    off with a single view. The pre-trained embeddings are rescaled to the base model's
    initialisation scale (``init_std``; the direction, and hence the ranking, is kept). BPR has no
    item bias here (the pre-training gives none). The in-batch InfoNCE sees at most
    ``contrastive_items`` (4,096) of the batch's distinct items, a random subset when there are more
    (never at the default pre-training batch of 2,048 pairs with one negative).
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.batches import PairBatch, UserBatch
from fusionrec.errors import ConfigError
from fusionrec.models.base import LossOutput, ModelConfig, Recommender, Scorer, embedding_scorer
from fusionrec.models.topk.features import modality_tensors, standardize, training_items
from fusionrec.nn.fusion import build_modality_fusion
from fusionrec.nn.fusion.base import ModalityFusion
from fusionrec.nn.fusion.layers import AdditiveScore
from fusionrec.nn.graph import bipartite_adjacency, co_interaction_knn, mean_propagate, sym_normalize, to_torch_sparse
from fusionrec.nn.losses import bpr_loss, info_nce, l2_penalty
from fusionrec.registry import MODELS


class MCPTRConfig(ModelConfig):
    name: str = "mcptr"
    base: Literal["bpr", "lightgcn"] = "lightgcn"
    embedding_dim: int = Field(64, gt=0)
    num_layers: int = Field(2, ge=0, description="LightGCN layers of the fine-tuned base (base=lightgcn)")
    reg_weight: float = Field(1e-4, ge=0, description="L2 of the fine-tuning BPR loss")
    init_std: float | None = Field(
        0.1, gt=0, description="rescale the pre-trained embeddings to this std; None keeps their scale"
    )
    modalities: list[str] = ["all"]
    fusion: str = Field("modality_self_attention", description="inter-modal aggregation (a modality fusor)")
    user_aggregation: Literal["attention", "mean"] = "attention"
    num_neighbors: int = Field(10, gt=0, description="neighbours per node of the co-interaction graphs")
    num_graph_layers: int = Field(2, ge=0)
    contrastive_modalities: list[str] = Field(
        [], description="the two item views aligned by InfoNCE; default text and image, else the first two"
    )
    contrastive_weight: float = Field(0.1, ge=0)
    temperature: float = Field(0.2, gt=0)
    contrastive_items: int | None = Field(
        4096,
        gt=1,
        description="at most this many item pairs (a random subset of the batch's) in the in-batch "
        "InfoNCE, whose logits grow quadratically with the batch; None: all",
    )
    pretrain_epochs: int = Field(10, ge=0, description="stage-1 epochs; 0 fine-tunes from scratch")
    pretrain_lr: float = Field(1e-3, gt=0)
    pretrain_batch_size: int = Field(2048, gt=0)
    pretrain_num_negatives: int = Field(1, gt=0)
    pretrain_optimizer: Literal["adam", "adamw", "sgd", "adagrad"] = Field(
        "adam", description="stage-1 optimiser (train.optimizer is stage 2's)"
    )
    pretrain_weight_decay: float = Field(
        0.0, ge=0, description="stage-1 weight decay (train.weight_decay is stage 2's)"
    )
    pretrain_grad_clip: float | None = Field(
        None, gt=0, description="stage-1 gradient-norm clipping (train.grad_clip is stage 2's); None: none"
    )


def contrastive_views(names: list[str], chosen: list[str]) -> tuple[str, str] | None:
    """The two item views InfoNCE aligns: ``chosen``, else text and image, else the first two views."""
    views = [*names, "graph"]
    if chosen:
        unknown = [c for c in chosen if c not in views]
        if len(chosen) != 2 or unknown or chosen[0] == chosen[1]:
            raise ConfigError(
                f"contrastive_modalities must name two different item views among: {', '.join(views)}; got {chosen}"
            )
        return chosen[0], chosen[1]
    if "text" in names and "image" in names:
        return "text", "image"
    return (views[0], views[1]) if len(views) >= 2 else None


class MultimodalPretrainer(nn.Module):
    """Stage 1: multimodal user and item encoders with inter-modal self-attention.

    Shapes:
        features[m]: (I, D_m); masks[m]: (I,); history: sparse (U, I); user_graph: sparse (U, U);
        item_graph: sparse (I, I) -> forward: users (U, D), items (I, D), item views {name: (I, D)}.
    """

    def __init__(
        self,
        features: dict[str, Tensor],
        masks: dict[str, Tensor],
        history: Tensor,
        history_t: Tensor,
        user_graph: Tensor,
        item_graph: Tensor,
        dim: int,
        num_graph_layers: int,
        fusion: str,
        user_aggregation: str,
    ) -> None:
        super().__init__()
        self.names = list(features)
        self.features = [features[n] for n in self.names]
        self.masks = [masks[n] for n in self.names]
        self.history, self.history_t = history, history_t
        self.user_graph, self.item_graph = user_graph, item_graph
        self.user_presence = [
            spmm(history, history_t, m.to(history.dtype)[:, None]).squeeze(-1) > 0 for m in self.masks
        ]  # (U,) per modality
        self.num_graph_layers = num_graph_layers
        self.user_id = nn.Embedding(history.shape[0], dim)
        self.item_id = nn.Embedding(history.shape[1], dim)
        nn.init.xavier_uniform_(self.user_id.weight)
        nn.init.xavier_uniform_(self.item_id.weight)
        self.encoders = nn.ModuleList(nn.Linear(f.shape[-1], dim) for f in self.features)
        self.review_attention = (
            nn.ModuleList(AdditiveScore(dim) for _ in self.features) if user_aggregation == "attention" else None
        )
        self.item_fusion = build_modality_fusion(fusion, dim, len(self.names) + 1)
        self.user_fusion = build_modality_fusion(fusion, dim, len(self.names) + 1)

    def aggregate_reviews(self, k: int, x: Tensor) -> Tensor:
        """``t_u^m``: attention (or mean) over the user's items that have modality k. x (I, D) -> (U, D)."""
        present = self.masks[k].to(x.dtype)  # (I,)
        if self.review_attention is None:
            weights = present
        else:
            scores = self.review_attention[k](x)  # (I,): query-free, so softmax_j = exp(s_j) / Σ_{j ∈ N(u)} exp
            weights = torch.exp(scores - scores.detach().max()) * present  # (I,)
        total = spmm(self.history, self.history_t, weights[:, None] * x)  # (U, D)
        norm = spmm(self.history, self.history_t, weights[:, None])  # (U, 1)
        return total / norm.clamp_min(1e-12)

    def forward(
        self, users: Tensor | None = None, items: Tensor | None = None
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """``e_u`` of ``users`` (B_u, D) and ``e_i`` of ``items`` (B_i, D) (all when None), and every
        item's views {name: (I, D)} (modalities and ``graph``)."""
        views = {n: enc(f) for n, enc, f in zip(self.names, self.encoders, self.features)}  # (I, D) each
        item_graph = mean_propagate(self.item_graph, self.item_id.weight, self.num_graph_layers)  # (I, D)
        user_graph = mean_propagate(self.user_graph, self.user_id.weight, self.num_graph_layers)  # (U, D)
        item_tokens = torch.stack([*views.values(), item_graph], 1)  # (I, M+1, D)
        item_mask = torch.stack([*self.masks, torch.ones_like(self.masks[0])], 1)  # (I, M+1)
        reviews = [self.aggregate_reviews(k, x) for k, x in enumerate(views.values())]  # (U, D) each
        user_tokens = torch.stack([*reviews, user_graph], 1)  # (U, M+1, D)
        user_mask = torch.stack([*self.user_presence, torch.ones_like(self.user_presence[0])], 1)  # (U, M+1)
        if items is not None:
            item_tokens, item_mask = item_tokens[items], item_mask[items]  # (B_i, M+1, D)
        if users is not None:
            user_tokens, user_mask = user_tokens[users], user_mask[users]  # (B_u, M+1, D)
        fused_items = self.item_fusion(item_tokens, item_mask).out  # (B_i, D)
        fused_users = self.user_fusion(user_tokens, user_mask).out  # (B_u, D)
        return fused_users, fused_items, {**views, "graph": item_graph}


class _SparseMatmul(torch.autograd.Function):
    """``A @ X`` whose backward uses a precomputed ``A^T`` (torch transposes ``A`` on every call)."""

    @staticmethod
    def forward(ctx, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj_t = adj_t
        return adj @ x

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor]:  # type: ignore[override]
        return None, None, ctx.adj_t @ grad


def spmm(adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` for sparse ``adj`` (N, K) with its transpose ``adj_t`` (K, N); x (K, D) -> (N, D)."""
    return _SparseMatmul.apply(adj, adj_t, x)


def sample_negatives(users: Tensor, num_items: int, num: int, seen: Tensor, pool: Tensor | None = None) -> Tensor:
    """Items drawn uniformly from ``pool`` (all items when None) per user, redrawn (up to 5 times)
    where the user saw them in training.

    Shapes: users (B,); seen: sorted (nnz,) keys ``user * num_items + item``; pool (P,) item indices
    -> (B, num).
    """

    def draw(size: tuple[int, ...]) -> Tensor:
        if pool is None:
            return torch.randint(num_items, size, device=users.device)
        return pool[torch.randint(len(pool), size, device=pool.device)].to(users.device)

    negatives = draw((len(users), num))  # (B, N)
    for _ in range(5):
        keys = users[:, None] * num_items + negatives  # (B, N)
        clash = seen[torch.searchsorted(seen, keys).clamp_max(len(seen) - 1)] == keys  # (B, N)
        if not clash.any():
            break
        negatives[clash] = draw((int(clash.sum()),))
    return negatives


_PRETRAIN_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
}


@MODELS.register(
    "mcptr",
    config=MCPTRConfig,
    task="topk",
    paper="Liu et al., ICMR 2022",
    modalities="any (text and image for the contrastive loss)",
)
class MCPTR(Recommender):
    """Shapes:
    user_emb: (U, D), item_emb: (I, D) of the fine-tuned base; adjacency: sparse (U+I, U+I)
    loss: PairBatch users (B,), pos_items (B,), neg_items (B, N)
    score: UserBatch users (B,) -> (B, I) or (B, C)
    """

    adjacency: Tensor  # buffer, sparse (U+I, U+I)
    history: Tensor  # buffer, sparse (U, I)
    history_t: Tensor  # buffer, sparse (I, U)
    user_graph: Tensor  # buffer, sparse (U, U)
    item_graph: Tensor  # buffer, sparse (I, I)
    seen: Tensor  # buffer (nnz,), sorted user * I + item of the training pairs
    negative_pool: Tensor  # buffer (P,)

    def __init__(
        self,
        num_users: int,
        num_items: int,
        adjacency: Tensor,
        pretrain_inputs: dict[str, Any],
        base: Literal["bpr", "lightgcn"] = "lightgcn",
        embedding_dim: int = 64,
        num_layers: int = 2,
        reg_weight: float = 1e-4,
        init_std: float | None = 0.1,
        fusion: str = "modality_self_attention",
        user_aggregation: str = "attention",
        num_graph_layers: int = 2,
        contrastive: tuple[str, str] | None = None,
        contrastive_weight: float = 0.1,
        temperature: float = 0.2,
        pretrain_epochs: int = 10,
        pretrain_lr: float = 1e-3,
        pretrain_batch_size: int = 2048,
        pretrain_num_negatives: int = 1,
        contrastive_items: int | None = 4096,
        pretrain_optimizer: str = "adam",
        pretrain_weight_decay: float = 0.0,
        pretrain_grad_clip: float | None = None,
    ) -> None:
        super().__init__()
        self.num_users = num_users
        self.user_emb = nn.Embedding(num_users, embedding_dim)
        self.item_emb = nn.Embedding(num_items, embedding_dim)
        std = 0.1 if init_std is None else init_std
        nn.init.normal_(self.user_emb.weight, std=std)
        nn.init.normal_(self.item_emb.weight, std=std)
        self.base = base
        self.num_layers = num_layers if base == "lightgcn" else 0
        self.register_buffer("adjacency", adjacency, persistent=False)
        self.reg_weight = reg_weight
        self.init_std = init_std
        self.modality_names = list(pretrain_inputs["features"])
        for k, name in enumerate(self.modality_names):  # buffers, so that they follow .to(device)
            self.register_buffer(f"features_{k}", pretrain_inputs["features"][name], persistent=False)
            self.register_buffer(f"masks_{k}", pretrain_inputs["masks"][name], persistent=False)
        for name in ("history", "history_t", "user_graph", "item_graph", "seen"):
            self.register_buffer(name, pretrain_inputs[name], persistent=False)
        # the items pre-training negatives are drawn from: the training items until on_fit_start
        # hands over the task's pool (task.negative_pool)
        self.register_buffer("negative_pool", torch.unique(self.seen % num_items), persistent=False)  # (P,)
        if pretrain_optimizer not in _PRETRAIN_OPTIMIZERS:
            raise ConfigError(
                f"MCPTR pretrain_optimizer must be one of {', '.join(_PRETRAIN_OPTIMIZERS)}; got {pretrain_optimizer!r}"
            )
        self.pretrain_optimizer = pretrain_optimizer
        self.pretrain_weight_decay, self.pretrain_grad_clip = pretrain_weight_decay, pretrain_grad_clip
        self.pretrain_options: dict[str, Any] = dict(
            dim=embedding_dim, num_graph_layers=num_graph_layers, fusion=fusion, user_aggregation=user_aggregation
        )
        build_modality_fusion(fusion, embedding_dim, len(self.modality_names) + 1)  # fail early on a bad name
        self.contrastive = contrastive
        self.contrastive_weight = contrastive_weight
        self.temperature, self.contrastive_items = temperature, contrastive_items
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.pretrain_batch_size = pretrain_batch_size
        self.pretrain_num_negatives = pretrain_num_negatives
        self.pretrain_history: list[dict[str, float]] = []
        # The trained stage-1 network is kept (and checkpointed) to explain which modalities shaped
        # a pair's initial embeddings; built under a forked RNG so that it consumes no random numbers.
        with torch.random.fork_rng(devices=[]):
            self.stage1 = self.pretrainer().requires_grad_(False)  # frozen: stage 2 trains the base only
        self.explain_names = [*self.modality_names, "graph"]

    @classmethod
    def from_dataset(cls, config: MCPTRConfig, dataset) -> MCPTR:
        features, masks = modality_tensors(dataset, config.modalities, "MCPTR")
        fit = training_items(dataset)  # content statistics from the training items only
        features = {n: standardize(f, masks[n], fit) for n, f in features.items()}
        train = dataset.matrix("train")
        coo = train.tocoo()
        seen = torch.from_numpy(coo.row.astype("int64") * dataset.num_items + coo.col.astype("int64")).sort().values
        inputs = {
            "features": features,
            "masks": masks,
            "seen": seen,
            "history": to_torch_sparse(train),
            "history_t": to_torch_sparse(train.T),
            "user_graph": to_torch_sparse(sym_normalize(co_interaction_knn(train, config.num_neighbors))),
            "item_graph": to_torch_sparse(sym_normalize(co_interaction_knn(train.T, config.num_neighbors))),
        }
        adjacency = to_torch_sparse(sym_normalize(bipartite_adjacency(train)))
        return cls(
            dataset.num_users,
            dataset.num_items,
            adjacency,
            inputs,
            config.base,
            config.embedding_dim,
            config.num_layers,
            config.reg_weight,
            config.init_std,
            config.fusion,
            config.user_aggregation,
            config.num_graph_layers,
            contrastive_views(list(features), config.contrastive_modalities),
            config.contrastive_weight,
            config.temperature,
            config.pretrain_epochs,
            config.pretrain_lr,
            config.pretrain_batch_size,
            config.pretrain_num_negatives,
            config.contrastive_items,
            config.pretrain_optimizer,
            config.pretrain_weight_decay,
            config.pretrain_grad_clip,
        )

    # ------------------------------------------------------------------------------ stage 1

    def pretrainer(self) -> MultimodalPretrainer:
        """A fresh stage-1 network on this model's device."""
        names = self.modality_names
        features = {n: getattr(self, f"features_{k}") for k, n in enumerate(names)}
        masks = {n: getattr(self, f"masks_{k}") for k, n in enumerate(names)}
        net = MultimodalPretrainer(
            features, masks, self.history, self.history_t, self.user_graph, self.item_graph, **self.pretrain_options
        )
        return net.to(self.user_emb.weight.device)

    def pretrain(self) -> tuple[Tensor, Tensor]:
        """Stage 1: train the multimodal network, copy its ``e_u`` / ``e_i`` into the base embeddings.

        Returns the pre-trained ``(U, D)`` and ``(I, D)`` representations (before rescaling).
        """
        net = self.pretrainer()
        optimizer = _PRETRAIN_OPTIMIZERS[self.pretrain_optimizer](
            net.parameters(), lr=self.pretrain_lr, weight_decay=self.pretrain_weight_decay
        )
        coo = self.history.to_sparse_coo().coalesce().indices()  # (2, nnz)
        num_items = self.item_emb.num_embeddings
        pool = self.negative_pool.to(coo.device)  # (P,)
        self.pretrain_history = []
        for epoch in range(1, self.pretrain_epochs + 1):
            start, totals, steps = time.perf_counter(), {"loss": 0.0, "bce": 0.0, "contrastive": 0.0}, 0
            for batch in torch.randperm(coo.shape[1], device=coo.device).split(self.pretrain_batch_size):
                users, pos = coo[0, batch], coo[1, batch]  # (B,)
                neg = sample_negatives(users, num_items, self.pretrain_num_negatives, self.seen, pool)  # (B, N)
                batch_users, user_index = torch.unique(users, return_inverse=True)
                batch_items, item_index = torch.unique(torch.cat([pos[:, None], neg], 1), return_inverse=True)
                u, i, views = net(batch_users, batch_items)  # (B_u, D), (B_i, D)
                logits = (u[user_index][:, None] * i[item_index]).sum(-1)  # (B, 1+N), positive first
                labels = torch.zeros_like(logits)
                labels[:, 0] = 1.0
                bce = F.binary_cross_entropy_with_logits(logits, labels)
                contrastive = self._contrastive(views, batch_items)
                loss = bce + self.contrastive_weight * contrastive
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.pretrain_grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), self.pretrain_grad_clip)
                optimizer.step()
                for key, value in (("loss", loss), ("bce", bce), ("contrastive", contrastive)):
                    totals[key] += float(value.detach())
                steps += 1
            self.pretrain_history.append(
                {
                    "epoch": epoch,
                    **{k: v / max(steps, 1) for k, v in totals.items()},
                    "seconds": round(time.perf_counter() - start, 4),
                }
            )
        net.eval()
        self.stage1.load_state_dict(net.state_dict())
        self.stage1.eval()
        with torch.no_grad():
            users, items, _ = net()
            for target, source in ((self.user_emb.weight, users), (self.item_emb.weight, items)):
                scale = 1.0 if self.init_std is None else self.init_std / source.std().clamp_min(1e-12)
                target.copy_(source * scale)
        return users, items

    def _contrastive(self, views: dict[str, Tensor], items: Tensor) -> Tensor:
        """In-batch InfoNCE between the two contrastive views of the (distinct) batch items having both
        (at most ``contrastive_items`` of them, a random subset)."""
        if self.contrastive is None or self.contrastive_weight == 0:
            return views["graph"].new_zeros(())
        names = self.modality_names
        for view in self.contrastive:
            if view != "graph":
                items = items[getattr(self, f"masks_{names.index(view)}")[items]]
        if len(items) < 2:
            return views["graph"].new_zeros(())
        a, b = self.contrastive
        return info_nce(views[a][items], views[b][items], self.temperature, self.contrastive_items)

    def explain(self, users: Tensor, items: Tensor) -> dict[str, Tensor]:
        """Stage 1's attention pooling over the modality views (``explain_names``: the modalities,
        then ``graph``) that built the pair's pre-trained item (``modality_weights``) and user
        (``user_modality_weights``) embeddings, ``(B, M + 1)`` each, summing to 1 over present views.
        Stage 2 fine-tunes from those embeddings, so these say what the model started from."""
        self.stage1.eval()
        with torch.no_grad():
            item_w = self._pool_weights(self.stage1.item_fusion, *self._stage1_tokens("item", items))
            user_w = self._pool_weights(self.stage1.user_fusion, *self._stage1_tokens("user", users))
        return {"modality_weights": item_w, "user_modality_weights": user_w}

    def _stage1_tokens(self, side: str, index: Tensor) -> tuple[Tensor, Tensor]:
        net = self.stage1
        views = [enc(f) for enc, f in zip(net.encoders, net.features)]  # (I, D) each
        if side == "item":
            graph = mean_propagate(net.item_graph, net.item_id.weight, net.num_graph_layers)  # (I, D)
            tokens, masks = [*views, graph], [*net.masks, torch.ones_like(net.masks[0])]
        else:
            graph = mean_propagate(net.user_graph, net.user_id.weight, net.num_graph_layers)  # (U, D)
            tokens = [*(net.aggregate_reviews(k, x) for k, x in enumerate(views)), graph]
            masks = [*net.user_presence, torch.ones_like(net.user_presence[0])]
        return torch.stack(tokens, 1)[index], torch.stack(masks, 1)[index]  # (B, M+1, D), (B, M+1)

    @staticmethod
    def _pool_weights(fusion: ModalityFusion, tokens: Tensor, mask: Tensor) -> Tensor:
        weights = fusion(tokens, mask).weights
        if isinstance(weights, dict):
            weights = weights.get("pool", next(iter(weights.values())))
        if weights is None or weights.dim() != 2:  # fusors without a per-view weight: equal shares
            weights = mask.to(tokens.dtype) / mask.sum(1, keepdim=True).clamp_min(1)
        return weights

    def on_fit_start(self, task: Any) -> None:
        """Take the task's negative pool (``task.negative_items()``: training items, or all items with
        ``task.negative_pool=all``) for the pre-training negatives."""
        negative_items = getattr(task, "negative_items", None)
        if negative_items is None:
            return
        pool = torch.as_tensor(np.asarray(negative_items(), dtype=np.int64), device=self.seen.device)  # (P,)
        if len(pool) == 0:
            raise ConfigError("MCPTR: the task's negative pool is empty, so pre-training cannot draw negatives")
        self.negative_pool = pool

    def on_epoch_start(self, epoch: int) -> None:
        if epoch == 1 and self.pretrain_epochs > 0:
            self.pretrain()

    def extra_record(self) -> dict[str, Any]:
        if not self.pretrain_history:
            return {}
        return {
            "pretrain": {
                "epochs": len(self.pretrain_history),
                "contrastive": list(self.contrastive or ()),
                "seconds_total": round(sum(h["seconds"] for h in self.pretrain_history), 2),
                "history": self.pretrain_history,
            }
        }

    # ------------------------------------------------------------------------------ stage 2

    def propagate(self) -> tuple[Tensor, Tensor]:
        """The base model's final user (U, D) and item (I, D) embeddings."""
        if self.num_layers == 0:
            return self.user_emb.weight, self.item_emb.weight
        ego = torch.cat([self.user_emb.weight, self.item_emb.weight])  # (U+I, D)
        final = mean_propagate(self.adjacency, ego, self.num_layers)  # (U+I, D)
        return final[: self.num_users], final[self.num_users :]

    def loss(self, batch: PairBatch) -> LossOutput:
        users, items = self.propagate()
        u = users[batch.users]  # (B, D)
        pos = (u * items[batch.pos_items]).sum(-1)  # (B,)
        neg = (u[:, None] * items[batch.neg_items]).sum(-1)  # (B, N)
        ranking = bpr_loss(pos, neg)
        reg = self.reg_weight * l2_penalty(
            self.user_emb(batch.users),
            self.item_emb(batch.pos_items),
            self.item_emb(batch.neg_items),
            batch_size=len(batch),
        )
        return LossOutput(ranking + reg, {"bpr": ranking.detach(), "reg": reg.detach()})

    def score(self, batch: UserBatch) -> Tensor:
        return self.scorer()(batch.users, batch.items)

    def scorer(self) -> Scorer:
        users, items = self.propagate()
        return embedding_scorer(users, items)
