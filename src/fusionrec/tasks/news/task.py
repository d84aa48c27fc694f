"""The ``news`` task: impressions (MIND format), npratio training, per-impression AUC/MRR/nDCG.

Data: a news data set (:func:`fusionrec.data.readers.mind.build_news_dataset`): the news are the
items, the record table ``impressions`` (one row per impression: user, time, clicked history,
candidates, 0/1 labels, split) carries the split.

Training: every click of a training impression is one sample: the clicked news and ``task.npratio``
non-clicked news of the same impression (drawn without replacement, per epoch; an impression with
fewer shows them all and pads), softmax cross-entropy over the 1 + K (MIND's protocol). The history
is the impression's clicked history, truncated to the latest ``task.max_history`` and masked.

Protocol: each valid/test impression with at least one click and one non-click is scored on its own
candidates; AUC, MRR, nDCG@5, nDCG@10 (MIND scorer's definitions, :mod:`.metrics`) averaged over
impressions. Impressions without a click or without a non-click are skipped and counted.

Leakage rules (tested in ``tests/news``): training samples come from training impressions only;
the vocabulary of title words is built from the news that training impressions show (history or
candidates), so a word first seen in a held-out news is unknown; an impression's history holds only
clicks from before its time (the builders construct it so; ``meta["history_leaks"]`` counts
violations, and the task refuses a data set with any); the split is one global time cut (or per user,
in time order, for DKN's log), so no training impression is later than a test one; selection reads
valid, test is read once at the end of a run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch
from pydantic import Field

from fusionrec.data.dataset import SPLIT_CODES
from fusionrec.errors import ConfigError, DataError, FusionrecError
from fusionrec.metrics.full_ranking import EvalResult
from fusionrec.models.base import Recommender
from fusionrec.models.news.common import NEWS_TEXT_KEY, NewsBatch, NewsModel, NewsText
from fusionrec.registry import TASKS
from fusionrec.tasks.base import Explanation, Recommendation, Task, TaskConfig, labelled, model_device
from fusionrec.tasks.news.metrics import METRICS, impression_metrics

_WORD = re.compile(r"[\w']+")


class NewsTaskConfig(TaskConfig):
    """The ``task:`` section of the news task."""

    npratio: int = Field(4, gt=0, description="non-clicked news per click in training (K)")
    max_history: int = Field(50, gt=0, description="latest clicked news kept as the history (N)")
    title_length: int = Field(30, gt=0, description="title words kept per news")
    eval_candidates: int = Field(8192, gt=0, description="padded candidates per evaluation batch (memory bound)")


def tokenize(text: str) -> list[str]:
    return _WORD.findall(str(text).lower())


def ragged(lists: Any) -> tuple[np.ndarray, np.ndarray]:
    """(flat int64 values, offsets (n + 1,)) of a column of lists."""
    lengths = np.fromiter((len(v) for v in lists), np.int64, len(lists))
    parts = [np.asarray(v, dtype=np.int64) for v in lists if len(v)]
    flat = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return flat, np.concatenate([[0], np.cumsum(lengths)])


def gather_padded(
    flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray, pad: int, width: int | None = None, latest: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a ragged array as a padded (len(rows), W) matrix and its mask; ``latest`` keeps the last
    ``width`` entries of each row, right-aligned (most recent last)."""
    starts, lengths = offsets[rows], offsets[rows + 1] - offsets[rows]
    width = int(lengths.max(initial=0)) if width is None else width
    kept = np.minimum(lengths, width)
    if latest:
        starts = starts + lengths - kept
    cols = np.arange(max(width, 1))[None, :]
    shift = (width - kept)[:, None] if latest else 0
    pos = cols - shift
    mask = (pos >= 0) & (pos < kept[:, None])
    index = np.where(mask, starts[:, None] + pos, 0)
    values = np.where(mask, flat[index] if len(flat) else pad, pad)
    return values[:, :width] if width else values[:, :0], mask[:, :width] if width else mask[:, :0]


