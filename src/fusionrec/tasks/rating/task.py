"""The ``rating`` task: explicit ratings predicted from IDs and review text; MSE, RMSE, MAE.

Protocol: every held-out (user, item) rating of the split is predicted once; predictions are clipped
to the declared rating scale (``task.clip_predictions``); MSE, RMSE and MAE are averaged over ratings;
the epoch is chosen on validation MSE (lower is better) and test is read once. Per-rating squared
and absolute errors are kept (``unit="rating"``, keyed by interaction row) for paired tests.

Leakage rules (tested in ``tests/rating/test_leakage.py``):

- user and item documents and the vocabulary come from training reviews only
  (:mod:`fusionrec.data.reviews`): the review of a valid or test pair enters no document;
- while training, the pair's own review is hidden from both documents (``task.hide_target_review``),
  so a model never learns to read the answer out of the review it is asked to predict;
- constants a model fits when built (the global mean, μ) are means of training ratings.
"""

from __future__ import annotations

import html
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field, field_validator

from fusionrec.data.dataset import SPLIT_CODES, Dataset
from fusionrec.data.io import write_with
from fusionrec.data.reviews import NO_REVIEW, RatingBatch, ReviewCorpus, review_corpus
from fusionrec.errors import ConfigError, DataError, FusionrecError
from fusionrec.metrics.full_ranking import EvalResult
from fusionrec.registry import TASKS
from fusionrec.tasks.base import DataNeeds, Explanation, Recommendation, Task, TaskConfig, labelled, model_device


class RatingTaskConfig(TaskConfig):
    """The ``task:`` section of the rating family."""

    rating_scale: tuple[float, float] = Field(
        (1.0, 5.0), description="declared [low, high] rating scale; ratings outside it are refused"
    )
    clip_predictions: bool = Field(True, description="clip predictions to rating_scale before the metrics")
    hide_target_review: bool = Field(
        True, description="while training, hide the pair's own review from its user and item documents"
    )
    eval_batch_size: int = Field(512, gt=0)

    @field_validator("rating_scale")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1]:
            raise ValueError(f"rating_scale must be [low, high] with low < high, got {list(value)}")
        return value


def check_scale(dataset: Dataset, scale: tuple[float, float]) -> None:
    """One DataError line naming the first rating outside ``scale`` (and how many there are)."""
    ratings = dataset.interactions["rating"].to_numpy()
    outside = (ratings < scale[0]) | (ratings > scale[1])
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        user = dataset.user_ids[dataset.interactions["user"].iloc[row]]
        item = dataset.item_ids[dataset.interactions["item"].iloc[row]]
        raise DataError(
            f"{dataset.name}: rating {float(ratings[row]):g} of user {user!s}, item {item!s} is outside the declared "
            f"scale [{scale[0]:g}, {scale[1]:g}] ({int(outside.sum())} such ratings); fix the data or set "
            "task.rating_scale=[LOW,HIGH]"
        )


class VerbatimRepeats(UserWarning):
    """Held-out reviews that a training review of the same user repeats word for word."""


def verbatim_repeats(dataset: Dataset) -> int:
    """How many valid/test reviews (non-empty) equal, word for word, a training review of the same user.

    Some data sets copy one review to every variant of a product (Amazon 2018 Fashion: a size or colour
    is its own item), so a held-out pair's text is in the user's training document under another item.
    The documents stay training-only; this count only says how much the data set itself repeats (it
    reads held-out text to count, never to train)."""
    inter = dataset.interactions
    text = inter["review"].fillna("").astype(str).str.strip()
    frame = inter[["user", "split"]].assign(text=text)
    frame = frame[frame["text"] != ""]
    train = frame[frame["split"] == SPLIT_CODES["train"]][["user", "text"]].drop_duplicates()
    held_out = frame[frame["split"] != SPLIT_CODES["train"]]
    return int(len(held_out.merge(train, on=["user", "text"])))


