"""VECF: Chen, Chen, Xu, Zhang, Cao, Qin & Zha, "Personalized Fashion Recommendation with Visual
Explanations based on Multimodal Attention Network: Towards Visually Explainable Recommendation"
(Visually Explainable Collaborative Filtering), SIGIR 2019.

The user attends over the pre-segmented regions of the item image; the attended visual vector is
fused with the item's ID embedding; a GRU generates the user's review of the item from the regions,
its attention coupled to the visual attention, so reviews supervise where the user looks:

    α_{u,i,l} = softmax_l( wᵀ ReLU(W_u p_u + W_x x_{i,l} + b) )        over the item's valid regions l
    q_{u,i}   = e_i + Σ_l α_{u,i,l} x_{i,l}                            (x_{i,l} = W_f f_{i,l}, f standardised)
    ŷ_ui      = <p_u, q_{u,i}> + b_i
    review:   h_0 = tanh(W_h [p_u; e_i]),  a_t ∝ exp(additive(h_{t-1}, x_{i,l}) + log α_{u,i,l})
    L = BPR(ŷ_ui, ŷ_uj) + λ · mean NLL(review_ui) + reg · ||p_u, e_i, e_j, b||²

Regions: a ``regions`` modality ``(I, R, D)`` (poster 7 x 7 grid, planted-fashion cells); without one,
each vector modality is one region (the contract's tiny data). The reviews are the training
interactions' ``review`` column (``tags`` on MovieLens): only ``split == train`` rows are read, and a
training pair without a review contributes no NLL. ``review_weight = 0`` (or no reviews) builds no
generator: VECF without reviews.

Note:
    No public code; the paper body was not read (MODELS.md marks the form [U]). The region attention
    follows the dossier's suggested form; the fusion is an addition and the predictor a dot product
    (the paper's exact fusion and output layers are not known here). The coupling of the review
    generator to the visual attention is a log-prior on the decoder's attention
    (:class:`~fusionrec.nn.text_decoder.AttentiveGRUDecoder`), one way of making "the visual and
    textual features coupled"; the paper's exact coupling may differ. Reviews are generated with the
    user/item state as initial hidden state, greedy at explanation time. The ranking loss is BPR
    on the task's sampled negatives (the paper's pointwise/pairwise choice is [U]). Region features
    are frozen CNN grids (or pooled pixels), not the paper's VGG conv5 14 x 14 map, standardised and
    reduced to their top ``region_dim`` (128) principal axes, both fitted on the training items (an
    EfficientNet grid of 1,280 channels made a posters epoch about 3x slower).
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from fusionrec.data.batches import PairBatch, UserBatch
from fusionrec.data.dataset import TRAIN
from fusionrec.errors import DataError
from fusionrec.models.base import LossOutput, ModelConfig, Recommender, Scorer
from fusionrec.models.topk.features import modality_tensors, standardize, training_items
from fusionrec.nn.fusion.functional import masked_softmax
from fusionrec.nn.fusion.layers import AdditiveScore
from fusionrec.nn.losses import bpr_loss, l2_penalty
from fusionrec.nn.text_decoder import AttentiveGRUDecoder, WordVocabulary, pad_sequences
from fusionrec.registry import MODELS


class VECFConfig(ModelConfig):
    name: str = "vecf"
    embedding_dim: int = Field(32, gt=0)
    attention_dim: int = Field(32, gt=0, description="width of the region attention layer")
    modalities: list[str] = Field(
        ["auto"], description="region source: auto = the first regions modality, else every vector modality"
    )
    region_dim: int | None = Field(
        128, gt=0, description="region features projected on their top principal axes (training items); None: raw"
    )
    review_weight: float = Field(0.0, ge=0, description="λ on the review NLL; 0: VECF without reviews")
    review_column: str = Field("auto", description="interaction text column; auto: review, else tags")
    vocab_size: int = Field(2000, gt=4)
    max_review_words: int = Field(20, gt=0)
    word_dim: int = Field(32, gt=0)
    decoder_dim: int = Field(64, gt=0)
    reg_weight: float = Field(1e-4, ge=0)
    score_budget: int = Field(1 << 22, gt=0, description="floats per (users x items x regions x dim) block")


def region_inputs(
    dataset, names: list[str], model: str, region_dim: int | None = None
) -> tuple[Tensor, Tensor, list[str]]:
    """Standardised region features ``(I, L, F)``, their mask ``(I, L)`` and a name per region.

    ``["auto"]``: the first ``regions`` modality; without one, every vector modality as one region each
    (zero-padded to the widest). Statistics are fitted on the training items; with ``region_dim`` the
    features are projected on their top ``region_dim`` principal axes (fitted on the training items too)."""
    kinds = {n: m.kind for n, m in dataset.modalities.items()}
    if names == ["auto"]:
        grids = [n for n, k in kinds.items() if k == "regions"]
        names = grids[:1] or [n for n, k in kinds.items() if k != "regions"]
    if not names:
        raise DataError(f"{model} needs image regions or another modality; data set {dataset.name!r} has none")
    features, masks = modality_tensors(dataset, names, model, keep_regions=True)
    fit = training_items(dataset)
    blocks, block_masks, labels = [], [], []
    width = max(f.shape[-1] for f in features.values())
    for name, values in features.items():
        values = standardize(values, masks[name], fit)
        values = values if values.dim() == 3 else values.unsqueeze(1)  # (I, R, F)
        values = nn.functional.pad(values, (0, width - values.shape[-1]))
        blocks.append(values)
        block_masks.append(masks[name][:, None].expand(-1, values.shape[1]))
        labels += [name] * values.shape[1]
    regions, mask = torch.cat(blocks, 1), torch.cat(block_masks, 1)
    return principal_axes(regions, mask, fit, region_dim), mask, labels


def principal_axes(regions: Tensor, mask: Tensor, fit: Tensor, dim: int | None) -> Tensor:
    """``regions`` (I, R, F) projected on the top ``dim`` eigenvectors of the second-moment matrix of the
    valid regions of the ``fit`` items (I,); unchanged when ``dim`` is None or not below F."""
    if dim is None or dim >= regions.shape[-1]:
        return regions
    rows = regions[fit][mask[fit]].double()  # (n, F)
    _, vectors = torch.linalg.eigh(rows.T @ rows)  # ascending eigenvalues
    return (regions.double() @ vectors[:, -dim:].flip(-1)).float()


def training_reviews(dataset, column: str) -> tuple[np.ndarray, list[str]]:
    """Keys ``user * I + item`` (sorted) and texts of the *training* interactions with a non-empty review."""
    inter = dataset.interactions
    if column == "auto":
        column = next((c for c in ("review", "tags") if c in inter.columns), "")
    if not column or column not in inter.columns:
        return np.zeros(0, dtype=np.int64), []
    text = inter[column].fillna("").astype(str).str.replace("|", ", ")
    keep = (inter["split"].to_numpy() == TRAIN) & (text.str.strip() != "").to_numpy()
    keys = inter["user"].to_numpy()[keep].astype(np.int64) * dataset.num_items + inter["item"].to_numpy()[keep]
    order = np.argsort(keys, kind="stable")
    texts = text.to_numpy()[keep][order]
    return keys[order], [str(t) for t in texts]


@MODELS.register(
    "vecf", config=VECFConfig, task="topk", paper="Chen et al., SIGIR 2019", modalities="image regions (+ reviews)"
)
class VECF(Recommender):
    """Shapes:
    regions: (I, R, F) standardised region features; region_mask: (I, R) bool
    loss: PairBatch users (B,), pos_items (B,), neg_items (B, N)
    score: UserBatch users (B,) -> (B, I) or (B, C)
    explain: users (B,), items (B,) -> regions (B, R): α_{u,i}
    """

    regions: Tensor  # buffer (I, R, F)
    region_mask: Tensor  # buffer (I, R)
    review_keys: Tensor  # buffer (N_rev,) sorted user * I + item
    review_tokens: Tensor  # buffer (N_rev, T)

    def __init__(
        self,
        num_users: int,
        regions: Tensor,
        region_mask: Tensor,
        embedding_dim: int = 32,
        attention_dim: int = 32,
        reviews: tuple[np.ndarray, list[str]] | None = None,
        review_weight: float = 0.0,
        vocab_size: int = 2000,
        max_review_words: int = 20,
        word_dim: int = 32,
        decoder_dim: int = 64,
        reg_weight: float = 1e-4,
        score_budget: int = 1 << 22,
        region_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        num_items, _, feature_dim = regions.shape
        dim = embedding_dim
        self.register_buffer("regions", regions, persistent=False)
        self.register_buffer("region_mask", region_mask.bool(), persistent=False)
        self.user_emb = nn.Embedding(num_users, dim)
        self.item_emb = nn.Embedding(num_items, dim)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        self.item_bias = nn.Parameter(torch.zeros(num_items))
        self.project = nn.Linear(feature_dim, dim)  # W_f
        self.attention = AdditiveScore(dim, query_dim=dim, hidden_dim=attention_dim, activation="relu")
        self.reg_weight, self.score_budget, self.review_weight = reg_weight, score_budget, review_weight
        self.region_modality_names = region_names
        self.vocabulary: WordVocabulary | None = None
        self.decoder: AttentiveGRUDecoder | None = None
        keys, texts = reviews if reviews is not None else (np.zeros(0, dtype=np.int64), [])
        if review_weight > 0 and len(texts):
            self.vocabulary = WordVocabulary.fit(texts, vocab_size)
            tokens = pad_sequences([self.vocabulary.encode(t, max_review_words) for t in texts])
            self.decoder = AttentiveGRUDecoder(len(self.vocabulary), word_dim, decoder_dim, dim)
            self.initial = nn.Linear(2 * dim, decoder_dim)  # W_h
        else:
            tokens = torch.zeros(0, 2, dtype=torch.long)
        self.register_buffer("review_keys", torch.as_tensor(keys, dtype=torch.long), persistent=False)
        self.register_buffer("review_tokens", tokens, persistent=False)

    @classmethod
    def from_dataset(cls, config: VECFConfig, dataset) -> VECF:
        regions, mask, names = region_inputs(dataset, config.modalities, "VECF", config.region_dim)
        reviews = training_reviews(dataset, config.review_column) if config.review_weight > 0 else None
        return cls(
            dataset.num_users,
            regions,
            mask,
            config.embedding_dim,
            config.attention_dim,
            reviews,
            config.review_weight,
            config.vocab_size,
            config.max_review_words,
            config.word_dim,
            config.decoder_dim,
            config.reg_weight,
            config.score_budget,
            names,
        )

    def lookup_embeddings(self) -> tuple[nn.Embedding, ...]:
        return self.user_emb, self.item_emb

    def region_attention(self, users: Tensor, items: Tensor, regions: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """α over the regions of ``items`` personalised by ``users``, and the projected regions;
        ``regions`` (B, R, F) replaces the items' stored features (image-gradient saliency).

        Shapes: users (B,), items (B,) -> α (B, R), x (B, R, D)."""
        if regions is None:  # each distinct item projected once (a batch repeats items; F may be 1,280)
            unique, inverse = torch.unique(items, return_inverse=True)
            x = self.project(self.regions[unique])[inverse]  # (B, R, D)
        else:
            x = self.project(regions)
        scores = self.attention(x, self.user_emb(users))  # (B, R)
        return masked_softmax(scores, self.region_mask[items]), x

    def pair_scores(self, users: Tensor, items: Tensor, regions: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """ŷ for aligned pairs (B,), with α (B, R) and the projected regions (B, R, D)."""
        alpha, x = self.region_attention(users, items, regions)
        q = self.item_emb(items) + torch.einsum("br,brd->bd", alpha, x)  # (B, D)
        return (self.user_emb(users) * q).sum(-1) + self.item_bias[items], alpha, x

    def review_nll(self, users: Tensor, items: Tensor, alpha: Tensor, x: Tensor) -> Tensor | None:
        """Mean review NLL over the pairs that have a training review (None when none do)."""
        if self.decoder is None or not len(self.review_keys):
            return None
        keys = users.long() * self.item_emb.num_embeddings + items.long()
        pos = torch.searchsorted(self.review_keys, keys).clamp_max(len(self.review_keys) - 1)
        hit = self.review_keys[pos] == keys  # (B,)
        if not bool(hit.any()):
            return None
        u, i = users[hit], items[hit]
        initial = torch.tanh(self.initial(torch.cat([self.user_emb(u), self.item_emb(i)], -1)))
        nll = self.decoder.nll(self.review_tokens[pos[hit]], x[hit], self.region_mask[i], initial, alpha[hit])
        return nll.mean()

    def loss(self, batch: PairBatch) -> LossOutput:
        users, pos_items, neg = batch.users, batch.pos_items, batch.neg_items
        pos, alpha, x = self.pair_scores(users, pos_items)
        n = neg.shape[1]
        neg_scores = self.pair_scores(users.repeat_interleave(n), neg.reshape(-1))[0].view(-1, n)  # (B, N)
        ranking = bpr_loss(pos, neg_scores)
        reg = self.reg_weight * l2_penalty(
            self.user_emb(users),
            self.item_emb(pos_items),
            self.item_emb(neg),
            self.item_bias[pos_items],
            self.item_bias[neg],
            batch_size=len(batch),
        )
        parts = {"bpr": ranking.detach(), "reg": reg.detach()}
        total = ranking + reg
        nll = self.review_nll(users, pos_items, alpha, x)
        if nll is not None:
            total = total + self.review_weight * nll
            parts["review_nll"] = nll.detach()
        return LossOutput(total, parts)

    def score(self, batch: UserBatch) -> Tensor:
        return self.scorer()(batch.users, batch.items)

    def scorer(self) -> Scorer:
        """All (user, item) pairs in blocks of at most ``score_budget`` floats of attention hidden state."""
        x_all = self.project(self.regions)  # (I, R, D)
        keys_all = self.attention.item(x_all)  # (I, R, A)
        assert self.attention.query is not None
        query_all = self.attention.query(self.user_emb.weight)  # (U, A)

        def score(users: Tensor, items: Tensor | None) -> Tensor:
            cand = torch.arange(len(x_all), device=users.device) if items is None else items
            x, k, m = x_all[cand], keys_all[cand], self.region_mask[cand]  # (C, R, D), (C, R, A), (C, R)
            ids = self.item_emb(cand)  # (C, D)
            bias = self.item_bias[cand]
            out = []
            per_user = max(1, k.numel())
            for part in users.split(max(1, self.score_budget // per_user)):
                hidden = k[None] + query_all[part][:, None, None, :]  # (b, C, R, A), ReLU inside scores
                alpha = masked_softmax(self.attention.scores(hidden), m[None])  # (b, C, R)
                visual = torch.einsum("bcr,crd->bcd", alpha, x)  # (b, C, D)
                p = self.user_emb(part)  # (b, D)
                out.append(p @ ids.T + torch.einsum("bd,bcd->bc", p, visual) + bias)
            return torch.cat(out, 0)

        return score

    def explain(self, users: Tensor, items: Tensor) -> dict[str, Tensor]:
        return {"regions": self.region_attention(users, items)[0]}

    @torch.no_grad()
    def explain_text(self, users: Tensor, items: Tensor, max_len: int = 20) -> list[str] | None:
        """The generated review of each (user, item) pair (greedy), None without a review generator."""
        if self.decoder is None or self.vocabulary is None:
            return None
        alpha, x = self.region_attention(users, items)
        initial = torch.tanh(self.initial(torch.cat([self.user_emb(users), self.item_emb(items)], -1)))
        tokens, _ = self.decoder.generate(x, self.region_mask[items], initial, max_len=max_len, memory_prior=alpha)
        return [self.vocabulary.decode(row.tolist()) for row in tokens]
