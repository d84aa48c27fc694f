"""A GRU text generator that attends over a memory, and the word vocabulary it speaks.

Models that explain themselves in words (VECF's review generator, NOR's comment generator) decode
a sentence from what the model looked at: image regions, the items of an outfit. Both are the same
machine, an attentive GRU language model (Bahdanau et al., ICLR 2015):

    a_t = softmax_m( vᵀ tanh(W_m m_m + W_h h_{t-1}) + log p_m )      over valid memory slots
    c_t = Σ_m a_t,m m_m
    h_t = GRU([E x_t ; c_t], h_{t-1})
    P(x_{t+1}) = softmax(W_o [h_t ; c_t])

``p`` is an optional prior over the memory (``memory_prior``): a model passes another attention
there (VECF's visual attention) so that the words are generated from where it looked, and the
review loss trains that attention too. Without a prior the term is absent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from fusionrec.metrics.generation import words
from fusionrec.nn.fusion.functional import masked_softmax
from fusionrec.nn.fusion.layers import AdditiveScore

PAD, BOS, EOS, UNK = 0, 1, 2, 3
_SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


class WordVocabulary:
    """Words to ids and back: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3, then words by
    decreasing training frequency (ties alphabetical, so a vocabulary is reproducible)."""

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        self.tokens: list[str] = list(_SPECIALS) + [t for t in tokens if t not in _SPECIALS]
        self.index = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def fit(cls, texts: Iterable[str], max_size: int, min_count: int = 1) -> WordVocabulary:
        """The ``max_size`` most frequent words (specials included in the count) seen ``min_count`` times."""
        if max_size <= len(_SPECIALS):
            raise ValueError(f"max_size must exceed the {len(_SPECIALS)} special tokens, got {max_size}")
        counts = Counter(word for text in texts for word in words(text))
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(ranked[: max_size - len(_SPECIALS)])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, max_len: int) -> list[int]:
        """``<bos> w_1 .. w_n <eos>``, the words cut to ``max_len`` (so at most ``max_len + 2`` ids)."""
        ids = [self.index.get(word, UNK) for word in words(text)[:max_len]]
        return [BOS, *ids, EOS]

    def decode(self, ids: Iterable[int]) -> str:
        """Words up to the first ``<eos>``; ``<bos>`` and ``<pad>`` skipped."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.tokens[i] if 0 <= i < len(self.tokens) else _SPECIALS[UNK])
        return " ".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens[len(_SPECIALS) :]}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> WordVocabulary:
        return cls(state["tokens"])


