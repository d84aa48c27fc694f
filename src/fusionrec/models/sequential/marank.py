"""MARank: Yu, Zhang, Liang & Zhang, "Multi-Order Attentive Ranking Model for Sequential
Recommendation", AAAI 2019.

A user u and the L items before the one to predict (the window, most recent last) are read at
several orders of two residual stacks; attention pools the window at each order, a query-free
attention pools the orders, and a residual MLP models the union of the window:

    individual:  α_l = softmax_l σ(h_0ᵀ tanh(W e_l + V p_u + b)),   o_0 = Σ_l α_l e_l + e_L
    order k=1..K: e^k_l = ReLU(W_k e^{k-1}_l + b_k + e^{k-1}_l),  u^k = ReLU(V_k u^{k-1} + c_k + u^{k-1}),
                 e^0 = e, u^0 = p_u;   o_k = Σ_l softmax_l σ(h_kᵀ tanh(W'_k e^k_l + V'_k u^k + b'_k)) e^k_l
    orders:      β_k = softmax_k σ(gᵀ tanh(G o_k + d)),   z = Σ_{k=0..K} β_k o_k   (Σ_k β_k = 1)
    union:       a^0 = z,  a^m = ReLU(U_m a^{m-1} + f_m + a^{m-1}) (m = 1..M),  s = a^M + z
    score:       ŷ_uj = ⟨p_u, q_j⟩ + ⟨s, e_j⟩
    loss:        -log σ(ŷ_ui - ŷ_uj)
                 + λ (‖p_u‖² + ‖q_i‖² + ‖e_i‖² + ‖q_j‖² + ‖e_j‖² + ‖z‖² + ‖a^M‖²)   (i next item, j negative)

p_u: user table P; q_j: item table Q (the long-term, matrix-factorisation part); e_j: item-context
table E (the window and the short-term part of the score). The window attention and the K orders
are the shared leaf :class:`~fusionrec.nn.fusion.MultiOrderAttention`.

Args (``MARankConfig``): hidden_dim 128 (D), num_layers 2 (K, the code's ``att_layers``),
num_union_layers 2 (M), window 5 (L), dropout 0.5 (on the input of every linear layer), reg_weight
2e-3 (λ), loss ``bpr`` with num_negatives 1 uniform negatives (the task draws them among items the
user never interacted with in training), max_length 200 (training transitions per user and epoch;
see Note). D and λ were chosen on ml-100k validation NDCG@10 with train.lr 5e-3
(``configs/ml100k/marank.yaml``); the official code's defaults are D 64, λ 5e-4, L 6.

Training triples: the sequential task's ``next`` batches give, per user, the training sequence
without its last item (its most recent ``max_length`` items, left-padded) and at every slot t the
item that follows it. Every slot with a target becomes one triple (user, window = the L items up
to and including slot t, target) with the task's sampled negatives for that slot; the windows of
a sequence's first L - 1 slots are partly padding, which the attention masks (so every transition
of the kept items is trained, as in the official code). The item side of the shared leaf runs once
per slot and its windows are gathered from it (``MultiOrderAttention.order_outputs``), which makes
an epoch 1.6x faster than running it once per window (ml-100k, one thread: 16.3 -> 10.4 s,
peak RSS 1.93 -> 1.64 GB, with another job on the second core). Scoring uses the last L items
of the input sequence and ``batch.users``.

Note:
    - A user unknown to the data (user index -1: a history sent to the server) gets a zero user
      vector, so only the items of the history drive the attention; the paper has no such user.
    - Short windows (early training slots, users with fewer than L items) are left-padded and the
      padding masked in every attention; the official code instead repeats the most recent item
      to fill the window, which gives that item extra attention weight. Masking makes a score
      independent of how much padding a batch adds.
    - In training, the item-side dropout masks are drawn once per sequence slot and shared by
      the up to L windows that contain the slot (the official code draws them per window).
    - Dropout is active in training only. In the official TensorFlow code the dropout flag is a
      Python value read when the graph is built, so dropout (0.5) stays on when it evaluates.
    - The residual stacks of the shared leaf add the dropped-out input (``ReLU(W drop(x) + b +
      drop(x))``); the official code adds the input before dropout. The union-level MLP here
      adds the input before dropout, as in the official code.
    - One loss and one optimiser (the trainer's Adam, default β, ε) for all parameters; the official
      code steps embeddings and network weights separately (Adam β2 0.99, ε 1e-4; gradient
      clipping at 5 on the network weights only, ``train.grad_clip`` clips all here).
    - Training triples are one pass over each user's last ``max_length`` training transitions per
      epoch, batched by user (``train.batch_size`` users, all their slots); the official code
      shuffles all transitions into batches of 1024 triples.
    - Initialisation: embeddings normal(0, 0.1) (the official code uses 0.01, biases normal(0, 1));
      linear layers keep PyTorch's defaults.
    - The L2 term is averaged over the triples of a batch (the official code sums it per triple,
      scaled like the BPR term, so the coefficient means the same); with several negatives per
      triple their norms are averaged. Only uniform negatives: the official popularity (alias)
      and adaptive samplers are not ported.
    - The settings of ``SequentialConfig`` that MARank has no use for (num_heads, inner_dim,
      attention_dropout) are refused rather than ignored.
    - ``model.loss`` may also be ``ce`` / ``bce`` / ``sampled_ce`` (the score is a dot product of
      ``[p_u; s]`` with ``[q_j; e_j]``); the paper's objective is ``bpr``.
"""

