"""SAERS: Hou, Wu, Chen, Li, Zheng & Liu, "Explainable Fashion Recommendation: A Semantic Attribute
Region Guided Approach", IJCAI 2019.

A semantic extraction network (SEN) finds, for each attribute k, the image regions that show it,
weakly supervised by image-level attribute labels (multi-task classification); the user attends over
the resulting attribute features (fine-grained preference attention, FPA); the item is represented in
a global visual space and in the semantic attribute space, learned jointly under BPR:

    h_{i,r}   = tanh(W x_{i,r})                                        region r of item i (x standardised)
    β_{i,k,r} = softmax_r(w_kᵀ h_{i,r})                                SEN: where attribute k is
    f_{i,k}   = Σ_r β_{i,k,r} h_{i,r};    P(a_k | i) = σ(c_kᵀ f_{i,k} + d_k)     multi-task classifier
    α_{u,i,k} = softmax_k(vᵀ tanh(W_a f_{i,k} + U_a s_u))              FPA over the K attribute features
    ŷ_ui = <γ_u, γ_i> + <θ_u, E ḡ_i> + <s_u, W_s Σ_k α_{u,i,k} f_{i,k}> + b_i     (ḡ_i: mean region feature)
    L = BPR + attribute_weight · BCE(P(a | i), labels) + reg · ||γ, θ, s, b||²

Attributes: the columns of a ``categorical`` modality (``attributes``: auto = the first one; genres on
MovieLens, garment classes on planted-fashion), each a binary task. A data set without labels gets
``num_attributes`` unsupervised attribute slots (no classifier). Regions: a ``regions`` modality (the
poster 7 x 7 grid, planted-fashion cells); without one, every vector modality is one region.

The explanation is the user's attention over attributes (α) and its map over the image,
``Σ_k α_{u,i,k} β_{i,k,:}``.

Note:
    No public code; the paper body was not read (MODELS.md marks the prediction [U]). The paper's SEN is
    a CNN trained end to end on a fashion attribute data set (12 attribute types, each multi-class) and
    localises with class activation maps; here the SEN is an attention-pooling head over frozen region
    features, trained jointly with the ranker on the recommendation data's own labels, and each
    attribute label is a binary task (present / absent). Only the items of a batch (positives and
    negatives) contribute to the attribute loss, so the labels of every item reach training as content
    (they are item side information, not held-out interactions). The global visual space uses the mean
    region feature rather than a separate CNN embedding. Region features are standardised and reduced
    to their top ``region_dim`` (128) principal axes, both fitted on the training items.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.batches import PairBatch, UserBatch
from fusionrec.errors import DataError
from fusionrec.models.base import LossOutput, ModelConfig, Recommender, Scorer
from fusionrec.models.topk.features import modality_tensors, standardize, training_items
from fusionrec.nn.fusion.functional import masked_softmax
from fusionrec.nn.fusion.layers import AdditiveScore
from fusionrec.nn.losses import bpr_loss, l2_penalty
from fusionrec.registry import MODELS


class SAERSConfig(ModelConfig):
    name: str = "saers"
    embedding_dim: int = Field(32, gt=0, description="size of γ, θ and the attribute-space user vector s")
    semantic_dim: int = Field(32, gt=0, description="width of the region/attribute features h, f")
    attention_dim: int = Field(32, gt=0)
    modalities: list[str] = Field(
        ["auto"], description="region source: auto = the first regions modality, else every vector modality"
    )
    region_dim: int | None = Field(
        128, gt=0, description="region features projected on their top principal axes (training items); None: raw"
    )
    attributes: str | None = Field("auto", description="categorical modality of attribute labels; None: unlabelled")
    num_attributes: int = Field(8, gt=0, description="attribute slots when the data set has no labels")
    attribute_weight: float = Field(1.0, ge=0, description="weight of the multi-task attribute loss")
    reg_weight: float = Field(1e-4, ge=0)
    score_budget: int = Field(1 << 22, gt=0, description="floats per (users x items x attributes x dim) block")


def saers_inputs(dataset, names: list[str], region_dim: int | None = None) -> tuple[Tensor, Tensor, list[str]]:
    """Standardised region features (I, L, F), their mask (I, L) and a name per region; with ``region_dim``
    projected on their top principal axes (fitted on the training items)."""
    kinds = {n: m.kind for n, m in dataset.modalities.items()}
    if names == ["auto"]:
        grids = [n for n, k in kinds.items() if k == "regions"]
        names = grids[:1] or [n for n, k in kinds.items() if k not in ("regions", "categorical")]
        names = names or [n for n, k in kinds.items() if k != "regions"]
    if not names:
        raise DataError(f"SAERS needs image regions or another modality; data set {dataset.name!r} has none")
    features, masks = modality_tensors(dataset, names, "SAERS", keep_regions=True)
    fit = training_items(dataset)
    width = max(f.shape[-1] for f in features.values())
    blocks, block_masks, labels = [], [], []
    for name, values in features.items():
        values = standardize(values, masks[name], fit)
        values = values if values.dim() == 3 else values.unsqueeze(1)
        blocks.append(nn.functional.pad(values, (0, width - values.shape[-1])))
        block_masks.append(masks[name][:, None].expand(-1, values.shape[1]))
        labels += [name] * values.shape[1]
    regions, mask = torch.cat(blocks, 1), torch.cat(block_masks, 1)
    if region_dim is None or region_dim >= regions.shape[-1]:
        return regions, mask, labels
    rows = regions[fit][mask[fit]].double()  # (n, F): valid regions of training items
    _, vectors = torch.linalg.eigh(rows.T @ rows)  # ascending eigenvalues
    return (regions.double() @ vectors[:, -region_dim:].flip(-1)).float(), mask, labels


def region_means(regions: Tensor, mask: Tensor) -> Tensor:
    """Mean of the valid regions. Shapes: regions (B, R, F), mask (B, R) -> (B, F)."""
    m = mask.to(regions.dtype)
    return (regions * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1.0)


def attribute_labels(dataset, name: str | None) -> tuple[Tensor | None, Tensor | None, list[str]]:
    """Multi-hot labels (I, K) of the attribute modality, the items that have them (I,), column names."""
    if name == "auto":
        name = next((n for n, m in dataset.modalities.items() if m.kind == "categorical"), None)
    if name is None:
        return None, None, []
    dataset.schema.require_modalities("SAERS", [name])
    modality = dataset.modalities[name]
    if modality.kind != "categorical":
        raise DataError(f"SAERS: model.attributes={name!r} is a {modality.kind} modality; it needs a categorical one")
    labels = modality.labels or [f"{name}_{k}" for k in range(modality.dim)]
    values = torch.tensor(modality.values, dtype=torch.float32)
    return values, torch.from_numpy(modality.mask.copy()), list(labels)


@MODELS.register(
    "saers",
    config=SAERSConfig,
    task="topk",
    paper="Hou et al., IJCAI 2019",
    modalities="image regions + categorical attribute labels",
)
class SAERS(Recommender):
    """Shapes:
    regions: (I, R, F); region_mask: (I, R) bool; labels: (I, K) multi-hot, label_mask (I,)
    SEN: item (B,) -> β (B, K, R), f (B, K, S), attribute logits (B, K)
    loss: PairBatch users (B,), pos_items (B,), neg_items (B, N)
    score: UserBatch users (B,) -> (B, I) or (B, C)
    explain: users (B,), items (B,) -> attributes (B, K) α, regions (B, R) Σ_k α_k β_k
    """

    regions: Tensor  # buffer (I, R, F)
    region_mask: Tensor  # buffer (I, R)
    region_mean: Tensor  # buffer (I, F)
    labels: Tensor  # buffer (I, K)
    label_mask: Tensor  # buffer (I,)

    def __init__(
        self,
        num_users: int,
        regions: Tensor,
        region_mask: Tensor,
        labels: Tensor | None = None,
        label_mask: Tensor | None = None,
        attribute_names: list[str] | None = None,
        embedding_dim: int = 32,
        semantic_dim: int = 32,
        attention_dim: int = 32,
        num_attributes: int = 8,
        attribute_weight: float = 1.0,
        reg_weight: float = 1e-4,
        score_budget: int = 1 << 22,
        region_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        num_items, _, feature_dim = regions.shape
        supervised = labels is not None and attribute_weight > 0
        k = labels.shape[1] if labels is not None else num_attributes
        dim, sem = embedding_dim, semantic_dim
        self.register_buffer("regions", regions, persistent=False)
        self.register_buffer("region_mask", region_mask.bool(), persistent=False)
        self.register_buffer("labels", labels if labels is not None else torch.zeros(num_items, k), persistent=False)
        self.register_buffer(
            "label_mask",
            (label_mask.bool() if label_mask is not None else torch.zeros(num_items, dtype=torch.bool)),
            persistent=False,
        )
        self.register_buffer("region_mean", region_means(regions, self.region_mask), persistent=False)  # (I, F)
        self.region_encoder = nn.Linear(feature_dim, sem)  # W
        self.locate = nn.Linear(sem, k, bias=False)  # w_k, one spatial query per attribute
        self.classifier = nn.Parameter(torch.randn(k, sem) * 0.1) if supervised else None  # c_k
        self.classifier_bias = nn.Parameter(torch.zeros(k)) if supervised else None  # d_k
        self.gamma_user = nn.Embedding(num_users, dim)
        self.gamma_item = nn.Embedding(num_items, dim)
        self.theta_user = nn.Embedding(num_users, dim)
        self.semantic_user = nn.Embedding(num_users, dim)  # s_u
        for emb in (self.gamma_user, self.gamma_item, self.theta_user, self.semantic_user):
            nn.init.normal_(emb.weight, std=0.1)
        self.item_bias = nn.Parameter(torch.zeros(num_items))
        self.global_projection = nn.Linear(feature_dim, dim, bias=False)  # E
        self.semantic_projection = nn.Linear(sem, dim, bias=False)  # W_s
        self.preference = AdditiveScore(sem, query_dim=dim, hidden_dim=attention_dim)  # FPA
        self.attribute_names = attribute_names or [f"attribute {j}" for j in range(k)]
        self.attribute_weight, self.reg_weight, self.score_budget = attribute_weight, reg_weight, score_budget
        self.region_modality_names = region_names

    @classmethod
    def from_dataset(cls, config: SAERSConfig, dataset) -> SAERS:
        regions, mask, names = saers_inputs(dataset, config.modalities, config.region_dim)
        labels, label_mask, attribute_names = attribute_labels(dataset, config.attributes)
        return cls(
            dataset.num_users,
            regions,
            mask,
            labels,
            label_mask,
            attribute_names,
            config.embedding_dim,
            config.semantic_dim,
            config.attention_dim,
            config.num_attributes,
            config.attribute_weight,
            config.reg_weight,
            config.score_budget,
            names,
        )

    def lookup_embeddings(self) -> tuple[nn.Embedding, ...]:
        return self.gamma_user, self.gamma_item, self.theta_user, self.semantic_user

    def semantic_extraction(
        self, items: Tensor | None = None, regions: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """SEN of ``items`` (all when None): β (B, K, R), attribute features f (B, K, S), logits (B, K);
        ``regions`` (B, R, F) replaces the items' stored features (image-gradient saliency)."""
        mask = self.region_mask if items is None else self.region_mask[items]  # (B, R)
        if regions is not None:
            h = torch.tanh(self.region_encoder(regions))  # (B, R, S)
        elif items is None:
            h = torch.tanh(self.region_encoder(self.regions))  # (I, R, S)
        else:  # each distinct item encoded once (a batch repeats items; F may be 1,280)
            unique, inverse = torch.unique(items, return_inverse=True)
            h = torch.tanh(self.region_encoder(self.regions[unique]))[inverse]
        beta = masked_softmax(self.locate(h).transpose(1, 2), mask[:, None, :])  # (B, K, R)
        f = beta @ h  # (B, K, S)
        logits = None
        if self.classifier is not None and self.classifier_bias is not None:
            logits = (f * self.classifier).sum(-1) + self.classifier_bias  # (B, K)
        return beta, f, logits

    def global_part(self, items: Tensor | None = None, regions: Tensor | None = None) -> Tensor:
        """E ḡ_i: the item in the global visual space (B, D), ḡ the mean of its valid regions
        (of ``regions`` (B, R, F) when given, for image-gradient saliency)."""
        if regions is None:
            return self.global_projection(self.region_mean if items is None else self.region_mean[items])
        return self.global_projection(region_means(regions, self.region_mask[items]))

    def preference_attention(self, users: Tensor, f: Tensor) -> Tensor:
        """FPA: α (B, K) of ``users`` (B,) over attribute features f (B, K, S)."""
        return torch.softmax(self.preference(f, self.semantic_user(users)), dim=-1)

    def pair_scores(
        self, users: Tensor, items: Tensor, regions: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        """ŷ of aligned pairs (B,), the attribute logits (B, K) and α (B, K)."""
        beta, f, logits = self.semantic_extraction(items, regions)
        alpha = self.preference_attention(users, f)
        semantic = self.semantic_projection(torch.einsum("bk,bks->bs", alpha, f))  # (B, D)
        score = (
            (self.gamma_user(users) * self.gamma_item(items)).sum(-1)
            + (self.theta_user(users) * self.global_part(items, regions)).sum(-1)
            + (self.semantic_user(users) * semantic).sum(-1)
            + self.item_bias[items]
        )
        return score, logits, alpha

    def loss(self, batch: PairBatch) -> LossOutput:
        users, pos_items, neg = batch.users, batch.pos_items, batch.neg_items
        n = neg.shape[1]
        pos, pos_logits, _ = self.pair_scores(users, pos_items)
        neg_scores, neg_logits, _ = self.pair_scores(users.repeat_interleave(n), neg.reshape(-1))
        ranking = bpr_loss(pos, neg_scores.view(-1, n))
        reg = self.reg_weight * l2_penalty(
            self.gamma_user(users),
            self.theta_user(users),
            self.semantic_user(users),
            self.gamma_item(pos_items),
            self.gamma_item(neg),
            self.item_bias[pos_items],
            self.item_bias[neg],
            batch_size=len(batch),
        )
        parts = {"bpr": ranking.detach(), "reg": reg.detach()}
        total = ranking + reg
        if pos_logits is not None and neg_logits is not None:
            items = torch.cat([pos_items, neg.reshape(-1)])
            logits = torch.cat([pos_logits, neg_logits])
            known = self.label_mask[items]
            if bool(known.any()):
                attribute = nn.functional.binary_cross_entropy_with_logits(logits[known], self.labels[items][known])
                total = total + self.attribute_weight * attribute
                parts["attribute"] = attribute.detach()
        return LossOutput(total, parts)

    def score(self, batch: UserBatch) -> Tensor:
        return self.scorer()(batch.users, batch.items)

    def scorer(self) -> Scorer:
        """All pairs; the SEN runs once per item, FPA in blocks of at most ``score_budget`` floats."""
        _, f_all, _ = self.semantic_extraction()  # (I, K, S)
        keys_all = self.preference.item(f_all)  # (I, K, A)
        assert self.preference.query is not None
        query_all = self.preference.query(self.semantic_user.weight)  # (U, A)
        global_all = self.global_part()  # (I, D)

        def score(users: Tensor, items: Tensor | None) -> Tensor:
            cand = torch.arange(len(f_all), device=users.device) if items is None else items
            f, k = f_all[cand], keys_all[cand]  # (C, K, S), (C, K, A)
            base = self.gamma_item(cand)  # (C, D)
            glob, bias = global_all[cand], self.item_bias[cand]
            out = []
            for part in users.split(max(1, self.score_budget // max(1, k.numel()))):
                alpha = torch.softmax(self.preference.scores(k[None] + query_all[part][:, None, None, :]), -1)
                semantic = self.semantic_projection(torch.einsum("bck,cks->bcs", alpha, f))  # (b, C, D)
                s_u = self.semantic_user(part)  # (b, D)
                out.append(
                    self.gamma_user(part) @ base.T
                    + self.theta_user(part) @ glob.T
                    + torch.einsum("bd,bcd->bc", s_u, semantic)
                    + bias
                )
            return torch.cat(out, 0)

        return score

    @property
    def explain_names(self) -> list[str]:
        return self.attribute_names

    def explain(self, users: Tensor, items: Tensor) -> dict[str, Tensor]:
        beta, f, _ = self.semantic_extraction(items)
        alpha = self.preference_attention(users, f)  # (B, K)
        return {"attributes": alpha, "regions": torch.einsum("bk,bkr->br", alpha, beta)}