def pad_sequences(sequences: list[list[int]], length: int | None = None) -> Tensor:
    """Right-pad id lists with ``<pad>`` into a long tensor (B, length or the longest)."""
    length = max((len(s) for s in sequences), default=0) if length is None else length
    out = torch.full((len(sequences), length), PAD, dtype=torch.long)
    for row, seq in enumerate(sequences):
        seq = seq[:length]
        out[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out


@dataclass
class DecoderOutput:
    logits: Tensor  # (B, T, V)
    attention: Tensor  # (B, T, M)


class AttentiveGRUDecoder(nn.Module):
    """An attentive GRU language model over a memory (see the module docstring).

    Args:
        vocab_size: V, including the four specials.
        embed_dim: word embedding width.
        hidden_dim: GRU state width H.
        memory_dim: width of the memory slots attended over.
        pad_id: the padding id, ignored by :meth:`nll`.
        dropout: on the word embeddings and the output features.

    Shapes:
        inputs (B, T) long; memory (B, M, memory_dim); memory_mask (B, M) bool, True = valid;
        initial (B, H); memory_prior (B, M), a distribution over the valid slots.
    """

    def __init__(
        self, vocab_size: int, embed_dim: int, hidden_dim: int, memory_dim: int, pad_id: int = PAD, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.attend = AdditiveScore(memory_dim, query_dim=hidden_dim, hidden_dim=hidden_dim)
        self.cell = nn.GRUCell(embed_dim + memory_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim + memory_dim, vocab_size)
        self.dropout = nn.Dropout(dropout)
        self.hidden_dim = hidden_dim

    def _start(
        self, memory: Tensor, initial: Tensor | None, memory_prior: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        keys = self.attend.item(memory)  # (B, M, H): projected once per sequence, not per step
        hidden = memory.new_zeros(memory.shape[0], self.hidden_dim) if initial is None else initial
        log_prior = None if memory_prior is None else torch.log(memory_prior.clamp_min(1e-9))
        return keys, hidden, log_prior

    def _step(
        self,
        token: Tensor,
        hidden: Tensor,
        memory: Tensor,
        keys: Tensor,
        memory_mask: Tensor | None,
        log_prior: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        assert self.attend.query is not None
        scores = self.attend.scores(keys + self.attend.query(hidden)[:, None, :])  # (B, M)
        if log_prior is not None:
            scores = scores + log_prior
        weights = masked_softmax(scores, memory_mask)
        context = torch.einsum("bm,bmd->bd", weights, memory)
        hidden = self.cell(torch.cat([self.dropout(self.embed(token)), context], dim=-1), hidden)
        logits = self.out(self.dropout(torch.cat([hidden, context], dim=-1)))
        return logits, hidden, weights

    def forward(
        self,
        inputs: Tensor,
        memory: Tensor,
        memory_mask: Tensor | None = None,
        initial: Tensor | None = None,
        memory_prior: Tensor | None = None,
    ) -> DecoderOutput:
        keys, hidden, log_prior = self._start(memory, initial, memory_prior)
        logits, attention = [], []
        for t in range(inputs.shape[1]):
            step_logits, hidden, weights = self._step(inputs[:, t], hidden, memory, keys, memory_mask, log_prior)
            logits.append(step_logits)
            attention.append(weights)
        return DecoderOutput(torch.stack(logits, dim=1), torch.stack(attention, dim=1))

    def nll(
        self,
        targets: Tensor,
        memory: Tensor,
        memory_mask: Tensor | None = None,
        initial: Tensor | None = None,
        memory_prior: Tensor | None = None,
    ) -> Tensor:
        """Mean token negative log-likelihood per sequence (B,), teacher-forced, padding ignored.

        ``targets`` start with ``<bos>``; the model reads ``targets[:, :-1]`` and predicts
        ``targets[:, 1:]``. A sequence with no target token (all padding) scores 0.
        """
        output = self.forward(targets[:, :-1], memory, memory_mask, initial, memory_prior)
        gold = targets[:, 1:]
        token_nll = nn.functional.cross_entropy(output.logits.transpose(1, 2), gold, reduction="none")  # (B, T-1)
        valid = (gold != self.pad_id).to(token_nll.dtype)
        return (token_nll * valid).sum(1) / valid.sum(1).clamp_min(1.0)

    @torch.no_grad()
    def generate(
        self,
        memory: Tensor,
        memory_mask: Tensor | None = None,
        initial: Tensor | None = None,
        *,
        bos_id: int = BOS,
        eos_id: int = EOS,
        max_len: int = 20,
        memory_prior: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Greedy decoding: (tokens (B, L), attention (B, L, M)); after ``<eos>`` a row emits padding."""
        keys, hidden, log_prior = self._start(memory, initial, memory_prior)
        token = torch.full((memory.shape[0],), bos_id, dtype=torch.long, device=memory.device)
        finished = torch.zeros_like(token, dtype=torch.bool)
        tokens, attention = [], []
        for _ in range(max_len):
            logits, hidden, weights = self._step(token, hidden, memory, keys, memory_mask, log_prior)
            token = logits.argmax(-1).masked_fill(finished, self.pad_id)
            tokens.append(token)
            attention.append(weights)
            finished |= token == eos_id
            if bool(finished.all()):
                break
        return torch.stack(tokens, dim=1), torch.stack(attention, dim=1)
