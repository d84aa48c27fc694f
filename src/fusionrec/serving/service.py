"""A trained run answering questions: the logic behind ``fusionrec serve``, free of HTTP.

One :class:`Service` holds a run's model, data set and task in memory (loaded once) and answers
``recommend`` (a known user, or a new user given only a history), ``similar``, ``explain``, ``metadata``
and ``health`` with JSON-able dicts. Raw ids are looked up in hash indexes built at start. Every bad
question raises :class:`RequestError` (an HTTP status and one line); nothing is ever written to the run
directory: explanation heat maps go to a scratch folder of the service.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fusionrec.api import Run, load_run
from fusionrec.errors import FusionrecError
from fusionrec.models.base import EmbeddingScorer
from fusionrec.retrieval import top_k_items
from fusionrec.serving.ann import AnnIndex, build_index
from fusionrec.tasks.base import Task
from fusionrec.tasks.ranking import RankingTask

MAX_K = 1000  # a larger k is a bulk export (`fusionrec recommend --all`), not a request


class RequestError(FusionrecError):
    """A question the service cannot answer: ``status`` is the HTTP status (400, 404, 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ItemFilter:
    """Keep the items whose ``column`` (of the data set's item table) contains ``value`` (text columns,
    case-insensitive, e.g. ``genres`` contains ``comedy``) or equals it (numeric columns)."""

    column: str
    value: str


class Service:
    """A loaded run and what it can answer. Thread-safe: scoring is read-only, explanations are serialised."""

    def __init__(self, run: Run, ann: str = "auto", ann_k: int = 10) -> None:
        self.run, self.dataset, self.task, self.model = run, run.dataset, run.task, run.model
        ds = self.dataset
        self.users = pd.Index(np.asarray(ds.user_ids).astype(str))
        self.items = pd.Index(np.asarray(ds.item_ids).astype(str))
        self.titles = ds.item_titles()
        self.seen = ds.matrix("train", "valid", "test")
        self.images = self._image_paths()
        self.factors = self._factors()
        self.answer = self.task.recommender(self.model)  # graph propagation etc. once, not per request
        self._explain_lock = threading.Lock()
        self.scratch = Path(tempfile.mkdtemp(prefix="fusionrec-serve-"))
        self.started = time.time()
        self.index: AnnIndex | None = None
        if self.factors is not None and ann != "none":
            self.index = build_index(self.factors, ann, self.seen, ann_k)

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, ann: str = "auto", ann_k: int = 10) -> Service:
        path = Path(run_dir)
        if not (path / "record.json").exists():
            raise FusionrecError(
                f"{path}: not a run directory (no record.json); pass the folder `fusionrec train` wrote"
            )
        return cls(load_run(path), ann, ann_k)

    # ------------------------------------------------------------------ facts
    def health(self) -> dict[str, Any]:
        return {"status": "ok", "uptime_s": round(time.time() - self.started, 1)}

    def metadata(self) -> dict[str, Any]:
        rec, ds = self.run.record, self.dataset
        metrics = rec.get("metrics") or {}
        return {
            "run": str(self.run.run_dir),
            "model": rec.get("config", {}).get("model", {}).get("name") or type(self.model).__name__,
            "task": self.task.name,
            "protocol": self.task.protocol,
            "data": {
                "name": ds.name,
                "fingerprint": (rec.get("data") or {}).get("fingerprint"),
                "users": ds.num_users,
                "items": ds.num_items,
                "interactions": ds.num_interactions,
                "modalities": sorted(ds.modalities),
                "images": int(sum(p is not None for p in self.images)),
            },
            "metrics": {"valid": metrics.get("best_valid") or metrics.get("valid"), "test": metrics.get("test")},
            "scoring": self.index.describe() if self.index is not None else {"kind": "exact"},
            "can": {
                "history": type(self.task).recommend_from_history is not Task.recommend_from_history,
                "similar": self.factors is not None or bool(ds.modalities),
            },
        }

    def user_history(self, user: str, limit: int = 50) -> list[dict[str, Any]]:
        """The items ``user`` interacted with (latest first where the data has time), for the explorer."""
        u = self._user(user)
        inter = self.dataset.interactions
        rows = inter[inter["user"].to_numpy() == u]
        if "timestamp" in rows:
            rows = rows.sort_values("timestamp", ascending=False, kind="stable")
        return [self._item_card(int(i)) for i in rows["item"].to_numpy()[:limit]]

    def some_users(self, limit: int = 20) -> list[str]:
        counts = np.diff(self.seen.indptr)
        busiest = np.argsort(-counts, kind="stable")[:limit]
        return [str(self.users[i]) for i in busiest]

    # ------------------------------------------------------------------ questions
    def recommend(
        self,
        user: str,
        k: int = 10,
        exclude_seen: bool = True,
        filters: list[ItemFilter] | None = None,
        with_reasons: bool = False,
    ) -> dict[str, Any]:
        k = _check_k(k)
        u = self._user(user)
        allowed = self._allowed(filters or [])
        start = time.perf_counter()
        if self.index is not None and not with_reasons:
            seen = self.seen[[u]] if exclude_seen else None
            items, scores = self.index.search(u, k, seen, allowed)
            how = self.index.kind
        else:
            recs = self._exact(u, k, exclude_seen, allowed, with_reasons)
            items, scores = [r.item for r in recs], [r.score for r in recs]
            reasons = [r.reason for r in recs]
            how = "exact"
        out = [self._item_card(i, s) for i, s in zip(items, scores)]
        if with_reasons and how == "exact":
            for card, reason in zip(out, reasons):
                card["reason"] = None if reason is None else {"label": reason[0], "weight": reason[1]}
        return {"user": user, "k": k, "scoring": how, "ms": _ms(start), "items": out}

    def recommend_history(self, history: list[str], k: int = 10, with_reasons: bool = False) -> dict[str, Any]:
        """A new user's recommendations from the items it interacted with (most recent last)."""
        k = _check_k(k)
        if not history:
            raise RequestError(422, "history is empty: give the items the user interacted with, most recent last")
        known = [h for h in history if h in self.items]
        unknown = [h for h in history if h not in self.items]
        if not known:
            raise RequestError(
                404, f"none of the history's items is in {self.dataset.name} (unknown: {', '.join(unknown[:5])})"
            )
        start = time.perf_counter()
        try:
            recs = self.task.recommend_from_history(
                self.model, [int(self.items.get_loc(h)) for h in known], k, with_reasons
            )
        except FusionrecError as exc:
            raise RequestError(422, str(exc)) from None
        out = []
        for r in recs:
            card = self._item_card(r.item, r.score)
            if with_reasons:
                card["reason"] = None if r.reason is None else {"label": r.reason[0], "weight": r.reason[1]}
            out.append(card)
        return {"history_used": known, "history_unknown": unknown, "k": k, "ms": _ms(start), "items": out}

    def similar(self, item: str, k: int = 10) -> dict[str, Any]:
        """Items nearest to ``item`` by cosine: the model's item vectors where its score is an inner
        product, else the first content modality of the data set."""
        k = _check_k(k)
        i = self._item(item)
        vectors, by = self._item_vectors()
        v = torch.nn.functional.normalize(vectors, dim=1)
        sims = v @ v[i]  # (I,)
        sims[i] = -torch.inf
        top = torch.topk(sims, min(k, len(sims) - 1))
        return {
            "item": self._item_card(i),
            "by": by,
            "items": [self._item_card(int(j), float(s)) for j, s in zip(top.indices, top.values)],
        }

    def explain(self, user: str, item: str | None = None) -> dict[str, Any]:
        u = self._user(user)
        i = None if item is None else self._item(item)
        out_dir = self.scratch / f"{u}-{'none' if i is None else i}"
        with self._explain_lock:  # heat maps are drawn with matplotlib, which is not thread-safe
            try:
                explanation = self.task.explain(self.model, u, i, out_dir)
            except FusionrecError as exc:
                raise RequestError(422, str(exc)) from None
        body = explanation.to_dict()
        body["images"] = [f"{out_dir.name}/{Path(p).name}" for p in explanation.images]
        return body

    def explanation_image(self, name: str) -> Path:
        path = (self.scratch / name).resolve()
        if self.scratch.resolve() not in path.parents or not path.is_file():
            raise RequestError(404, f"no explanation image {name!r}")
        return path

    def item_image(self, item: str) -> Path:
        path = self.images[self._item(item)]
        if path is None:
            raise RequestError(404, f"item {item!r} has no image in {self.dataset.name}")
        return path

    # ------------------------------------------------------------------ bulk
    def recommend_all(self, k: int, batch_size: int = 1024, progress: Any = None) -> pd.DataFrame:
        """Every user's top-``k`` unseen items: one row per (user, rank) (``fusionrec recommend --all``);
        batched for the full-ranking families, user by user through the task for the others."""
        k = _check_k(k)
        if self.dataset.num_users == 0:
            raise FusionrecError(
                f"{self.dataset.name} has no users to list: a {self.task.name} run answers one query at a time "
                "(`fusionrec recommend RUN_DIR --user QUERY`)"
            )
        if not isinstance(self.task, RankingTask):
            return self._recommend_each(k, progress)
        scorer = self._scorer()
        frames = []
        for start in range(0, self.dataset.num_users, batch_size):
            users = torch.arange(start, min(start + batch_size, self.dataset.num_users))
            with torch.no_grad():
                items, scores = top_k_items(scorer, users, k, self.seen[users.numpy()], exclude_rows="aligned")
            rows = items >= 0
            frames.append(
                pd.DataFrame(
                    {
                        "user": np.repeat(self.users[users.numpy()], k)[rows.flatten().numpy()],
                        "rank": np.tile(np.arange(1, k + 1), len(users))[rows.flatten().numpy()],
                        "item": self.items[items[rows].numpy()],
                        "score": scores[rows].numpy(),
                    }
                )
            )
            if progress is not None:
                progress(len(users))
        return pd.concat(frames, ignore_index=True)

    def _recommend_each(self, k: int, progress: Any = None) -> pd.DataFrame:
        """Every user's top-``k`` through the task's own ``recommend`` (ctr, rating, news, ...)."""
        rows: list[tuple[str, int, str, float]] = []
        for u in range(self.dataset.num_users):
            recs = self.answer(u, k, False, False)
            rows += [(str(self.users[u]), rank, str(self.items[r.item]), r.score) for rank, r in enumerate(recs, 1)]
            if progress is not None:
                progress(1)
        return pd.DataFrame(rows, columns=["user", "rank", "item", "score"])

    # ------------------------------------------------------------------ helpers
    def _user(self, user: str) -> int:
        """The task's index for ``user``: a raw user id, or what the family asks instead (the kg task's
        queries ``"ENTITY RELATION"`` and ``"ENTITY RELATION^-1"``)."""
        try:
            resolved = self.task.resolve_user(self.dataset, user)
        except FusionrecError as exc:
            raise RequestError(404, str(exc)) from None
        if resolved is not None:
            return resolved
        if user not in self.users:
            raise RequestError(
                404, f"unknown user {user!r} in {self.dataset.name} (ids look like {', '.join(self.users[:3])})"
            )
        return int(self.users.get_loc(user))

    def _item(self, item: str) -> int:
        if item not in self.items:
            raise RequestError(
                404, f"unknown item {item!r} in {self.dataset.name} (ids look like {', '.join(self.items[:3])})"
            )
        return int(self.items.get_loc(item))

    def _item_card(self, i: int, score: float | None = None) -> dict[str, Any]:
        card: dict[str, Any] = {"item": str(self.items[i]), "title": self.titles[i] if self.titles else None}
        if score is not None:
            card["score"] = float(score)
        card["image"] = self.images[i] is not None
        return card

    def _allowed(self, filters: list[ItemFilter]) -> np.ndarray | None:
        if not filters:
            return None
        table = self.dataset.items
        keep = np.ones(self.dataset.num_items, dtype=bool)
        for f in filters:
            if table is None or f.column not in table:
                have = ", ".join(map(str, table.columns)) if table is not None else "no item table"
                raise RequestError(422, f"filter on {f.column!r}: the item table has no such column (have: {have})")
            column = table[f.column]
            if pd.api.types.is_numeric_dtype(column):
                try:
                    keep &= (column.to_numpy() == float(f.value)) & column.notna().to_numpy()
                except ValueError:
                    raise RequestError(422, f"filter {f.column}={f.value!r}: {f.column} is numeric") from None
            else:
                keep &= column.astype(str).str.contains(f.value, case=False, regex=False).to_numpy()
        return keep

    def _scorer(self) -> Any:
        scorer = getattr(self.task, "scorer", None)
        return scorer(self.model, "next") if callable(scorer) else self.model.scorer()

    def _exact(self, u: int, k: int, exclude_seen: bool, allowed: np.ndarray | None, with_reasons: bool) -> list[Any]:
        if allowed is None:
            return self.answer(u, k, not exclude_seen, with_reasons)
        # a filter: rank every item, then keep the allowed ones (the task's own exclusions still apply)
        ranked = [r for r in self.answer(u, self.dataset.num_items, not exclude_seen, False) if allowed[r.item]][:k]
        if not with_reasons or not ranked:
            return ranked
        reasons = {r.item: r for r in self.answer(u, self.dataset.num_items, not exclude_seen, True)}
        return [reasons.get(r.item, r) for r in ranked]

    def _item_vectors(self) -> tuple[torch.Tensor, str]:
        if self.factors is not None:
            return self.factors.item_emb.detach().float(), "the model's item vectors"
        for name, modality in self.dataset.modalities.items():
            values = torch.tensor(modality.values)  # a copy: the store's arrays are read-only
            return values.reshape(len(values), -1), f"content: the {name} modality"
        raise RequestError(422, "this model has no item vectors and the data set no content modality to compare")

    def _factors(self) -> EmbeddingScorer | None:
        with torch.no_grad():
            scorer = self.model.scorer() if _is_pair_model(self.task) else None
        return scorer if isinstance(scorer, EmbeddingScorer) else None

    def _image_paths(self) -> list[Path | None]:
        table = self.dataset.items
        if table is None or "image_path" not in table:
            return [None] * self.dataset.num_items
        return [Path(p) if isinstance(p, str) and Path(p).is_file() else None for p in table["image_path"]]


def _is_pair_model(task: Any) -> bool:
    """Whether the model scores (user, item) pairs from its own state (top-K), not from a history."""
    return not callable(getattr(task, "scorer", None))


def _check_k(k: int) -> int:
    if not isinstance(k, int) or k <= 0:
        raise RequestError(422, f"k must be a positive integer, got {k!r}")
    if k > MAX_K:
        raise RequestError(422, f"k={k} is above {MAX_K}; export every user's list with `fusionrec recommend --all`")
    return k


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