from __future__ import annotations

from typing import ClassVar, Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from fusionrec.data.batches import PAD_ITEM, SequenceBatch
from fusionrec.data.dataset import Dataset
from fusionrec.models.base import LossOutput, Recommender, Scorer
from fusionrec.models.sequential.common import SequenceLoss, SequentialConfig, no_user_scorer
from fusionrec.nn.fusion.multi_order_attention import MultiOrderAttention
from fusionrec.nn.losses import item_prediction_loss
from fusionrec.nn.sequence import item_scores
from fusionrec.registry import MODELS


class MARankConfig(SequentialConfig):
    """MARank's settings; ``num_layers`` is the number of residual orders K."""

    name: str = "marank"
    per_target_negatives: ClassVar[bool] = True
    objective: ClassVar[Literal["next", "cloze"]] = "next"
    hidden_dim: int = Field(128, gt=0)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    max_length: int = Field(200, ge=2, description="training transitions per user and epoch (most recent)")
    loss: SequenceLoss = "bpr"
    window: int = Field(5, ge=1, description="L: items before the target that the model reads")
    num_union_layers: int = Field(2, ge=1, description="M: layers of the union-level residual MLP")
    reg_weight: float = Field(2e-3, ge=0.0, description="λ: L2 on the triple's embeddings and z, a")

    @model_validator(mode="after")
    def _no_transformer_settings(self) -> MARankConfig:
        unused = [k for k in ("inner_dim", "attention_dropout") if getattr(self, k) is not None]
        if self.num_heads != 1:
            unused.append("num_heads")
        if unused:
            raise ValueError(f"MARank has no multi-head attention or feed-forward; leave {', '.join(unused)} unset")
        return self


class MARankState(NamedTuple):
    """What :meth:`MARank.represent` computes for a batch of (user, window) pairs.

    Shapes: user (B, D) p_u; union (B, D) s; z (B, D); residual (B, D) a^M;
    item_weights (B, K + 1, L) window attention per order; order_weights (B, K + 1).
    """

    user: Tensor
    union: Tensor
    z: Tensor
    residual: Tensor
    item_weights: Tensor
    order_weights: Tensor


def last_window(items: Tensor, length: int) -> Tensor:
    """The last ``length`` tokens of left-padded sequences, padded on the left if shorter. (B, L) -> (B, length)."""
    if items.shape[1] >= length:
        return items[:, -length:]
    return F.pad(items, (length - items.shape[1], 0), value=PAD_ITEM)