@TASKS.register(
    "rating",
    config=RatingTaskConfig,
    description="explicit ratings from IDs and reviews (documents from training reviews only); MSE, RMSE, MAE",
)
class RatingTask(Task):
    name = "rating"
    needs = DataNeeds(interaction_columns=("rating",))
    default_batch_size = 64
    default_metric = "mse"
    METRICS: ClassVar[tuple[str, ...]] = ("mse", "rmse", "mae")

    @classmethod
    def build(cls, config: RatingTaskConfig, train: Any, dataset: Dataset, model_config: Any) -> RatingTask:
        documents = getattr(model_config, "documents", None)
        spec = documents() if callable(documents) else None
        return cls(
            dataset,
            config,
            review_corpus(dataset, spec) if spec is not None else None,
            train.batch_size or cls.default_batch_size,
            train.seed,
            train.metric or cls.default_metric,
        )

    @classmethod
    def check_metric(cls, config: Any, metric: str) -> None:
        if metric not in cls.METRICS:
            raise ConfigError(f"train.metric={metric!r}: the rating task reports {', '.join(cls.METRICS)}")

    @classmethod
    def reported_metrics(cls, config: Any, metric: str) -> list[str]:
        return list(cls.METRICS)

    def higher_is_better(self, metric: str) -> bool:
        return False  # every rating metric is an error

    def __init__(
        self,
        dataset: Dataset,
        config: RatingTaskConfig,
        corpus: ReviewCorpus | None,
        batch_size: int,
        seed: int,
        metric: str,
    ) -> None:
        check_scale(dataset, config.rating_scale)
        self.dataset, self.config, self.corpus = dataset, config, corpus
        self.batch_size, self.seed, self.metric = batch_size, seed, metric
        inter = dataset.interactions
        self.users = inter["user"].to_numpy().astype(np.int64)
        self.items = inter["item"].to_numpy().astype(np.int64)
        self.ratings = inter["rating"].to_numpy().astype(np.float32)
        self.split_codes = inter["split"].to_numpy()
        self.train_rows = np.flatnonzero(self.split_codes == SPLIT_CODES["train"])
        if corpus is not None:
            self.tokens = torch.from_numpy(corpus.tokens)
        low, high = config.rating_scale
        docs = (
            "no review text"
            if corpus is None
            else f"documents of at most {corpus.user_docs.shape[1]} training reviews x {corpus.tokens.shape[1]} "
            f"words (vocabulary {corpus.vocab_size - 1:,} words from training reviews"
            + (", the pair's own review hidden while training)" if config.hide_target_review else ")")
        )
        self.protocol = (
            f"every held-out rating predicted once{', clipped to' if config.clip_predictions else ', scale'} "
            f"[{low:g}, {high:g}]; MSE, RMSE, MAE over ratings; {docs}"
        )
        self.verbatim_repeats = verbatim_repeats(dataset) if corpus is not None else 0
        if self.verbatim_repeats:
            self.protocol += (
                f"; WARNING: {self.verbatim_repeats} held-out reviews repeat, word for word, a training review "
                "of the same user on another item (the data set copies reviews across items)"
            )
            warnings.warn(f"{dataset.name}: {self.protocol.split('; WARNING: ')[1]}", VerbatimRepeats, stacklevel=2)

    # ------------------------------------------------------------------ batches
    def batch(
        self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, hide: np.ndarray | None = None
    ) -> RatingBatch:
        """The batch of these pairs; ``hide``: per pair, a review id to leave out of both documents."""
        tensors = (torch.from_numpy(users), torch.from_numpy(items), torch.from_numpy(ratings))
        if self.corpus is None:
            return RatingBatch(*tensors)
        user_words, user_review_items = self._documents(self.corpus.user_docs[users], self.corpus.review_item, hide)
        item_words, item_review_users = self._documents(self.corpus.item_docs[items], self.corpus.review_user, hide)
        return RatingBatch(*tensors, user_words, user_review_items, item_words, item_review_users)

    def _documents(
        self, docs: np.ndarray, other_side: np.ndarray, hide: np.ndarray | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Word ids (B, R, L) and the other side's id (B, R) of each document slot (-1: empty)."""
        if hide is not None:
            docs = np.where(docs == hide[:, None], NO_REVIEW, docs)
        empty = docs == NO_REVIEW
        padded = np.where(empty, len(other_side), docs)  # the corpus's last token row is all padding
        words = self.tokens[torch.from_numpy(padded)].long()  # (B, R, L)
        other = np.where(empty, -1, other_side[np.where(empty, 0, docs)])
        return words, torch.from_numpy(other)

    @property
    def num_batches(self) -> int:
        return -(-len(self.train_rows) // self.batch_size)

    def train_batches(self, epoch: int) -> Iterator[RatingBatch]:
        order = np.random.default_rng([self.seed, epoch]).permutation(self.train_rows)
        own_review = self.corpus.row_review if self.corpus is not None else None
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            hide = own_review[rows] if own_review is not None and self.config.hide_target_review else None
            yield self.batch(self.users[rows], self.items[rows], self.ratings[rows], hide)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def predict(self, model: Any, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings (clipped when the task says so), in batches, with the model in eval mode."""
        was_training = model.training
        model.eval()
        device = model_device(model)
        out = np.empty(len(users), dtype=np.float64)
        try:
            for start in range(0, len(users), self.config.eval_batch_size):
                stop = start + self.config.eval_batch_size
                batch = self.batch(users[start:stop], items[start:stop], np.zeros(len(users[start:stop]), np.float32))
                out[start:stop] = model.predict(batch.to(device)).double().cpu().numpy()
        finally:
            model.train(was_training)
        if self.config.clip_predictions:
            np.clip(out, *self.config.rating_scale, out=out)
        return out

    def evaluate(self, model: Any, split: str = "valid", device: Any = "cpu") -> EvalResult:
        if split not in ("valid", "test"):
            raise ConfigError(f"split must be valid or test, got {split!r}")
        start = time.perf_counter()
        rows = np.flatnonzero(self.split_codes == SPLIT_CODES[split])
        errors = self.predict(model, self.users[rows], self.items[rows]) - self.ratings[rows]
        squared, absolute = errors**2, np.abs(errors)
        mse = float(squared.mean()) if len(rows) else float("nan")
        return EvalResult(
            {"mse": mse, "rmse": float(np.sqrt(mse)), "mae": float(absolute.mean()) if len(rows) else float("nan")},
            {"mse": squared, "mae": absolute},
            rows,
            len(rows),
            0,
            time.perf_counter() - start,
            protocol=self.protocol,
            unit="rating",
        )

    # ------------------------------------------------------------------ using a trained model
    def recommend(
        self, model: Any, user: int, k: int, include_seen: bool = False, with_reasons: bool = False
    ) -> list[Recommendation]:
        """The user's ``k`` unrated items (rated in no split, unless ``include_seen``) by predicted rating,
        ties by item index; with reasons, NRPA's strongest word of the item's most attended review."""
        items = np.arange(self.dataset.num_items)
        if not include_seen:
            rated = self.dataset.matrix("train", "valid", "test")[user].indices
            items = np.setdiff1d(items, rated)
        scores = self.predict(model, np.full(len(items), user, dtype=np.int64), items)
        order = np.lexsort((items, -scores))[:k]
        picked = items[order]
        reasons = self._reasons(model, user, picked) if with_reasons else [None] * len(picked)
        return [Recommendation(int(i), float(s), r) for i, s, r in zip(picked, scores[order], reasons)]

    def _reasons(self, model: Any, user: int, items: np.ndarray) -> list[tuple[str, float] | None]:
        attention = getattr(model, "attention", None)
        if attention is None or self.corpus is None or not len(items):
            return [None] * len(items)
        weights = self._attention(model, np.full(len(items), user, dtype=np.int64), items)
        out: list[tuple[str, float] | None] = []
        for row, item in enumerate(items):
            slot = int(np.argmax(weights["item_reviews"][row]))
            review = int(self.corpus.item_docs[item, slot])
            if review == NO_REVIEW:
                out.append(None)
                continue
            if "item_words" in weights:
                word_weights = weights["item_words"][row, slot]
                position = int(np.argmax(word_weights))
                word = self.corpus.words[int(self.corpus.tokens[review, position])]
                out.append((f"'{word}' in a review of this item", float(word_weights[position])))
            else:
                out.append(("its most attended review", float(weights["item_reviews"][row, slot])))
        return out

    @torch.no_grad()
    def _attention(self, model: Any, users: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
        was_training = model.training
        model.eval()
        try:
            batch = self.batch(users, items, np.zeros(len(users), np.float32)).to(model_device(model))
            return {k: v.cpu().numpy() for k, v in model.attention(batch).items()}
        finally:
            model.train(was_training)

    def explain(self, model: Any, user: int, item: int | None, out_dir: Path | None) -> Explanation:
        if item is None:
            raise ConfigError("the rating task explains one (user, item) prediction: pass an item")
        if getattr(model, "attention", None) is None or self.corpus is None:
            raise FusionrecError(
                f"{type(model).__name__} has no attention over reviews; nrpa (words and reviews) and narre "
                "(reviews) explain their ratings"
            )
        users, items = np.array([user]), np.array([item])
        weights = self._attention(model, users, items)
        score = float(self.predict(model, users, items)[0])
        user_id, item_id = str(self.dataset.user_ids[user]), str(self.dataset.item_ids[item])
        explanation = Explanation(f"user {user_id}, item {item_id} (predicted rating)", score)
        sides = [("user", "user's", self.corpus.user_docs[user]), ("item", "item's", self.corpus.item_docs[item])]
        for side, possessive, docs in sides:
            review_weights = weights[f"{side}_reviews"][0]
            labels, values = [], []
            for slot, review in enumerate(docs):
                if review != NO_REVIEW:
                    labels.append(self._review_label(int(review), side))
                    values.append(float(review_weights[slot]))
            explanation.weights[f"the {possessive} reviews"] = labelled(labels, values)
            if f"{side}_words" in weights and values:
                slot = int(np.argmax(review_weights))
                explanation.weights[f"words of the {possessive} top review"] = self._word_weights(
                    int(docs[slot]), weights[f"{side}_words"][0, slot]
                )
        if out_dir is not None:
            path = Path(out_dir) / f"rating_{_safe(user_id)}_{_safe(item_id)}.html"
            path.parent.mkdir(parents=True, exist_ok=True)
            page = self._html(explanation.subject, weights, sides)
            write_with(path, lambda p: _write_text(p, page))
            explanation.details["html"] = str(path)
            explanation.images.append(str(path))  # the CLI and serving list it with the heat maps
        return explanation

    def _texts(self) -> ReviewCorpus:
        """The corpus, for the explanation helpers (only reached for review models, which have one)."""
        assert self.corpus is not None
        return self.corpus

    def _review_label(self, review: int, side: str) -> str:
        corpus = self._texts()
        other = (
            self.dataset.item_ids[corpus.review_item[review]]
            if side == "user"
            else self.dataset.user_ids[corpus.review_user[review]]
        )
        words = corpus.words_of(review)
        preview = " ".join(words[:8]) + (" ..." if len(words) > 8 else "")
        return f"{'on item' if side == 'user' else 'by user'} {other}: {preview}"

    def _word_weights(self, review: int, word_weights: np.ndarray) -> dict[str, float]:
        """``{word: weight}`` of one review (a repeated word adds up its positions' weights)."""
        corpus = self._texts()
        total: dict[str, float] = {}
        for position, word_id in enumerate(corpus.tokens[review]):
            if word_id:
                word = corpus.words[int(word_id)]
                total[word] = total.get(word, 0.0) + float(word_weights[position])
        return labelled(list(total), list(total.values()))

    def _html(self, subject: str, weights: dict[str, np.ndarray], sides: list[tuple[str, str, np.ndarray]]) -> str:
        """A page with each document's reviews, most attended first, words shaded by their weight."""
        corpus = self._texts()
        parts = [f"<html><meta charset='utf-8'><body style='font-family:sans-serif'><h2>{html.escape(subject)}</h2>"]
        for side, possessive, docs in sides:
            parts.append(f"<h3>The {possessive} reviews (review weight, words shaded by word weight)</h3>")
            review_weights = weights[f"{side}_reviews"][0]
            for slot in np.argsort(-review_weights, kind="stable"):
                review = int(docs[slot])
                if review == NO_REVIEW:
                    continue
                word_weights = weights.get(f"{side}_words")
                row = word_weights[0, slot] if word_weights is not None else None
                top = float(row.max()) if row is not None and row.max() > 0 else 1.0
                spans = []
                for position, word_id in enumerate(corpus.tokens[review]):
                    if word_id:
                        alpha = 0.0 if row is None else float(row[position]) / top
                        word = html.escape(corpus.words[int(word_id)])
                        spans.append(f"<span style='background:rgba(255,170,0,{alpha:.3f})'>{word}</span>")
                parts.append(
                    f"<p><b>{float(review_weights[slot]):.3f}</b> "
                    f"{html.escape(self._review_label(review, side).split(':')[0])}: {' '.join(spans)}</p>"
                )
        parts.append("</body></html>")
        return "\n".join(parts)


def _safe(raw: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in raw)[:40]


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