@TASKS.register(
    "news",
    config=NewsTaskConfig,
    description="news impressions (MIND): npratio training; per-impression AUC, MRR, nDCG@5/10",
)
class NewsTask(Task):
    name = "news"
    default_batch_size = 64
    default_metric = "auc"
    METRICS: ClassVar[tuple[str, ...]] = METRICS

    @classmethod
    def build(cls, config: NewsTaskConfig, train: Any, dataset: Any, model_config: Any = None) -> NewsTask:
        return cls(dataset, config, train.batch_size or cls.default_batch_size, train.seed, train.metric or "auc")

    @classmethod
    def check_data(cls, dataset: Any) -> None:
        if dataset.split_records != "impressions":
            raise DataError(
                f"{dataset.name}: the news task needs impressions (a MIND folder, a DKN folder, or the built-ins "
                "news-synthetic, bing-news-dkn, news-movielens-posters); this data set has none"
            )
        empty = [s for s, n in dataset.record_split_sizes().items() if n == 0]
        if empty:
            raise DataError(
                f"{dataset.name}: no {empty[0]} impressions; the news task trains, selects and tests on all three"
            )
        leaks = int(dataset.meta.get("history_leaks", 0))
        if leaks:
            raise DataError(
                f"{dataset.name}: {leaks} history entries are clicks made at the impression's time or later "
                "(a history must hold earlier clicks only); rebuild the histories from earlier clicks"
            )

    @classmethod
    def check_metric(cls, config: Any, metric: str) -> None:
        if metric not in METRICS:
            raise ConfigError(f"train.metric={metric!r}: the news task reports {', '.join(METRICS)}")

    @classmethod
    def reported_metrics(cls, config: Any, metric: str) -> list[str]:
        return list(METRICS)

    def __init__(
        self, dataset: Any, config: NewsTaskConfig, batch_size: int = 64, seed: int = 0, metric: str = "auc"
    ) -> None:
        self.dataset, self.config = dataset, config
        self.batch_size, self.seed, self.metric = batch_size, seed, metric
        table = dataset.tables["impressions"]
        self.table = table
        self.pad = dataset.num_items
        self.users = table["user"].to_numpy().astype(np.int64)
        self.times = table["time"].to_numpy()
        self.splits = table["split"].to_numpy()
        self.hist_flat, self.hist_off = ragged(table["history"])
        self.cand_flat, self.cand_off = ragged(table["candidates"])
        self.label_flat, label_off = ragged(table["labels"])
        if not np.array_equal(label_off, self.cand_off):
            raise DataError(f"{dataset.name}: an impression has a different number of labels and candidates")
        row_of = np.repeat(np.arange(len(table)), np.diff(self.cand_off))
        clicks = np.bincount(row_of, weights=self.label_flat, minlength=len(table)).astype(np.int64)
        shown = np.diff(self.cand_off)
        self.scorable = (clicks > 0) & (clicks < shown)
        # training samples: every click of a training impression that has a non-click
        train_rows = (self.splits == SPLIT_CODES["train"]) & self.scorable
        is_click = self.label_flat > 0
        sample = is_click & train_rows[row_of]
        self.sample_row = row_of[sample]
        self.sample_news = self.cand_flat[sample]
        neg = ~is_click
        self.neg_flat = self.cand_flat[neg]
        self.neg_off = np.concatenate([[0], np.cumsum(np.bincount(row_of[neg], minlength=len(table)))])
        self.text = self._tokenize(train_rows)
        dataset.meta[NEWS_TEXT_KEY] = self.text  # what the models are built from
        skipped = {s: int(((self.splits == c) & ~self.scorable).sum()) for s, c in SPLIT_CODES.items()}
        self.protocol = (
            f"per-impression AUC (ties half), MRR, nDCG@5/10 over each impression's own candidates (MIND scorer; "
            f"MRR/nDCG ties: non-clicked first); impressions without a click or a non-click skipped "
            f"(train {skipped['train']}, valid {skipped['valid']}, test {skipped['test']}); training: 1 click + "
            f"{config.npratio} non-clicked of its impression, softmax CE; history: latest {config.max_history} clicks, masked"
        )

    def _tokenize(self, train_rows: np.ndarray) -> NewsText:
        """Word ids of every title; the vocabulary comes from the news training impressions show."""
        items = self.dataset.items
        titles = (
            items["title"].fillna("").astype(str).tolist()
            if items is not None and "title" in items
            else [""] * self.pad
        )
        tokens = [tokenize(t)[: self.config.title_length] for t in titles]
        seen = np.zeros(self.pad, dtype=bool)
        rows = np.flatnonzero(train_rows)
        for flat, off in ((self.hist_flat, self.hist_off), (self.cand_flat, self.cand_off)):
            lengths = off[rows + 1] - off[rows]
            index = np.repeat(off[rows], lengths) + (
                np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            )
            seen[flat[index]] = True
        vocab = ["<pad>", "<unk>", *sorted({w for i in np.flatnonzero(seen) for w in tokens[i]})]
        index_of = {w: i for i, w in enumerate(vocab)}
        ids = np.zeros((self.pad + 1, self.config.title_length), dtype=np.int64)
        for i, words in enumerate(tokens):
            ids[i, : len(words)] = [index_of.get(w, 1) for w in words]
        return NewsText(ids, vocab)

    # ------------------------------------------------------------------ training
    @property
    def num_batches(self) -> int:
        return -(-len(self.sample_row) // self.batch_size)

    def _history(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        values, mask = gather_padded(
            self.hist_flat, self.hist_off, rows, self.pad, self.config.max_history, latest=True
        )
        width = max(1, int(mask.sum(1).max(initial=0)))  # drop all-padding columns on the left
        return torch.from_numpy(values[:, -width:].copy()), torch.from_numpy(mask[:, -width:].copy())

    def train_batches(self, epoch: int) -> Iterator[NewsBatch]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.sample_row))
        K = self.config.npratio
        for start in range(0, len(order), self.batch_size):
            picked = order[start : start + self.batch_size]
            rows = self.sample_row[picked]
            counts = self.neg_off[rows + 1] - self.neg_off[rows]
            keys = rng.random((len(rows), max(int(counts.max(initial=0)), K)))
            keys[np.arange(keys.shape[1])[None, :] >= counts[:, None]] = np.inf
            draw = np.argsort(keys, axis=1)[:, :K]  # K distinct non-clicks (all of them when fewer)
            valid = np.arange(K)[None, :] < counts[:, None]
            negatives = np.where(valid, self.neg_flat[np.where(valid, self.neg_off[rows][:, None] + draw, 0)], self.pad)
            candidates = np.concatenate([self.sample_news[picked][:, None], negatives], 1)
            mask = np.concatenate([np.ones((len(rows), 1), bool), valid], 1)
            labels = np.zeros(candidates.shape, np.float32)
            labels[:, 0] = 1.0
            history, history_mask = self._history(rows)
            yield NewsBatch(
                torch.from_numpy(self.users[rows]),
                history,
                history_mask,
                torch.from_numpy(candidates.astype(np.int64)),
                torch.from_numpy(mask),
                torch.from_numpy(labels),
            )

    # ------------------------------------------------------------------ evaluation
    def impression_batch(self, rows: np.ndarray) -> NewsBatch:
        """The batch of impressions ``rows`` (table positions) with all their candidates."""
        candidates, mask = gather_padded(self.cand_flat, self.cand_off, rows, self.pad)
        labels, _ = gather_padded(self.label_flat, self.cand_off, rows, 0)
        history, history_mask = self._history(rows)
        return NewsBatch(
            torch.from_numpy(self.users[rows]),
            history,
            history_mask,
            torch.from_numpy(candidates.astype(np.int64)),
            torch.from_numpy(mask),
            torch.from_numpy(labels.astype(np.float32)),
        )

    def split_rows(self, split: str) -> np.ndarray:
        if split not in ("valid", "test"):
            raise ConfigError(f"the news task evaluates valid or test, not {split!r}")
        return np.flatnonzero((self.splits == SPLIT_CODES[split]) & self.scorable)

    def _chunks(self, rows: np.ndarray) -> Iterator[np.ndarray]:
        shown = self.cand_off[rows + 1] - self.cand_off[rows]
        start = 0
        while start < len(rows):
            end, widest = start, 0
            while end < len(rows) and max(widest, shown[end]) * (end - start + 1) <= self.config.eval_candidates:
                widest = max(widest, shown[end])
                end += 1
            end = max(end, start + 1)
            yield rows[start:end]
            start = end

    @torch.no_grad()
    def evaluate(self, model: Recommender, split: str = "valid", device: str | torch.device = "cpu") -> EvalResult:
        start = time.perf_counter()
        rows = self.split_rows(split)
        was_training = model.training
        model.eval()
        parts: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
        try:
            for chunk in self._chunks(rows):
                batch = self.impression_batch(chunk)
                scores = model.score(batch.to(device)).float().cpu().numpy()
                values = impression_metrics(scores, batch.labels.numpy(), batch.candidate_mask.numpy())
                for m in METRICS:
                    parts[m].append(values[m])
        finally:
            model.train(was_training)
        per = {m: np.concatenate(v) if v else np.zeros(0) for m, v in parts.items()}
        skipped = int(((self.splits == SPLIT_CODES[split]) & ~self.scorable).sum())
        return EvalResult(
            {m: float(v.mean()) if len(v) else float("nan") for m, v in per.items()},
            per,
            rows,
            len(rows),
            skipped,
            time.perf_counter() - start,
            protocol=self.protocol,
            unit="impression",
        )

    # ------------------------------------------------------------------ using a trained model
    def latest_history(self, user: int) -> list[int]:
        """The clicked history of the user's latest impression plus that impression's clicks."""
        rows = np.flatnonzero(self.users == user)
        if not len(rows):
            raise FusionrecError(f"user index {user} has no impressions in {self.dataset.name}")
        last = rows[np.argmax(self.times[rows])]
        history = self.hist_flat[self.hist_off[last] : self.hist_off[last + 1]].tolist()
        shown = slice(self.cand_off[last], self.cand_off[last + 1])
        return history + self.cand_flat[shown][self.label_flat[shown] > 0].tolist()

    def _score(self, model: Recommender, history: list[int], candidates: np.ndarray) -> np.ndarray:
        device = model_device(model)
        keep = history[-self.config.max_history :] or [self.pad]
        hist = torch.tensor([keep])
        hist_mask = torch.tensor([[bool(history)] * len(keep)])
        out = []
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for s in range(0, len(candidates), 4096):
                    cand = torch.from_numpy(candidates[s : s + 4096].astype(np.int64))[None]
                    batch = NewsBatch(
                        torch.zeros(1, dtype=torch.long),
                        hist,
                        hist_mask,
                        cand,
                        torch.ones_like(cand, dtype=torch.bool),
                        torch.zeros(cand.shape),
                    )
                    out.append(model.score(batch.to(device))[0].float().cpu().numpy())
        finally:
            model.train(was_training)
        return np.concatenate(out) if out else np.zeros(0)

    def recommend_from_history(
        self, model: Recommender, items: list[int], k: int, with_reasons: bool = False
    ) -> list[Recommendation]:
        candidates = np.setdiff1d(np.arange(self.pad), np.asarray(items, dtype=np.int64))
        scores = self._score(model, list(items), candidates)
        best = np.lexsort((candidates, -scores))[:k]
        return [Recommendation(int(candidates[i]), float(scores[i])) for i in best]

    def recommend(
        self, model: Recommender, user: int, k: int, include_seen: bool = False, with_reasons: bool = False
    ) -> list[Recommendation]:
        """The ``k`` news with the best scores given the user's latest history (its news left out unless
        ``include_seen``); ties: lower index first."""
        history = self.latest_history(user)
        candidates = np.arange(self.pad) if include_seen else np.setdiff1d(np.arange(self.pad), history)
        scores = self._score(model, history, candidates)
        best = np.lexsort((candidates, -scores))[:k]
        return [Recommendation(int(candidates[i]), float(scores[i])) for i in best]

    def explain(self, model: Recommender, user: int, item: int | None, out_dir: Path | None) -> Explanation:
        """For (user, candidate): the weights over the clicked history, the candidate's title words and,
        with an image branch, its image regions (a heat map PNG over the image in ``out_dir``)."""
        history = self.latest_history(user)[-self.config.max_history :]
        if item is None:
            item = self.recommend(model, user, 1)[0].item
        titles = self.dataset.item_titles() or [str(i) for i in self.dataset.item_ids]
        hist = torch.tensor([history or [self.pad]])
        batch = NewsBatch(
            torch.tensor([user]),
            hist,
            torch.tensor([[bool(history)] * hist.shape[1]]),
            torch.tensor([[item]]),
            torch.ones(1, 1, dtype=torch.bool),
            torch.zeros(1, 1),
        ).to(model_device(model))
        model.eval()
        with torch.no_grad():
            score = float(model.score(batch)[0, 0])
            weights = {k: v.float().cpu().numpy() for k, v in cast(NewsModel, model).attention(batch).items()}
        explanation = Explanation(f"user {self.dataset.user_ids[user]} -> {titles[item]}", score)
        if history:
            names = [f"{i}. {titles[n]}" for i, n in enumerate(history)]
            explanation.weights["clicked history"] = labelled(names, weights["history"][-len(history) :].tolist())
            for key in [k for k in weights if k.startswith("history ")]:
                explanation.vectors[key] = weights[key][-len(history) :].tolist()
        words = [self.text.vocab[w] for w in self.text.ids[item] if w > 0]
        if words:
            explanation.weights["title words"] = labelled(
                [f"{i}. {w}" for i, w in enumerate(words)], weights["title"][: len(words)].tolist()
            )
        if "regions" in weights:
            regions = weights["regions"]
            explanation.vectors["image regions"] = regions.tolist()
            if out_dir is not None:
                from fusionrec.render import heatmap, region_overlay

                path = Path(out_dir) / f"news_{self.dataset.item_ids[item]}_regions.png"
                drawn = region_overlay(self.dataset, item, regions, path)
                if drawn is None:
                    side = int(round(np.sqrt(len(regions))))
                    grid = regions.reshape(side, side) if side * side == len(regions) else regions[None]
                    drawn = heatmap(
                        grid,
                        [str(r) for r in range(grid.shape[0])],
                        path,
                        "image region weights",
                        [str(c) for c in range(grid.shape[1])],
                        "grid row",
                        "grid column",
                    )
                explanation.images.append(drawn)
        explanation.details["item"] = str(self.dataset.item_ids[item])
        return explanation