@MODELS.register(
    "marank", config=MARankConfig, task="sequential", paper="Yu et al., AAAI 2019", modalities="none (item ids)"
)
class MARank(Recommender):
    """Shapes:
    loss: SequenceBatch users (B,), items/targets (B, L), negatives (B, L, N) -> scalar
    score: SequenceBatch users (B,), items (B, L), candidates (C,) or None -> (B, C) or (B, I)
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        hidden_dim: int = 128,
        num_layers: int = 2,
        num_union_layers: int = 2,
        window: int = 5,
        dropout: float = 0.5,
        reg_weight: float = 2e-3,
        loss: SequenceLoss = "bpr",
    ) -> None:
        super().__init__()
        self.num_items = num_items
        self.window = window
        self.reg_weight = reg_weight
        self.loss_kind = loss
        self.user_embedding = nn.Embedding(num_users, hidden_dim)  # P
        self.item_latent = nn.Embedding(num_items, hidden_dim)  # Q
        self.item_context = nn.Embedding(num_items + 1, hidden_dim, padding_idx=num_items)  # E, row I = padding
        self.multi_order = MultiOrderAttention(hidden_dim, num_orders=num_layers, dropout=dropout)
        self.union_layers = nn.ModuleList(nn.Linear(hidden_dim, hidden_dim) for _ in range(num_union_layers))
        self.dropout = nn.Dropout(dropout)
        for emb in (self.user_embedding, self.item_latent, self.item_context):
            nn.init.normal_(emb.weight, std=0.1)
        with torch.no_grad():
            self.item_context.weight[num_items].zero_()

    @classmethod
    def from_dataset(cls, config: MARankConfig, dataset: Dataset) -> MARank:
        return cls(
            dataset.num_users,
            dataset.num_items,
            config.hidden_dim,
            config.num_layers,
            config.num_union_layers,
            config.window,
            config.dropout,
            config.reg_weight,
            config.loss,
        )

    @property
    def item_weight(self) -> Tensor:
        """``[q_j; e_j]`` of every item, so that ``ŷ_uj = [p_u; s] · [q_j; e_j]``. -> (I, 2D)."""
        return torch.cat([self.item_latent.weight, self.item_context.weight[: self.num_items]], dim=1)

    def item_rows(self, items: Tensor) -> Tensor:
        """``[q_j; e_j]`` of ``items`` through the embedding lookups (sparse gradients possible). (...) -> (..., 2D)."""
        return torch.cat([self.item_latent(items), self.item_context(items)], dim=-1)

    def lookup_embeddings(self) -> tuple[nn.Embedding, ...]:
        """With a sampled loss (``bpr`` by default) the user and item tables are read row by row only."""
        return () if self.loss_kind == "ce" else (self.user_embedding, self.item_latent, self.item_context)

    def represent(self, users: Tensor, items: Tensor, ends: Tensor | None = None) -> MARankState:
        """Encode the (user, window of the last L items) pair ending at every slot where ``ends`` is
        set (default: the last slot of each row).

        Shapes: users (B,), items (B, S) tokens (-1 = padding), ends (B, S) bool with T set
        -> MARankState of T rows, in row-major order of ``ends``.
        """
        mask = items != PAD_ITEM  # (B, S)
        x = self.item_context(items.masked_fill(~mask, self.num_items))  # (B, S, D)
        known = (users >= 0).unsqueeze(-1)  # -1: a user unknown to the data (a history sent to the server)
        p = self.user_embedding(users.clamp(min=0)) * known  # (B, D); an unknown user's vector is zero
        fused = self.multi_order(x, p, mask, window=self.window, ends=ends)
        if ends is not None:
            p = p[ends.nonzero(as_tuple=True)[0]]  # (T, D)
        z = fused.out  # (T, D)
        a = z
        for layer in self.union_layers:
            a = torch.relu(layer(self.dropout(a)) + a)  # (T, D)
        return MARankState(p, a + z, z, a, fused.weights["items"], fused.weights["orders"])

    def loss(self, batch: SequenceBatch) -> LossOutput:
        assert batch.targets is not None, "MARank.loss needs a training batch with targets"
        where = batch.targets >= 0  # (B, L): slots with a next item, each the end of one window
        targets = batch.targets[where]  # (T,)
        negatives = None if batch.negatives is None else batch.negatives[where]  # (T, N)
        state = self.represent(batch.users, batch.items, where)
        hidden = torch.cat([state.user, state.union], dim=1)  # (T, 2D)
        # the full softmax needs the whole (I, 2D) table; the sampled losses read their rows by lookup
        item_weight = self.item_weight if self.loss_kind == "ce" else None
        ranking = item_prediction_loss(hidden, item_weight, targets, negatives, self.loss_kind, lookup=self.item_rows)
        norms = state.user.pow(2).sum(-1) + self.item_rows(targets).pow(2).sum(-1)  # (T,)
        if negatives is not None:
            norms = norms + self.item_rows(negatives).pow(2).sum(-1).mean(-1)
        norms = norms + state.z.pow(2).sum(-1) + state.residual.pow(2).sum(-1)
        reg = self.reg_weight * norms.mean()
        return LossOutput(ranking + reg, {self.loss_kind: ranking.detach(), "reg": reg.detach()})

    def score(self, batch: SequenceBatch) -> Tensor:
        state = self.represent(batch.users, last_window(batch.items, self.window))
        hidden = torch.cat([state.user, state.union], dim=1)  # (B, 2D)
        return item_scores(hidden, self.item_weight, batch.candidates)  # (B, C)

    def scorer(self) -> Scorer:
        return no_user_scorer("marank")

    def explain(self, batch: SequenceBatch, items: Tensor | None = None) -> dict[str, Tensor]:  # type: ignore[override]  # sequences, not user ids
        """Attention behind the next-item scores of ``batch``, aligned with ``batch.items`` (B, L):

        ``individual`` (B, L): the individual-level weights over the window (zero outside it);
        ``item_orders`` (B, K + 1, L): the window weights at every order (order 0 = individual);
        ``orders`` (B, K + 1): the order attention (sums to 1).
        """
        with torch.no_grad():
            state = self.represent(batch.users, last_window(batch.items, self.window))
        L, W = batch.items.shape[1], self.window
        weights = state.item_weights[..., max(W - L, 0) :]  # (B, K+1, min(L, W))
        weights = F.pad(weights, (max(L - W, 0), 0))  # (B, K+1, L)
        return {"individual": weights[:, 0], "item_orders": weights, "orders": state.order_weights}
