"""The ``outfit`` task: outfit compatibility (FITB, compatibility AUC), personalised outfit generation and
top-bottom matching with comments.

Data: a canonical outfit data set (:mod:`fusionrec.data.readers.polyvore`): ``tables["outfits"]`` carries the
split; ``fitb`` and ``compat`` hold the questions of valid and test outfits, drawn once with the data set's seed
and stored; ``histories`` (synthetic users) and ``pairs`` (top, bottom, comment) when the data set has them.

Protocols (``task.protocol``; ``auto``: the model's own):

- ``compatibility``: FITB accuracy over the stored questions (4 same-category candidates; ties: a question
  whose answer ties with t others for the best score counts 1/(t+1)), and compatibility AUC of the real
  outfits against their stored swapped copies (ties count half). Per-outfit values: ``fitb`` and the pairwise
  win of the real outfit over its copy (``auc``), for paired tests.
- ``generation``: every held-out user record (history, target outfit o_1..o_n in category order): at each step t
  the model ranks o_t among ``task.candidates`` items of its category from the record's split (drawn once with
  ``task.question_seed``) given the history and o_<t (``hit@1``, ``hit@10``, ``mrr``; realistic ranks); then it
  generates the outfit greedily slot by slot from the same candidate pools given its own previous picks
  (``gen_hit``: share of o's items it picks). The generated outfits are kept (``last_generated``).
- ``matching``: every held-out top-bottom pair: the true bottom among itself and ``task.candidates - 1`` bottoms
  of the split (``match_auc``, ``match_mrr``); a model that writes comments (:meth:`generate_comments`) is scored
  by corpus BLEU-4 and ROUGE-L F1 against the pair's comment (``bleu``, ``rouge_l``).

Training batches follow the model's ``objective``: ``outfits`` (training outfits, each with a copy whose items
are swapped for random training items of the same category, drawn per epoch; under ``matching``: training
top-bottom pairs with a random training bottom), ``users`` (training user records), ``pairs`` (training pairs).

Leakage rules (tested in ``tests/outfit``): training batches, swaps, negatives, name vocabularies and comment
targets come from training outfits / records only; valid and test questions draw their candidates from their own
split's items; user histories are drawn from training outfits' items only (on Polyvore an item belongs to one
outfit, so a history never holds a held-out target's item); selection reads valid, test is read once per run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from fusionrec.data.dataset import SPLIT_CODES
from fusionrec.data.readers.polyvore import item_categories, split_pools
from fusionrec.errors import ConfigError, DataError, FusionrecError
from fusionrec.metrics.full_ranking import EvalResult
from fusionrec.metrics.generation import corpus_bleu, corpus_rouge_l, words
from fusionrec.models.outfit.base import OutfitBatch
from fusionrec.registry import TASKS
from fusionrec.tasks.base import Explanation, Recommendation, Task, TaskConfig, labelled

Protocol = Literal["auto", "compatibility", "generation", "matching"]
METRICS = {
    "compatibility": ["fitb", "auc"],
    "generation": ["hit@10", "hit@1", "mrr", "gen_hit"],
    "matching": ["match_auc", "match_mrr", "bleu", "rouge_l"],
}


class OutfitTaskConfig(TaskConfig):
    """The ``task:`` section of the outfit task."""

    protocol: Protocol = Field("auto", description="compatibility, generation, matching; auto: the model's own")
    candidates: int = Field(50, gt=1, description="candidates per generation step / per matching question")
    question_seed: int = Field(0, description="seed of the generation and matching candidates (fixed per data set)")
    max_items: int = Field(8, gt=1, description="items per outfit kept (longer outfits are cut)")


def _pad(rows: list[list[int]], length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    length = length or max((len(r) for r in rows), default=1)
    items = np.zeros((len(rows), max(length, 1)), dtype=np.int64)
    mask = np.zeros_like(items, dtype=bool)
    for b, row in enumerate(rows):
        items[b, : len(row)] = row[:length]
        mask[b, : len(row)] = True
    return torch.from_numpy(items), torch.from_numpy(mask)


def realistic_rank(scores: torch.Tensor, target: int = 0) -> torch.Tensor:
    """(B,) rank of column ``target`` of scores (B, C): 1 + better + half the ties (others)."""
    true = scores[:, target : target + 1]
    better = (scores > true).sum(1).float()
    ties = (scores == true).sum(1).float() - 1
    return 1 + better + ties / 2


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """AUC of positive against negative scores, ties counting half."""
    both = np.concatenate([positive, negative])
    order = both.argsort(kind="stable")
    ranks = np.empty(len(both))
    sorted_scores = both[order]
    # average ranks of ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / max(n_pos * n_neg, 1))


@TASKS.register(
    "outfit",
    config=OutfitTaskConfig,
    description="outfits: FITB + compatibility AUC; personalised generation hit rate; top-bottom matching + comments",
)
class OutfitTask(Task):
    name = "outfit"
    default_batch_size = 64
    default_metric = "fitb"

    @classmethod
    def build(cls, config: OutfitTaskConfig, train: Any, dataset: Any, model_config: Any) -> OutfitTask:
        objective = getattr(type(model_config), "objective", "outfits")
        protocol = (
            config.protocol if config.protocol != "auto" else getattr(type(model_config), "protocol", "compatibility")
        )
        metric = train.metric or METRICS[protocol][0]
        if metric not in METRICS[protocol]:
            raise ConfigError(
                f"train.metric={metric!r}: the outfit task's {protocol} protocol reports {', '.join(METRICS[protocol])}"
            )
        return cls(dataset, config, train.batch_size or cls.default_batch_size, train.seed, metric, protocol, objective)

    @classmethod
    def check_data(cls, dataset: Any) -> None:
        if dataset.meta.get("split_records") != "outfits" or "outfits" not in dataset.tables:
            raise DataError(
                f"{dataset.name}: the outfit task needs outfits (a Polyvore or POG folder, or polyvore-mcn / "
                "outfit-synthetic); this data set has none"
            )
        sizes = dataset.record_split_sizes()
        empty = [s for s, n in sizes.items() if n == 0]
        if empty:
            raise DataError(
                f"{dataset.name}: no {empty[0]} outfits; the outfit task trains, selects and tests on all three"
            )

    @classmethod
    def check_metric(cls, config: Any, metric: str) -> None:
        every = [m for ms in METRICS.values() for m in ms]
        if metric not in every:
            raise ConfigError(f"train.metric={metric!r}: the outfit task reports {', '.join(every)}")

    @classmethod
    def reported_metrics(cls, config: Any, metric: str) -> list[str]:
        if config.protocol != "auto":
            return list(METRICS[config.protocol])
        return next((list(ms) for ms in METRICS.values() if metric in ms), list(METRICS["compatibility"]))

    def __init__(
        self,
        dataset: Any,
        config: OutfitTaskConfig,
        batch_size: int,
        seed: int,
        metric: str,
        protocol: str = "compatibility",
        objective: str = "outfits",
    ) -> None:
        self.dataset, self.config, self.batch_size, self.seed, self.metric = dataset, config, batch_size, seed, metric
        self.protocol_name, self.objective = protocol, objective
        outfits = dataset.tables["outfits"]
        self.outfits = [[int(i) for i in its][: config.max_items] for its in outfits["items"]]
        self.outfit_split = outfits["split"].to_numpy()
        self.categories = item_categories(dataset)
        self.pools = split_pools(dataset)
        self.train_outfits = np.flatnonzero(self.outfit_split == 0)
        self.histories = dataset.tables.get("histories")
        self.pairs = dataset.tables.get("pairs")
        if protocol == "generation" or objective == "users":
            if self.histories is None or not (self.histories["split"] == 0).any():
                raise DataError(
                    f"{dataset.name}: the generation protocol needs user histories (tables['histories']); "
                    "polyvore-mcn and outfit-synthetic plant synthetic users (data.options.num_users)"
                )
        if protocol == "matching" or objective == "pairs":
            if self.pairs is None or not (self.pairs["split"] == 0).any():
                raise DataError(f"{dataset.name}: the matching protocol needs top-bottom pairs (tables['pairs'])")
        self.last_generated: list[list[int]] = []
        self.protocol = {
            "compatibility": "FITB over stored questions (4 same-category candidates from the outfit's split; ties "
            "share the point) and compatibility AUC against stored same-category swaps (ties half)",
            "generation": f"per held-out user record: next-item rank among {config.candidates} same-category items "
            "of the split (hit@1/10, MRR, realistic ties) and greedy generation (gen_hit)",
            "matching": f"true bottom among {config.candidates} bottoms of the split (AUC, MRR, realistic ties); "
            "comments: corpus BLEU-4, ROUGE-L F1",
        }[protocol]

    # ------------------------------------------------------------------ training
    def _train_rows(self) -> np.ndarray:
        if self.objective == "users":
            assert self.histories is not None
            return np.flatnonzero(self.histories["split"].to_numpy() == 0)
        if self.objective == "pairs" or self.protocol_name == "matching":
            assert self.pairs is not None
            return np.flatnonzero(self.pairs["split"].to_numpy() == 0)
        return self.train_outfits

    @property
    def num_batches(self) -> int:
        return -(-len(self._train_rows()) // self.batch_size)

    def _swap(self, rng: np.random.Generator, outfit: list[int], split: int = 0) -> list[int]:
        out = []
        for item in outfit:
            pool = self.pools[(split, int(self.categories[item]))]
            out.append(int(pool[rng.integers(len(pool))]) if len(pool) else item)
        return out

    def train_batches(self, epoch: int) -> Iterator[OutfitBatch]:
        rng = np.random.default_rng([self.seed, epoch])
        rows = self._train_rows()[rng.permutation(len(self._train_rows()))]
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            if self.objective == "users":
                assert self.histories is not None
                items, mask = _pad([self.outfits[int(self.histories["outfit"].iloc[r])] for r in chunk])
                history, history_mask = _pad([list(self.histories["history"].iloc[r]) for r in chunk])
                yield OutfitBatch(items, mask, history=history, history_mask=history_mask)
            elif self.objective == "pairs" or self.protocol_name == "matching":
                assert self.pairs is not None
                tops = self.pairs["top"].to_numpy()[chunk]
                bottoms = self.pairs["bottom"].to_numpy()[chunk]
                pool = self.pools[(0, int(self.categories[bottoms[0]]))]
                wrong = pool[rng.integers(len(pool), size=len(chunk))]
                items = torch.from_numpy(np.stack([tops, bottoms], 1).astype(np.int64))
                negatives = torch.from_numpy(np.stack([tops, wrong], 1).astype(np.int64))
                rows_t = torch.from_numpy(chunk.astype(np.int64))
                yield OutfitBatch(items, torch.ones_like(items, dtype=torch.bool), negatives, rows=rows_t)
            else:
                yield self._outfit_batch(rng, chunk)

    def _outfit_batch(self, rng: np.random.Generator, chunk: np.ndarray) -> OutfitBatch:
        outfits = [self.outfits[r] for r in chunk]
        items, mask = _pad(outfits)
        negatives, _ = _pad([self._swap(rng, o) for o in outfits], items.shape[1])
        return OutfitBatch(items, mask, negatives)

    def outfit_batches(self, epoch: int) -> Iterator[OutfitBatch]:
        """Batches of training outfits (with swapped copies) whatever the model's objective: a two-stage model's
        pre-training (POG's FOM) reads them in ``on_fit_start``."""
        rng = np.random.default_rng([self.seed, epoch, 3])
        rows = self.train_outfits[rng.permutation(len(self.train_outfits))]
        for start in range(0, len(rows), self.batch_size):
            yield self._outfit_batch(rng, rows[start : start + self.batch_size])

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, model: Any, split: str = "valid", device: Any = "cpu") -> EvalResult:
        if split not in ("valid", "test"):
            raise ConfigError(f"the outfit task evaluates valid or test, not {split!r}")
        start = time.perf_counter()
        model.eval()
        with torch.no_grad():
            metrics, per_unit, units = getattr(self, f"_evaluate_{self.protocol_name}")(
                model, SPLIT_CODES[split], device
            )
        return EvalResult(
            metrics,
            per_unit,
            units,
            len(units),
            0,
            time.perf_counter() - start,
            protocol=self.protocol,
            unit={"compatibility": "outfit", "generation": "record", "matching": "pair"}[self.protocol_name],
        )

    def _evaluate_compatibility(self, model: Any, code: int, device: Any) -> tuple[dict, dict, np.ndarray]:
        fitb = self.dataset.tables["fitb"]
        fitb = fitb[fitb["split"] == code]
        kept = np.asarray([b < len(self.outfits[int(r)]) for r, b in zip(fitb["outfit"], fitb["blank"])], dtype=bool)
        fitb = fitb[kept]  # a blank beyond task.max_items is not asked (Polyvore outfits have at most 5 items)
        outfits = [self.outfits[int(r)] for r in fitb["outfit"]]
        blanks = torch.tensor(fitb["blank"].to_numpy(), dtype=torch.long)
        candidates = torch.tensor(np.stack(fitb["candidates"].to_numpy()).astype(np.int64))
        answers = torch.tensor(fitb["answer"].to_numpy(), dtype=torch.long)
        correct = []
        for s in range(0, len(outfits), 256):
            items, mask = _pad(outfits[s : s + 256])
            scores = (
                model.fill_scores(
                    items.to(device),
                    mask.to(device),
                    blanks[s : s + 256].to(device),
                    candidates[s : s + 256].to(device),
                )
                .float()
                .cpu()
            )
            truth = scores.gather(1, answers[s : s + 256, None])
            best = scores.max(1, keepdim=True).values
            ties = (scores == best).sum(1).float()
            correct.append(torch.where(truth[:, 0] >= best[:, 0], 1.0 / ties, torch.zeros_like(ties)))
        fitb_values = torch.cat(correct).numpy().astype(np.float64) if correct else np.zeros(0)
        compat = self.dataset.tables["compat"]
        compat = compat[compat["split"] == code]
        scores_list = []
        rows = [list(map(int, r))[: self.config.max_items] for r in compat["items"]]
        for s in range(0, len(rows), 256):
            items, mask = _pad(rows[s : s + 256])
            scores_list.append(model.outfit_scores(items.to(device), mask.to(device)).float().cpu())
        scores = torch.cat(scores_list).numpy().astype(np.float64)
        labels = compat["label"].to_numpy()
        auc = roc_auc(scores[labels == 1], scores[labels == 0])
        by_outfit: dict[int, list[float]] = {}
        for outfit, label, score in zip(compat["outfit"].to_numpy(), labels, scores):
            by_outfit.setdefault(int(outfit), [0.0, 0.0])[1 - int(label)] = float(score)
        win = {o: 1.0 if p > n else 0.5 if p == n else 0.0 for o, (p, n) in by_outfit.items()}
        question = dict(zip(fitb["outfit"].astype(int), fitb_values))
        units = np.asarray(sorted(set(question) & set(win)), dtype=np.int64)
        per_unit = {"fitb": np.asarray([question[u] for u in units]), "auc": np.asarray([win[u] for u in units])}
        return {"fitb": float(fitb_values.mean()) if len(fitb_values) else 0.0, "auc": auc}, per_unit, units

    def _candidates(self, rng: np.random.Generator, true: int, code: int, exclude: list[int]) -> list[int]:
        pool = self.pools[(code, int(self.categories[true]))]
        pool = pool[~np.isin(pool, exclude)]
        k = min(self.config.candidates - 1, len(pool))
        return [true, *rng.choice(pool, size=k, replace=False).tolist()] if k else [true]

    def generation_questions(self, code: int) -> tuple[np.ndarray, list[list[int]], list[list[list[int]]]]:
        """(record rows, target outfits, per slot candidates (true first)) of a split: drawn with the question seed."""
        assert self.histories is not None
        rng = np.random.default_rng([self.config.question_seed, 5, code])
        rows = np.flatnonzero(self.histories["split"].to_numpy() == code)
        targets = [self.outfits[int(self.histories["outfit"].iloc[r])] for r in rows]
        cands = [[self._candidates(rng, item, code, target) for item in target] for target in targets]
        return rows, targets, cands

    def _evaluate_generation(self, model: Any, code: int, device: Any) -> tuple[dict, dict, np.ndarray]:
        assert self.histories is not None
        rows, targets, cands = self.generation_questions(code)
        history, history_mask = _pad([list(self.histories["history"].iloc[r]) for r in rows])
        history, history_mask = history.to(device), history_mask.to(device)
        length = max(len(t) for t in targets)
        ranks = np.full((len(rows), length), np.nan)
        generated: list[list[int]] = [[] for _ in rows]
        for t in range(length):
            alive = np.asarray([b for b, target in enumerate(targets) if len(target) > t])
            width = max(len(cands[b][t]) for b in alive)
            cand = torch.tensor([cands[b][t] + [cands[b][t][0]] * (width - len(cands[b][t])) for b in alive])
            for prefixes, store in (([targets[b][:t] for b in alive], "rank"), ([generated[b] for b in alive], "gen")):
                prefix, prefix_mask = _pad([p or [0] for p in prefixes], max(t, 1))
                if t == 0:
                    prefix_mask[:] = False
                scores = (
                    model.next_scores(
                        prefix.to(device), prefix_mask.to(device), cand.to(device), history[alive], history_mask[alive]
                    )
                    .float()
                    .cpu()
                )
                if store == "rank":
                    ranks[alive, t] = realistic_rank(scores).numpy()
                else:
                    picks = cand.gather(1, scores.argmax(1, keepdim=True))[:, 0]
                    for b, item in zip(alive, picks.tolist()):
                        generated[b].append(int(item))
        self.last_generated = generated
        valid = ~np.isnan(ranks)
        per_record = {
            "hit@1": np.asarray([(r[v] <= 1).mean() for r, v in zip(ranks, valid)]),
            "hit@10": np.asarray([(r[v] <= 10).mean() for r, v in zip(ranks, valid)]),
            "mrr": np.asarray([(1 / r[v]).mean() for r, v in zip(ranks, valid)]),
            "gen_hit": np.asarray([len(set(g) & set(t)) / len(t) for g, t in zip(generated, targets)]),
        }
        return {k: float(v.mean()) for k, v in per_record.items()}, per_record, rows.astype(np.int64)

    def matching_questions(self, code: int) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        """(pair rows, tops (P,), bottoms (P, C) true first) of a split, drawn with the question seed."""
        assert self.pairs is not None
        rng = np.random.default_rng([self.config.question_seed, 9, code])
        rows = np.flatnonzero(self.pairs["split"].to_numpy() == code)
        tops = self.pairs["top"].to_numpy()[rows]
        bottoms = [self._candidates(rng, int(b), code, [int(b)]) for b in self.pairs["bottom"].to_numpy()[rows]]
        width = min(len(b) for b in bottoms)
        return rows, torch.from_numpy(tops.astype(np.int64)), torch.tensor([b[:width] for b in bottoms])

    def _evaluate_matching(self, model: Any, code: int, device: Any) -> tuple[dict, dict, np.ndarray]:
        assert self.pairs is not None
        rows, tops, bottoms = self.matching_questions(code)
        scores = torch.cat(
            [
                model.match_scores(tops[s : s + 256].to(device), bottoms[s : s + 256].to(device)).float().cpu()
                for s in range(0, len(rows), 256)
            ]
        )
        true = scores[:, :1]
        negatives = scores.shape[1] - 1
        auc = ((scores[:, 1:] < true).float().sum(1) + 0.5 * (scores[:, 1:] == true).float().sum(1)) / max(negatives, 1)
        per = {
            "match_auc": auc.numpy().astype(np.float64),
            "match_mrr": (1 / realistic_rank(scores)).numpy().astype(np.float64),
        }
        metrics = {k: float(v.mean()) for k, v in per.items()}
        if hasattr(model, "generate_comments"):
            comments = []
            for s in range(0, len(rows), 256):
                comments += model.generate_comments(tops[s : s + 256].to(device), bottoms[s : s + 256, 0].to(device))
            references = self.pairs["comment"].to_numpy()[rows]
            metrics.update(self.comment_scores(comments, references))
            self.last_comments = comments
        return metrics, per, rows.astype(np.int64)

    @staticmethod
    def comment_scores(hypotheses: list[str], references: Any) -> dict[str, float]:
        """Corpus BLEU-4 and mean ROUGE-L F1 of comments against one reference each."""
        hyp = [words(h) for h in hypotheses]
        refs = [[words(str(r))] for r in references]
        return {"bleu": corpus_bleu(hyp, refs), "rouge_l": corpus_rouge_l(hyp, refs)}

    def retrieval_comments(self, split: str = "test") -> list[str]:
        """The retrieval baseline's comments: for each held-out pair, the comment of the training pair whose top and
        bottom names share the most words with it (Jaccard of the word sets; ties: the first training pair)."""
        assert self.pairs is not None
        names = self.dataset.items["title"].astype(str).tolist()
        bag = [set(words(names[t]) + words(names[b])) for t, b in zip(self.pairs["top"], self.pairs["bottom"])]
        train = np.flatnonzero(self.pairs["split"].to_numpy() == 0)
        held = np.flatnonzero(self.pairs["split"].to_numpy() == SPLIT_CODES[split])
        comments = self.pairs["comment"].astype(str).to_numpy()
        out = []
        for r in held:
            sims = [len(bag[r] & bag[t]) / max(len(bag[r] | bag[t]), 1) for t in train]
            out.append(str(comments[train[int(np.argmax(sims))]]))
        return out

    # ------------------------------------------------------------------ using a trained model
    def outfit_row(self, user: int) -> int:
        """The row in ``tables["outfits"]`` of user index ``user`` (the data set's users are its outfits)."""
        raw = str(self.dataset.user_ids[int(user)])
        rows = np.flatnonzero(self.dataset.tables["outfits"]["outfit"].astype(str).to_numpy() == raw)
        if not len(rows):
            raise ConfigError(f"{raw!r} is not an outfit of {self.dataset.name}")
        return int(rows[0])

    def recommend(
        self, model: Any, user: int, k: int, include_seen: bool = False, with_reasons: bool = False
    ) -> list[Recommendation]:
        """For outfit index ``user`` (the data set's users are outfits): the ``k`` items of the categories it lacks
        that fit it best, among the items of the outfit's split."""
        if getattr(model, "needs_history", False):
            raise FusionrecError(
                f"{type(model).__name__} generates outfits for a user's history, and this data set's users are outfits: "
                "ask with a history (serving's cold-user request, Task.recommend_from_history)"
            )
        row = self.outfit_row(user)
        outfit = self.outfits[row]
        code = int(self.outfit_split[row])
        have = {int(self.categories[i]) for i in outfit}
        pool = np.concatenate(
            [p for (s, c), p in self.pools.items() if s == code and c not in have] or [np.zeros(0, dtype=np.int64)]
        )
        if not len(pool):
            return []
        items, mask = _pad([outfit])
        with torch.no_grad():
            scores = model.eval().next_scores(items, mask, torch.from_numpy(pool.astype(np.int64))[None])[0]
        top = torch.topk(scores, min(k, len(pool)))
        return [Recommendation(int(pool[int(i)]), float(s)) for i, s in zip(top.indices, top.values)]

    def recommend_from_history(
        self, model: Any, items: list[int], k: int, with_reasons: bool = False
    ) -> list[Recommendation]:
        """An outfit generated for a history (clicked item indices): one item per category in ``meta["categories"]``
        order (at most ``k``), each the best of its category's items given the history and the items picked before,
        the history's items excluded (POG reads the history; the non-personalised models ignore it)."""
        if not items:
            raise FusionrecError("an outfit is generated from a history of at least one clicked item")
        history, history_mask = _pad([list(items)])
        picked: list[int] = []
        out = []
        model.eval()
        for category in range(len(self.dataset.meta["categories"]))[:k]:
            pool = np.setdiff1d(np.flatnonzero(self.categories == category), items)
            if not len(pool):
                continue
            prefix, prefix_mask = _pad([picked or [0]])
            if not picked:
                prefix_mask[:] = False
            with torch.no_grad():
                scores = model.next_scores(prefix, prefix_mask, torch.from_numpy(pool)[None], history, history_mask)[0]
            best = int(scores.argmax())
            picked.append(int(pool[best]))
            out.append(Recommendation(int(pool[best]), float(scores[best])))
        return out

    def explain(self, model: Any, user: int, item: int | None, out_dir: Path | None) -> Explanation:
        """For outfit ``user``: a model with ``blank_attention`` (FOM) shows which of the other items the blank (the
        slot of ``item``, default the first) attends to; NOR shows its mutual attention over the parts of a top and
        a bottom and its generated comment."""
        titles = self.dataset.item_titles() or [str(i) for i in self.dataset.item_ids]
        row = self.outfit_row(user)
        outfit = self.outfits[row]
        position = outfit.index(item) if item is not None and item in outfit else 0
        raw = self.dataset.tables["outfits"]["outfit"].iloc[row]
        slot = f", blank: {titles[outfit[position]]}" if hasattr(model, "blank_attention") else ""
        explanation = Explanation(f"outfit {raw}{slot}")
        items, mask = _pad([outfit])
        with torch.no_grad():
            model.eval()
            explanation.score = float(model.outfit_scores(items, mask)[0])
            if hasattr(model, "blank_attention"):
                weights = model.blank_attention(items, mask, torch.tensor([position]))[0]
                others = [i for k, i in enumerate(outfit) if k != position]
                explanation.weights["attention of the blank"] = labelled(
                    [titles[i] for i in others], [float(weights[k]) for k in range(len(outfit)) if k != position]
                )
            if hasattr(model, "mutual_attention"):
                top = next(
                    (i for i in outfit if self.dataset.meta["categories"][self.categories[i]] == "upper"), outfit[0]
                )
                bottom = next(
                    (i for i in outfit if self.dataset.meta["categories"][self.categories[i]] == "bottom"), outfit[-1]
                )
                details = model.mutual_attention(int(top), int(bottom))
                explanation.weights.update(details.pop("weights"))
                explanation.details.update(details)
        return explanation
