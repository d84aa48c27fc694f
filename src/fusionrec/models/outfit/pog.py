"""POG: personalised outfit generation (Per + Gen), initialised from FOM.

Chen et al., "POG: Personalized Outfit Generation for Fashion Recommendation at Alibaba iFashion", KDD 2019.
Two steps: (1) pre-train FOM by masked item prediction on outfits; (2) an encoder-decoder generates an outfit
item by item for a user: **Per** encodes the user's recent clicks, **Gen** (initialised from FOM) decodes the
outfit attending to its own previous items and to Per's output::

    u = Per(e_{c_1..c_H}),     g_t = Gen(m, e_{o_1..o_{t-1}} | u)[t],     P(o_t) = softmax_i(cos(g_t, e_i) / τ)

One ``fit`` runs both stages (like MCPTR): ``on_fit_start`` pre-trains FOM on the task's training outfits for
``pretrain_epochs``, then copies FOM's item encoder, its ``[MASK]`` vector (Gen's start vector) and its layers'
self-attention, feed-forward and norms into Gen (the cross-attention is new), and freezes the FOM copy (kept
for the record and as a compatibility judge). Stage 2 trains Per and Gen on training users' (history, outfit).

Args (``POGConfig``): ``dim`` 64, ``num_heads`` 2, ``num_layers`` 2 (FOM and Gen), ``per_layers`` 1, ``dropout``
0.1, ``temperature`` 0.1, ``pretrain_epochs`` 10, ``pretrain_lr`` 1e-3, ``init_from_fom`` True.

Note:
    - Gen is causal over the previous items with FOM's ``[MASK]`` as the start vector; POG's decoder details
      (and whether it is causal) are not in the parts of the paper available here [U].
    - Candidates of the softmax are the batch's items of the target's category; POG's sampling is [U].
    - Users are synthetic (planted style preferences over real Polyvore items; docs/outfit.md).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from fusionrec.models.base import LossOutput
from fusionrec.models.outfit.base import (
    ItemEncoder,
    MaskedOutfitEncoder,
    OutfitBatch,
    OutfitConfig,
    OutfitModel,
    SetLayer,
    cosine_logits,
    item_inputs,
)
from fusionrec.registry import MODELS


class POGConfig(OutfitConfig):
    objective = "users"
    protocol = "generation"
    num_heads: int = Field(2, gt=0)
    num_layers: int = Field(2, gt=0)
    per_layers: int = Field(1, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    temperature: float = Field(0.1, gt=0)
    pretrain_epochs: int = Field(10, ge=0, description="FOM pre-training epochs (stage 1)")
    pretrain_lr: float = Field(1e-3, gt=0)
    init_from_fom: bool = Field(True, description="initialise Gen from the pre-trained FOM (False: ablation)")


def fom_loss(network: MaskedOutfitEncoder, batch: OutfitBatch, temperature: float) -> Tensor:
    """FOM's masked item loss (same-category softmax over the batch's items)."""
    items, mask = batch.items, batch.mask
    blank = torch.multinomial(mask.float(), 1)[:, 0]
    query, _ = network(items, mask, blank)
    pool = items[mask]
    cats = network.items.categories
    logits = cosine_logits(query, network.items(pool), temperature)
    logits = logits.masked_fill(cats[pool][None, :] != cats[items.gather(1, blank[:, None])], float("-inf"))
    flat = torch.cumsum(mask.flatten(), 0).reshape(mask.shape) - 1
    return F.cross_entropy(logits, flat.gather(1, blank[:, None])[:, 0])


@MODELS.register("pog", config=POGConfig, task="outfit", paper="Chen et al., KDD 2019", modalities="text, image")
class POG(OutfitModel):
    """Per (history encoder) + Gen (FOM-initialised decoder), two stages in one fit (module docstring)."""

    needs_history = True

    def __init__(self, fom: MaskedOutfitEncoder, gen_items: ItemEncoder, config: POGConfig) -> None:
        super().__init__()
        self.fom = fom
        self.fom.requires_grad_(False)  # stage 1 trains it in on_fit_start; frozen afterwards
        self.items_encoder = gen_items
        dim = gen_items.dim
        self.start = nn.Parameter(torch.randn(dim) * 0.02)
        self.gen = nn.ModuleList(
            SetLayer(dim, config.num_heads, config.dropout, cross=True) for _ in range(config.num_layers)
        )
        self.per = nn.ModuleList(SetLayer(dim, config.num_heads, config.dropout) for _ in range(config.per_layers))
        self.config = config
        self.temperature = config.temperature
        self.pretrain_history: list[float] = []

    @classmethod
    def from_dataset(cls, config: POGConfig, dataset: Any) -> POG:
        inputs = item_inputs(config, dataset)
        fom = MaskedOutfitEncoder(
            ItemEncoder(**inputs, dim=config.dim), config.num_heads, config.num_layers, config.dropout
        )
        return cls(fom, ItemEncoder(**inputs, dim=config.dim), config)

    # ------------------------------------------------------------------ stage 1
    def on_fit_start(self, task: Any) -> None:
        if self.pretrain_history or self.config.pretrain_epochs == 0:
            if not self.pretrain_history and self.config.init_from_fom:
                self.init_gen_from_fom()
            return
        device = self.start.device
        self.fom.requires_grad_(True)
        self.fom.train()
        optimizer = torch.optim.Adam(self.fom.parameters(), lr=self.config.pretrain_lr)
        for epoch in range(1, self.config.pretrain_epochs + 1):
            total, steps = 0.0, 0
            for batch in task.outfit_batches(epoch):
                loss = fom_loss(self.fom, batch.to(device), self.temperature)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, steps = total + float(loss.detach()), steps + 1
            self.pretrain_history.append(total / max(steps, 1))
        self.fom.requires_grad_(False)
        if self.config.init_from_fom:
            self.init_gen_from_fom()

    def init_gen_from_fom(self) -> None:
        """Copy FOM's item encoder, [MASK] vector and layers (self-attention, feed-forward, norms) into Gen."""
        with torch.no_grad():
            self.items_encoder.load_state_dict(self.fom.items.state_dict())
            self.start.copy_(self.fom.mask_token)
            for gen_layer, fom_layer in zip(self.gen, self.fom.layers):
                missing, unexpected = gen_layer.load_state_dict(fom_layer.state_dict(), strict=False)
                assert not unexpected and all(k.startswith(("cross_attn", "norm_cross")) for k in missing)

    def extra_record(self) -> dict[str, Any]:
        return {"fom_pretrain_loss": self.pretrain_history, "gen_initialised_from_fom": self.config.init_from_fom}

    # ------------------------------------------------------------------ stage 2
    def user_memory(self, history: Tensor, history_mask: Tensor) -> Tensor:
        """Per: (B, H, D) encoded clicks."""
        x = self.items_encoder(history)
        for layer in self.per:
            x, _ = layer(x, history_mask)
        return x

    def decode(self, prefix: Tensor, prefix_mask: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """Gen over ``[start, prefix]`` (causal): (B, L+1, D), row t predicting the item after t prefix items."""
        b = prefix.shape[0]
        x = torch.cat([self.start.expand(b, 1, -1), self.items_encoder(prefix)], 1)
        mask = torch.cat([prefix_mask.new_ones(b, 1), prefix_mask], 1)
        length = x.shape[1]
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=x.device), 1)
        for layer in self.gen:
            x, _ = layer(x, mask, causal, memory, memory_mask)
        return x

    def loss(self, batch: OutfitBatch) -> LossOutput:
        assert batch.history is not None and batch.history_mask is not None
        items, mask = batch.items, batch.mask
        memory = self.user_memory(batch.history, batch.history_mask)
        states = self.decode(items[:, :-1], mask[:, :-1], memory, batch.history_mask)  # (B, L, D): predicts slot t
        pool = items[mask]
        cats = self.items_encoder.categories
        logits = cosine_logits(states[mask], self.items_encoder(pool), self.temperature)  # (N, N)
        logits = logits.masked_fill(cats[pool][None, :] != cats[pool][:, None], float("-inf"))
        loss = F.cross_entropy(logits, torch.arange(len(pool), device=pool.device))
        return LossOutput(loss, {"generation": loss.detach()})

    def next_scores(
        self,
        prefix: Tensor,
        prefix_mask: Tensor,
        candidates: Tensor,
        history: Tensor | None = None,
        history_mask: Tensor | None = None,
    ) -> Tensor:
        assert history is not None and history_mask is not None, "POG generates for a user: pass the history"
        memory = self.user_memory(history, history_mask)
        states = self.decode(prefix, prefix_mask, memory, history_mask)  # (B, L+1, D)
        position = prefix_mask.sum(1)  # the row after the last prefix item
        query = states[torch.arange(prefix.shape[0], device=prefix.device), position]
        return cosine_logits(query, self.items_encoder(candidates), self.temperature)

    def outfit_scores(self, items: Tensor, mask: Tensor) -> Tensor:
        """Compatibility by the frozen FOM (mean over slots of cos(h_k, e_k) / τ), the judge of generated outfits."""
        b, length = items.shape
        blank = torch.arange(length, device=items.device).repeat_interleave(b)
        query, _ = self.fom(items.repeat(length, 1), mask.repeat(length, 1), blank)
        own = self.fom.items(items.T.reshape(-1))
        scores = F.cosine_similarity(query, own, dim=-1).reshape(length, b).T / self.temperature
        valid = mask.float()
        return (scores * valid).sum(1) / valid.sum(1).clamp_min(1.0)
