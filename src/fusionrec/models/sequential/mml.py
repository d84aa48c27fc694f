"""MML: Pan, Chen, Tian, Lin, Wang, Hu & Zhao, "Multimodal Meta-Learning for Cold-Start Sequential
Recommendation", CIKM 2022.

Next-item recommendation for new users with short sequences, framed as few-shot learning: one
SASRec meta-learner per item view (IDs, and each modality), meta-trained with MAML over users as
tasks; a generator of ID embeddings for items with few interactions; a score-level fusion layer.

    learner m:  e_i^id = E_i,   e_i^m = W_m x_i^m + b_m;   h_t = SASRec_{φ_m}(e_{s_1}, ..., e_{s_t});
                r_{t,i} = h_t · e_i        (ψ_m: the item view E or W_m, b_m; φ_m: the adapted rest)
    inner loop (user u; support S_u = its earlier next-item targets, query Q_u = the last ⌈ρ n_u⌉):
                φ_u^(0) = φ_m,   φ_u^(k+1) = φ_u^(k) − α ∇_φ L(S_u; φ_u^(k), ψ_m),   k < K
    outer loop: min_{φ_m, ψ_m} mean_u L(Q_u; φ_u^(K), ψ_m)       (first order: ∂φ_u^(K)/∂φ_m := I)
    generator:  p_j^m = P_m x_j^m;  a_ik = softmax_k(w_mᵀ [p_i^m; p_{n_ik}^m]);
                g_i^m = ReLU(p_i^m + Σ_k a_ik p_{n_ik}^m);   g_i = W_o mean_{m ∋ i} g_i^m + b_o
                (n_ik: the K items most cosine-similar to i in modality m); trained with the ID learner
                frozen on L(all slots) after replacing a random share γ of warm rows of E by g;
                at inference the rows of items with at most c training interactions are g_i.
    fusion:     w_{u,m} = softmax_m(MLP(LN(h_u^m)));  z_{u,m,i} = standardise_i(r_{u,m,i}) over the
                items having view m (0 elsewhere);  s_{u,i} = γ_i Σ_m w_{u,m} z_{u,m,i} + β_i,
                trained by cross-entropy over all items on the query targets, learners frozen.

L is the next-item loss of the config (``ce``: softmax over all items). At inference each learner
is adapted to the user's own input sequence (its transitions are the support set) by the same inner
loop, then scores from its last slot; the fusion combines the three.

Stages in one ``fit`` (``schedule="staged"``, set in ``on_epoch_start``): epochs 1..``meta_epochs``
meta-train the learners, the next ``generator_epochs`` train the generator, the remaining epochs the
fusion layer. Each stage's loss reaches only its own parameters (the others are detached), so fit's
single optimiser updates one stage at a time; validation runs every epoch on the full model and
early stopping keeps the best epoch of any stage. Per-epoch losses of every stage are in
``model_extra.stages`` of ``record.json`` (after ``--resume``, the epochs run since; the record's
``history`` keeps every epoch's loss parts). ``schedule="joint"`` (and a model whose ``loss`` is
called outside ``fit``) sums the three gradient-isolated losses, training all stages at once.

Args (``MMLConfig``): hidden_dim 64, num_layers 2, num_heads 2, inner_dim 256, dropout 0.2,
max_length 50, loss ``ce``, norm_first True; modalities ``["all"]`` (every modality of the data
set); adapt ``[position_embedding, norm, layers]`` (everything but the item view); inner_steps 1,
inner_lr 0.1, first_order True, query_ratio 0.5; num_neighbors 5, generate_rate 0.1,
cold_item_max_interactions 0; fusion_hidden_dim 128; schedule ``staged``, meta_epochs 60,
generator_epochs 2. The values that differ from the official code were chosen on validation of
ml-100k's cold-user split (configs/ml100k/mml.yaml).

Note:
    - Learners default to this library's SASRec blocks (pre-norm, ReLU, ``e √D + p``; embeddings
      N(0, 0.02), linear maps PyTorch's default); ``norm_first=False`` gives the official RecBole
      SASRec (post-norm GELU layers on ``LN(e + p)``, every weight N(0, 0.02)). Both learnt at the
      same pace in an 8-epoch validation pilot. Positions count from the most recent item (see
      SASRec); items are embedded without a mask/padding row. Features are standardised and
      divided by √F (unit norm), so a feature view W_m (N(0, 0.02)) starts at the ID embeddings'
      scale and an optimiser step moves it about as much as an ID row: on raw standardised
      features Adam moved every item's view ~√F times further and diverged at the contract test's
      lr (0.05). The generator's output map also starts at the ID embeddings' scale.
    - Inner loop: plain SGD, ``inner_steps`` steps of ``inner_lr`` on the whole support set of each
      user, vectorised over users with ``torch.func`` (``vmap`` of ``grad`` of ``functional_call``);
      the module's parameters are never modified. The official code runs 5 local epochs of SGD (lr
      1e-3) over support mini-batches and copies the adapted weights into the global model before
      the query loss, i.e. first-order MAML; ``first_order=True`` is that, ``False`` differentiates
      through the inner loop. One step of lr 0.1 (at about 2.2x the cost of a plain step per
      learner) replaces 5 of 1e-3, which barely move the weights.
    - Support/query: within one training sequence (a user's last ``max_length`` training items) the
      last ``query_ratio`` share of next-item targets is the query and the rest the support, read
      in one causal pass; with 0.5 a support holds ~25 transitions, like the new users' inputs
      (19-29 items on ml-100k at ``cold_user_max_interactions=30``). The official code builds
      separate support and query sets per user.
    - Meta-test: the official code fine-tunes a copy of each learner on each new user for up to 50
      epochs (SGD, lr 0.3) with early stopping on that user's validation item. Here a new user's
      input sequence is the support of the meta-training inner loop (same steps and lr), run inside
      ``score``; nothing is fitted to validation or test targets.
    - Losses: softmax cross-entropy over all items by default (the official code uses BPR; here
      ``loss=bpr`` / ``bce`` / ``sampled_ce`` use the task's sampled negatives). Dropout 0.2 (the
      official 0.5 learnt more slowly on validation).
    - Content statistics: features are standardised with the means and deviations of the items that
      occur in training, applied to every item (docs/models.md, "What content statistics see").
    - Generator: neighbours are cosine kNN over the features of the items having the modality, items
      absent from training included, both as items that get neighbours and as neighbours: an item's
      content is known when it arrives, and the generator exists for such items (the
      official code loads precomputed dot-product neighbours); the output map W_o is added (the
      official output is the ReLU vector itself, which cannot reach negative coordinates); the
      neighbour score has no bias (it would cancel in the softmax); an item without any modality
      gets b_o. Rows are replaced for warm items only, in the input and output tables at once, with
      the ID learner frozen and run without dropout. Generated rows are used once the generator
      stage has started (``use_generator``, saved with the weights). Feature learners need no
      generator: their item views come from features.
    - Fusion: the gate reads the LayerNorm-ed last-slot state of each learner (the official code
      flattens all L·D last-layer states of the padded sequence). Scores are standardised over
      items with a per-item scale and bias (the official LayerNorm over the item axis); an item
      missing a modality gets the neutral score 0 from that learner. The fusion is trained on warm
      users' query slots after their inner loop, learners without dropout (the official code
      builds its data from the meta-test users).
    - One optimiser (``train.optimizer``, ``train.lr``) serves every stage, so the official per-stage
      learning rates (1e-3 learners, 1e-4 fusion) become one; Adam's per-parameter state keeps the
      stages apart otherwise. The official meta-training runs 10 meta-epochs over task batches;
      here one epoch is one pass over the training users in batches of ``train.batch_size`` tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal, cast

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from fusionrec.data.batches import SequenceBatch
from fusionrec.data.dataset import TRAIN, Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import LossOutput, Recommender, Scorer
from fusionrec.models.sequential.common import SequenceLoss, SequentialConfig, no_user_scorer
from fusionrec.models.sequential.sasrec import SASRecBlock
from fusionrec.models.topk.features import modality_tensors, standardize, training_items
from fusionrec.nn.fusion.base import FusionOutput
from fusionrec.nn.fusion.functional import masked_softmax
from fusionrec.nn.graph import knn_graph
from fusionrec.nn.losses import sampled_item_losses
from fusionrec.nn.sequence import PostNormLayer, SelfAttention
from fusionrec.registry import MODELS

Stage = Literal["meta", "generator", "fusion", "joint"]


class MMLConfig(SequentialConfig):
    name: str = "mml"
    per_target_negatives: ClassVar[bool] = True
    objective: ClassVar[Literal["next", "cloze"]] = "next"
    num_heads: int = Field(2, ge=1)
    inner_dim: int | None = Field(256, gt=0)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    modalities: list[str] = Field(["all"], description="one learner per modality besides the ID learner")
    adapt: list[str] = Field(
        ["position_embedding", "norm", "layers"],
        description="encoder parameters (name prefixes) adapted in the inner loop",
    )
    inner_steps: int = Field(1, ge=0)
    inner_lr: float = Field(0.1, gt=0)
    first_order: bool = True
    query_ratio: float = Field(0.5, gt=0.0, lt=1.0, description="share of a sequence's targets in the query set")
    num_neighbors: int = Field(5, ge=1, description="feature neighbours per item in the generator")
    generate_rate: float = Field(0.1, gt=0.0, le=1.0, description="share of warm ID rows replaced while training it")
    cold_item_max_interactions: int = Field(
        0, ge=0, description="items with at most this many training interactions use generated ID embeddings"
    )
    fusion_hidden_dim: int = Field(128, gt=0)
    norm_first: bool = Field(True, description="SASRec's pre-norm blocks; False: RecBole's post-norm (official code)")
    schedule: Literal["staged", "joint"] = "staged"
    meta_epochs: int = Field(60, ge=0)
    generator_epochs: int = Field(2, ge=0)

    @model_validator(mode="after")
    def _adapt_something(self) -> MMLConfig:
        if not self.adapt:
            raise ValueError("adapt must name at least one encoder parameter group, e.g. ['layers']")
        return self


def slot_losses(hidden: Tensor, table: Tensor, targets: Tensor, negatives: Tensor, kind: str) -> Tensor:
    """Next-item loss of every slot (0 where ``targets < 0``), without data-dependent shapes (runs
    under ``vmap``). ``negatives`` may have N = 0 for ``ce``.

    Shapes: hidden (..., L, D), table (I, D), targets (..., L), negatives (..., L, N) -> (..., L).
    """
    safe = targets.clamp_min(0)
    pos = (hidden * table[safe]).sum(-1)  # (..., L)
    if kind == "ce":
        per_slot = torch.logsumexp(hidden @ table.T, -1) - pos
    else:
        per_slot = sampled_item_losses(pos, (hidden.unsqueeze(-2) * table[negatives]).sum(-1), kind)  # neg (..., L, N)
    return per_slot * (targets >= 0).to(per_slot.dtype)


def slot_loss(hidden: Tensor, table: Tensor, targets: Tensor, negatives: Tensor, kind: str) -> Tensor:
    """Mean of :func:`slot_losses` over the slots with a target; 0 when there is none. -> ()."""
    count = (targets >= 0).sum().clamp_min(1).to(hidden.dtype)
    return slot_losses(hidden, table, targets, negatives, kind).sum() / count


def standardize_scores(scores: Tensor, present: Tensor, eps: float = 1e-6) -> Tensor:
    """Zero-mean, unit-variance scores over the items each learner can score; 0 for the others.

    Shapes: scores (T, M, I), present (M, I) bool -> (T, M, I).
    """
    weight = present.to(scores.dtype)  # (M, I)
    count = weight.sum(-1).clamp_min(1.0)  # (M,)
    mean = (scores * weight).sum(-1, keepdim=True) / count[:, None]  # (T, M, 1)
    var = (((scores - mean) ** 2) * weight).sum(-1, keepdim=True) / count[:, None]
    return (scores - mean) / torch.sqrt(var + eps) * weight


class SequenceEncoder(nn.Module):
    """The adaptable part of a learner: position embedding, causal blocks and the final LayerNorm.

    ``norm_first``: SASRec's pre-norm blocks on ``e √D + p`` (this library's SASRec); else RecBole's
    post-norm GELU layers on ``LN(e + p)`` (the official MML code).

    Shapes: x (B, L, D) item embeddings, positions (B, L) (-1 padding), mask (B, L) -> (B, L, D).
    """

    def __init__(
        self,
        dim: int,
        num_layers: int,
        num_heads: int,
        inner_dim: int,
        dropout: float,
        attention_dropout: float,
        max_length: int,
        norm_first: bool = True,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.scale = dim**0.5 if norm_first else 1.0
        self.position_embedding = nn.Embedding(max_length, dim)
        self.dropout = nn.Dropout(dropout)
        if norm_first:
            self.layers = nn.ModuleList(
                SASRecBlock(dim, num_heads, inner_dim, dropout, attention_dropout) for _ in range(num_layers)
            )
        else:
            self.layers = nn.ModuleList(
                PostNormLayer(
                    SelfAttention(dim, num_heads, attention_dropout, causal=True), dim, inner_dim, dropout, "gelu"
                )
                for _ in range(num_layers)
            )
        self.norm = nn.LayerNorm(dim)  # the final norm (pre-norm) or the embedding norm (post-norm)

    def forward(self, x: Tensor, positions: Tensor, mask: Tensor) -> Tensor:
        x = x * self.scale + self.position_embedding(positions.clamp_min(0))  # (B, L, D)
        if not self.norm_first:
            x = self.norm(x)
        x = self.dropout(x) * mask[..., None].to(x.dtype)
        for layer in self.layers:
            x = layer(x, mask)[0] if self.norm_first else layer(x, None, mask)[0]
        return self.norm(x) if self.norm_first else x


class MetaLearner(nn.Module):
    """One SASRec meta-learner; its item view is an ID table or a linear map of one modality.

    Shapes: features (I, F) or None -> item_table() (I, D).
    """

    item_embedding: nn.Embedding | None
    item_projection: nn.Linear | None
    features: Tensor  # buffer (I, F), only with an item projection

    def __init__(self, num_items: int, dim: int, encoder: SequenceEncoder, features: Tensor | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        if features is None:
            self.item_embedding = nn.Embedding(num_items, dim)
            self.item_projection = None
        else:
            self.item_embedding = None
            self.register_buffer("features", features, persistent=False)
            self.item_projection = nn.Linear(features.shape[1], dim)

    def item_table(self) -> Tensor:
        if self.item_projection is None:
            assert self.item_embedding is not None  # the ID view: built without features
            return self.item_embedding.weight  # (I, D)
        return self.item_projection(self.features)  # (I, D)


class ItemEmbeddingGenerator(nn.Module):
    """ID embeddings from modality features and those of each item's feature neighbours.

    Shapes: features[k] (I, F_k), present (I, M) bool, neighbors[k] (I, K) (-1 none) -> forward() (I, D).
    """

    present: Tensor  # buffer (I, M)

    def __init__(self, features: list[Tensor], present: Tensor, neighbors: list[Tensor], dim: int) -> None:
        super().__init__()
        self.num_modalities = len(features)
        for k, (f, n) in enumerate(zip(features, neighbors)):
            self.register_buffer(f"features_{k}", f, persistent=False)
            self.register_buffer(f"neighbors_{k}", n, persistent=False)
        self.register_buffer("present", present, persistent=False)
        self.projections = nn.ModuleList(nn.Linear(f.shape[1], dim) for f in features)
        self.attention = nn.ModuleList(nn.Linear(2 * dim, 1, bias=False) for _ in features)  # a bias cancels
        self.output = nn.Linear(dim, dim)

    def forward(self) -> Tensor:
        views = []
        for k in range(self.num_modalities):
            p = self.projections[k](getattr(self, f"features_{k}"))  # (I, D)
            index = getattr(self, f"neighbors_{k}")  # (I, K)
            neighbours = p[index.clamp_min(0)]  # (I, K, D)
            pair = torch.cat([p[:, None].expand_as(neighbours), neighbours], -1)  # (I, K, 2D)
            alpha = masked_softmax(self.attention[k](pair).squeeze(-1), index >= 0)  # (I, K)
            views.append(torch.relu(p + (alpha[..., None] * neighbours).sum(1)))  # (I, D)
        weight = self.present.to(views[0].dtype)  # (I, M)
        mean = (torch.stack(views, 1) * weight[..., None]).sum(1) / weight.sum(1, keepdim=True).clamp_min(1.0)
        return self.output(mean)  # (I, D)


class ScoreFusion(nn.Module):
    """Adaptive score-level fusion: per-sample softmax weights over learners from their states.

    Shapes: states (T, M, D), scores (T, M, I), present (M, I) -> out (T, I), weights (T, M).
    """

    def __init__(self, dim: int, num_items: int, hidden_dim: int) -> None:
        super().__init__()
        self.state_norm = nn.LayerNorm(dim)
        self.gate = nn.Sequential(nn.Linear(dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 1))
        self.item_scale = nn.Parameter(torch.ones(num_items))
        self.item_bias = nn.Parameter(torch.zeros(num_items))

    def forward(self, states: Tensor, scores: Tensor, present: Tensor) -> FusionOutput:
        weights = torch.softmax(self.gate(self.state_norm(states)).squeeze(-1), -1)  # (T, M)
        z = standardize_scores(scores, present)  # (T, M, I)
        out = (weights[..., None] * z).sum(1) * self.item_scale + self.item_bias  # (T, I)
        return FusionOutput(out, weights)


def support_query(targets: Tensor, ratio: float) -> tuple[Tensor, Tensor]:
    """Split each left-padded row of next-item targets: the last ⌈ratio·n⌉ (at least 1) are the query.

    Shapes: targets (B, L) (-1 none) -> support targets (B, L), query targets (B, L) (-1 elsewhere).
    """
    valid = targets >= 0
    n = valid.sum(1, keepdim=True)  # (B, 1)
    q = torch.ceil(n * ratio).clamp(min=1).minimum(n)  # (B, 1)
    slot = torch.arange(targets.shape[1], device=targets.device)
    query = valid & (slot >= targets.shape[1] - q)
    return targets.masked_fill(query | ~valid, -1), targets.masked_fill(~query, -1)


def next_targets(items: Tensor) -> Tensor:
    """The next-item target of every real slot of a left-padded input sequence (the last slot and
    padding have none, -1). (B, L) -> (B, L)."""
    following = torch.cat([items[:, 1:], items.new_full((items.shape[0], 1), -1)], 1)
    return following.masked_fill(items < 0, -1)


@MODELS.register(
    "mml",
    config=MMLConfig,
    task="sequential",
    paper="Pan et al., CIKM 2022",
    modalities="item ids + any modalities (default all: e.g. text and genre)",
)
class MML(Recommender):
    """Shapes:
    learners: M = 1 + number of modalities; item tables (I, D)
    loss: SequenceBatch items/targets (B, L) (negatives (B, L, N) for sampled losses) -> scalar
    score: SequenceBatch items (B, L), candidates (C,) or None -> (B, C) or (B, I)
    """

    present: Tensor  # buffer (M, I)
    cold_items: Tensor  # buffer (I,)
    use_generator: Tensor  # buffer, 0-dim bool

    def __init__(
        self,
        num_items: int,
        features: dict[str, Tensor],
        masks: dict[str, Tensor],
        neighbors: dict[str, Tensor],
        train_counts: Tensor,
        hidden_dim: int = 64,
        num_layers: int = 2,
        num_heads: int = 2,
        inner_dim: int | None = 256,
        dropout: float = 0.2,
        attention_dropout: float | None = None,
        max_length: int = 50,
        loss: SequenceLoss = "ce",
        adapt: tuple[str, ...] = ("position_embedding", "norm", "layers"),
        inner_steps: int = 1,
        inner_lr: float = 0.1,
        first_order: bool = True,
        query_ratio: float = 0.5,
        generate_rate: float = 0.1,
        cold_item_max_interactions: int = 0,
        fusion_hidden_dim: int = 128,
        norm_first: bool = True,
        schedule: str = "staged",
        meta_epochs: int = 60,
        generator_epochs: int = 2,
    ) -> None:
        super().__init__()
        if not features:
            raise ConfigError("MML needs at least one modality besides item ids (model.modalities)")
        self.num_items = num_items
        self.loss_kind = loss
        self.names = ("id", *features)

        def encoder() -> SequenceEncoder:
            return SequenceEncoder(
                hidden_dim,
                num_layers,
                num_heads,
                inner_dim or 4 * hidden_dim,
                dropout,
                dropout if attention_dropout is None else attention_dropout,
                max_length,
                norm_first,
            )

        self.learners = nn.ModuleDict({"id": MetaLearner(num_items, hidden_dim, encoder())})
        for name, f in features.items():
            self.learners[name] = MetaLearner(num_items, hidden_dim, encoder(), f)
        names = [n for n, _ in self.learner("id").encoder.named_parameters()]
        unknown = [a for a in adapt if not any(n == a or n.startswith(a + ".") for n in names)]
        if unknown:
            groups = sorted({n.split(".")[0] for n in names} | {".".join(n.split(".")[:2]) for n in names})
            raise ConfigError(f"MML adapt names {unknown} match no encoder parameter; choose from {groups}")
        self.adapted = tuple(n for n in names if any(n == a or n.startswith(a + ".") for a in adapt))
        present = torch.stack([masks[n] for n in features], 1)  # (I, M - 1)
        self.generator = ItemEmbeddingGenerator(list(features.values()), present, list(neighbors.values()), hidden_dim)
        self.fusion = ScoreFusion(hidden_dim, num_items, fusion_hidden_dim)
        self.register_buffer(
            "present", torch.cat([torch.ones(1, num_items, dtype=torch.bool), present.T]), persistent=False
        )  # (M, I)
        self.register_buffer("cold_items", train_counts <= cold_item_max_interactions, persistent=False)  # (I,)
        self.register_buffer("use_generator", torch.tensor(False))  # set once the generator has trained
        self.inner_steps, self.inner_lr, self.first_order = inner_steps, inner_lr, first_order
        self.query_ratio, self.generate_rate = query_ratio, generate_rate
        self.schedule, self.meta_epochs, self.generator_epochs = schedule, meta_epochs, generator_epochs
        self.stage: Stage = "joint"  # until fit's first on_epoch_start
        self.stage_history: list[dict[str, Any]] = []
        self._epoch: dict[str, Any] | None = None
        for module in self.modules():  # embeddings N(0, 0.02); RecBole also initialises linear maps so
            if isinstance(module, nn.Embedding) or (isinstance(module, nn.Linear) and not norm_first):
                nn.init.normal_(module.weight, std=0.02)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
        views = [cast(nn.Linear, l.item_projection) for l in self.learners.values() if l.item_projection is not None]
        for view in [*views, self.generator.output]:  # item views start on the scale of the ID embeddings
            nn.init.normal_(view.weight, std=0.02 if view in views else 0.02 / view.in_features**0.5)
            nn.init.zeros_(view.bias)

    @classmethod
    def from_dataset(cls, config: MMLConfig, dataset: Dataset) -> MML:
        names = [n for n in dataset.modalities] if config.modalities == ["all"] else list(config.modalities)
        features, masks = modality_tensors(dataset, names, "MML")
        fit = training_items(dataset)  # content statistics from the training items only
        features = {n: standardize(f, masks[n], fit) / f.shape[1] ** 0.5 for n, f in features.items()}  # unit norm
        neighbors = {n: knn_index(f, masks[n], config.num_neighbors) for n, f in features.items()}
        inter = dataset.interactions
        items = inter["item"].to_numpy()[inter["split"].to_numpy() == TRAIN]
        counts = torch.from_numpy(np.bincount(items, minlength=dataset.num_items).astype(np.int64))
        return cls(
            dataset.num_items,
            features,
            masks,
            neighbors,
            counts,
            config.hidden_dim,
            config.num_layers,
            config.num_heads,
            config.inner_dim,
            config.dropout,
            config.attention_dropout,
            config.max_length,
            config.loss,
            tuple(config.adapt),
            config.inner_steps,
            config.inner_lr,
            config.first_order,
            config.query_ratio,
            config.generate_rate,
            config.cold_item_max_interactions,
            config.fusion_hidden_dim,
            config.norm_first,
            config.schedule,
            config.meta_epochs,
            config.generator_epochs,
        )

    # ------------------------------------------------------------------------------ learners

    def learner(self, name: str) -> MetaLearner:
        """Learner ``name`` (``self.learners[name]``, typed)."""
        return cast(MetaLearner, self.learners[name])

    def item_table(self, name: str) -> Tensor:
        """Learner ``name``'s item view (I, D); the ID view takes generated rows for cold items."""
        table = self.learner(name).item_table()
        if name == "id" and bool(self.use_generator) and bool(self.cold_items.any()):
            table = torch.where(self.cold_items[:, None], self.generator(), table)
        return table

    def inner_loop(self, name: str, batch: SequenceBatch, support: Tensor, table: Tensor) -> dict[str, Tensor]:
        """Learner ``name``'s encoder parameters adapted to each row's ``support`` targets.

        Returns every encoder parameter by name: the ``adapt`` ones per row, (B, ...) (unbatched when
        ``inner_steps`` is 0), the others the module's own tensors. The module is never modified.
        Differentiable w.r.t. the learner (second order unless ``first_order``) when grad is enabled.
        Shapes: support (B, L) targets (-1 none), table (I, D).
        """
        encoder = self.learner(name).encoder
        params: dict[str, Tensor] = dict(encoder.named_parameters())
        if self.inner_steps == 0:
            return params
        shared = {n: params[n] for n in self.adapted}
        negatives = batch.negatives if batch.negatives is not None else support.new_zeros(*support.shape, 0)
        x = table[batch.items.clamp_min(0)] * batch.mask[..., None].to(table.dtype)  # (B, L, D)
        steps, lr, first_order, kind = self.inner_steps, self.inner_lr, self.first_order, self.loss_kind

        def one_user(
            x: Tensor, positions: Tensor, mask: Tensor, support: Tensor, negatives: Tensor
        ) -> dict[str, Tensor]:
            def support_loss(adapted: dict[str, Tensor]) -> Tensor:
                hidden = functional_call(encoder, adapted, (x[None], positions[None], mask[None]))[0]  # (L, D)
                return slot_loss(hidden, table, support, negatives, kind)

            adapted = shared
            for _ in range(steps):
                grads = grad(support_loss)(adapted)
                adapted = {n: p - lr * (grads[n].detach() if first_order else grads[n]) for n, p in adapted.items()}
            return adapted

        adapted = vmap(one_user, randomness="different")(x, batch.positions, batch.mask, support, negatives)
        return {**params, **adapted}

    def adapted_hidden(self, name: str, batch: SequenceBatch, support: Tensor, table: Tensor) -> Tensor:
        """States of every slot after the inner loop on each row's ``support``. -> (B, L, D)."""
        encoder = self.learner(name).encoder
        params = self.inner_loop(name, batch, support, table)
        x = table[batch.items.clamp_min(0)] * batch.mask[..., None].to(table.dtype)  # (B, L, D)
        if self.inner_steps == 0:
            return encoder(x, batch.positions, batch.mask)
        dims = {n: 0 if n in self.adapted else None for n in params}

        def one_user(params: dict[str, Tensor], x: Tensor, positions: Tensor, mask: Tensor) -> Tensor:
            return functional_call(encoder, params, (x[None], positions[None], mask[None]))[0]  # (L, D)

        return vmap(one_user, in_dims=(dims, 0, 0, 0), randomness="different")(params, x, batch.positions, batch.mask)

    # ------------------------------------------------------------------------------ stages

    def meta_loss(self, batch: SequenceBatch) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """Query loss of every learner after its inner loop; also the query states for the fusion."""
        assert batch.targets is not None, "MML.meta_loss needs a training batch with targets"
        support, query = support_query(batch.targets, self.query_ratio)
        negatives = batch.negatives if batch.negatives is not None else query.new_zeros(*query.shape, 0)
        where = query >= 0  # (B, L): the query slots, scored alone (not every slot)
        per_user = where.sum(1, keepdim=True).expand_as(where)[where].to(torch.float32)  # (T,) query size of its user
        total: Tensor | float = 0.0
        parts: dict[str, Tensor] = {}
        states: dict[str, Tensor] = {}
        for name in self.names:
            table = self.learner(name).item_table()
            hidden = self.adapted_hidden(name, batch, support, table)  # (B, L, D)
            losses = slot_losses(hidden[where], table, query[where], negatives[where], self.loss_kind)  # (T,)
            loss = (losses / per_user).sum() / len(query)  # mean over users of each user's mean
            total = total + loss
            parts[f"meta_{name}"] = loss.detach()
            states[name] = hidden.detach()
        return cast(Tensor, total), parts, states  # a Tensor: names is never empty

    def generator_loss(self, batch: SequenceBatch) -> Tensor:
        """Next-item loss of the frozen ID learner with a random share of warm rows generated."""
        assert batch.targets is not None, "MML.generator_loss needs a training batch with targets"
        learner = self.learner("id")
        frozen = {n: p.detach() for n, p in learner.encoder.named_parameters()}
        table = learner.item_table().detach()
        replace = (torch.rand(self.num_items, device=table.device) < self.generate_rate) & ~self.cold_items
        table = torch.where(replace[:, None], self.generator(), table)  # (I, D)
        x = table[batch.items.clamp_min(0)] * batch.mask[..., None].to(table.dtype)
        with frozen_mode(self.learners):
            hidden = functional_call(learner.encoder, frozen, (x, batch.positions, batch.mask))  # (B, L, D)
        negatives = batch.negatives if batch.negatives is not None else batch.targets.new_zeros(*batch.targets.shape, 0)
        return slot_loss(hidden, table, batch.targets, negatives, self.loss_kind)

    def fusion_loss(self, batch: SequenceBatch, states: dict[str, Tensor] | None = None) -> Tensor:
        """Cross-entropy of the fused scores on the query slots, learners adapted and frozen."""
        assert batch.targets is not None, "MML.fusion_loss needs a training batch with targets"
        support, query = support_query(batch.targets, self.query_ratio)
        where = query >= 0  # (B, L)
        tables = {n: self.item_table(n).detach() for n in self.names}
        if states is None:  # the frozen learners run as at inference (no dropout)
            with torch.no_grad(), frozen_mode(self.learners):
                states = {n: self.adapted_hidden(n, batch, support, tables[n]) for n in self.names}
        h = torch.stack([states[n][where] for n in self.names], 1)  # (T, M, D)
        scores = torch.stack([h[:, m] @ tables[n].T for m, n in enumerate(self.names)], 1)  # (T, M, I)
        fused = self.fusion(h, scores, self.present).out  # (T, I)
        return nn.functional.cross_entropy(fused, query[where])

    def loss(self, batch: SequenceBatch) -> LossOutput:
        assert batch.targets is not None, "MML.loss needs a training batch with targets"
        stage = self.stage
        parts: dict[str, Tensor] = {}
        total = batch.items.new_zeros((), dtype=torch.float32)
        states = None
        if stage in ("meta", "joint"):
            meta, parts, states = self.meta_loss(batch)
            total = total + meta
        if stage in ("generator", "joint"):
            gen = self.generator_loss(batch)
            total, parts["generator"] = total + gen, gen.detach()
        if stage in ("fusion", "joint"):
            fusion = self.fusion_loss(batch, states)
            total, parts["fusion"] = total + fusion, fusion.detach()
        if self.training and self._epoch is not None:
            self._epoch["steps"] += 1
            for key, value in (("loss", total.detach()), *parts.items()):
                self._epoch[key] = self._epoch.get(key, 0.0) + float(value)
        return LossOutput(total, parts)

    def stage_of(self, epoch: int) -> Stage:
        if self.schedule == "joint":
            return "joint"
        if epoch <= self.meta_epochs:
            return "meta"
        return "generator" if epoch <= self.meta_epochs + self.generator_epochs else "fusion"

    def on_epoch_start(self, epoch: int) -> None:
        if self._epoch is not None and self._epoch["steps"]:
            self.stage_history.append(epoch_entry(self._epoch))
        self.stage = self.stage_of(epoch)
        if self.stage != "meta":
            self.use_generator.fill_(True)
        self._epoch = {"epoch": epoch, "stage": self.stage, "steps": 0}

    def extra_record(self) -> dict[str, Any]:
        """Per-stage, per-epoch mean training losses: ``{"schedule", "stages": {stage: {"epochs":
        [first, last], "history": [...]}}}`` (the epoch in progress included)."""
        entries = list(self.stage_history)
        if self._epoch is not None and self._epoch["steps"]:
            entries.append(epoch_entry(self._epoch))
        if not entries:
            return {}
        stages: dict[str, Any] = {}
        for entry in entries:
            stage = stages.setdefault(entry["stage"], {"epochs": [entry["epoch"], entry["epoch"]], "history": []})
            stage["epochs"][1] = entry["epoch"]
            stage["history"].append({k: v for k, v in entry.items() if k != "stage"})
        return {"schedule": self.schedule, "stages": stages}

    # ------------------------------------------------------------------------------ scoring

    def fused(self, batch: SequenceBatch) -> FusionOutput:
        """Fused scores over all items (B, I) and the learner weights (B, M) of each input sequence."""
        support = next_targets(batch.items)
        states, scores = [], []
        for name in self.names:
            table = self.item_table(name)
            h = self.adapted_hidden(name, batch, support, table)[:, -1]  # (B, D)
            states.append(h)
            scores.append(h @ table.T)  # (B, I)
        return self.fusion(torch.stack(states, 1), torch.stack(scores, 1), self.present)

    def score(self, batch: SequenceBatch) -> Tensor:
        out = self.fused(batch).out  # (B, I)
        return out if batch.candidates is None else out[:, batch.candidates]

    def scorer(self) -> Scorer:
        return no_user_scorer("mml")

    def explain(self, batch: SequenceBatch, items: Tensor | None = None) -> dict[str, Tensor]:  # type: ignore[override]  # sequences, not user ids
        """``fusion`` (B, M): each learner's weight (in ``names`` order) for the sequences in ``batch``."""
        with torch.no_grad():
            return {"fusion": cast(Tensor, self.fused(batch).weights)}  # ScoreFusion's weights: a Tensor


@contextmanager
def frozen_mode(module: nn.Module) -> Iterator[None]:
    """Run ``module`` in eval mode (no dropout) for a block, then restore its mode."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def epoch_entry(totals: dict[str, Any]) -> dict[str, Any]:
    """An epoch's summed losses as means over its steps."""
    steps = totals["steps"]
    return {k: (v / steps if isinstance(v, float) else v) for k, v in totals.items()}


def knn_index(features: Tensor, mask: Tensor, k: int) -> Tensor:
    """The ``k`` most cosine-similar items of each item among those having the modality, -1 padded.

    Shapes: features (I, F), mask (I,) -> (I, k) int64.
    """
    graph = knn_graph(features, k, mask=mask)
    index = torch.full((features.shape[0], k), -1, dtype=torch.long)
    counts = np.diff(graph.indptr)
    rows = np.repeat(np.arange(features.shape[0]), counts)
    slots = np.arange(graph.nnz) - np.repeat(graph.indptr[:-1], counts)
    index[torch.from_numpy(rows), torch.from_numpy(slots)] = torch.from_numpy(graph.indices.astype(np.int64))
    return index
