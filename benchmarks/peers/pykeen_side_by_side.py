"""PyKEEN 1.11.1 and fusionrec side by side: the evaluator on one score matrix, and TransE / RotatE on one split.

Run with fusionrec's interpreter::

    .venv/bin/python benchmarks/peers/pykeen_side_by_side.py evaluator --data umls --json runs/pykeen-eval.json
    .venv/bin/python benchmarks/peers/pykeen_side_by_side.py train --data umls --model transe --epochs 30
    .venv/bin/python benchmarks/peers/pykeen_side_by_side.py train --data wn18rr --model rotate --epochs 5

``evaluator``: fusionrec builds the kg task on ``--data`` and, for every test triple, the head and the tail
query's scores against all entities from a randomly initialised DistMult, standardised and rounded to one
decimal so that many scores tie. fusionrec's task ranks them (filter: train+valid+test, realistic ties); PyKEEN ranks the very same
matrices with its own filtered evaluation step (``pykeen.evaluation.evaluator._evaluate_batch``: its sparse
positive filter, its ``RankBasedEvaluator``), and both report MRR, MR and Hits@1/3/10 of the realistic rank
(and the optimistic / pessimistic MRR, to show that the tie convention matters).

``train``: the identical split (fusionrec's entity and relation indices, handed to PyKEEN's
``TriplesFactory``), the same settings on both sides: dimension, Adam and its learning rate, batch size,
negatives per positive, loss (TransE: margin ranking, margin 1, L1 distance; RotatE: self-adversarial
negative sampling, margin gamma, temperature), a fixed number of epochs. Differences that remain: fusionrec
corrupts one side per positive (``task.directions=random``) where PyKEEN's basic sampler draws the side per
negative; fusionrec reports test at the epoch with the best validation MRR (evaluated every epoch), PyKEEN at the
last epoch (no early stopping). Seconds per epoch are training time only, one process, ``--threads`` threads.
PyKEEN runs in its own throwaway venv (``~/.cache/fusionrec-peers/pykeen-venv``), created on first use.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_venv import CACHE, ensure_venv, fusionrec_train, log, run_runner, save_json  # noqa: E402

INSTALL_STEPS = (("torch==2.13.0",), ("pykeen==1.11.1",))
CHECK = "import pykeen, torch; print('pykeen, torch =', pykeen.get_version(), torch.__version__)"
FUSIONREC = Path(sys.executable).with_name("fusionrec")
GAMMA, TEMPERATURE = 6.0, 0.5

EVALUATOR_RUNNER = r"""
import json, sys
import numpy as np, torch
from pykeen.evaluation import RankBasedEvaluator
from pykeen.evaluation.evaluator import _evaluate_batch

spec = json.load(open(sys.argv[1]))
data = np.load(spec["arrays"])
test = torch.as_tensor(data["test"])  # (N, 3) h, r, t
known = torch.as_tensor(data["known"])  # every true triple, all splits

class FixedScores:  # stands in for a model: returns the saved matrix of the asked side
    def predict(self, hrt_batch, target, slice_size=None, mode=None):
        return torch.as_tensor(data["tail_scores" if target == "tail" else "head_scores"]).clone()

evaluator = RankBasedEvaluator(filtered=True)
for target in ("head", "tail"):
    _evaluate_batch(batch=test, model=FixedScores(), target=target, evaluator=evaluator, slice_size=None,
                    all_pos_triples=known, relation_filter=None, restrict_entities_to=None, mode=None)
result = evaluator.finalize()
out = {name: float(result.get_metric(f"both.realistic.{key}")) for name, key in
       [("mrr", "inverse_harmonic_mean_rank"), ("mr", "arithmetic_mean_rank"), ("hits@1", "hits_at_1"),
        ("hits@3", "hits_at_3"), ("hits@10", "hits_at_10")]}
out["optimistic_mrr"] = float(result.get_metric("both.optimistic.inverse_harmonic_mean_rank"))
out["pessimistic_mrr"] = float(result.get_metric("both.pessimistic.inverse_harmonic_mean_rank"))
print("RESULT " + json.dumps(out))
"""

TRAIN_RUNNER = r"""
import json, sys, time
import numpy as np, torch
from pykeen.pipeline import pipeline
from pykeen.triples import TriplesFactory

spec = json.load(open(sys.argv[1]))
torch.set_num_threads(spec["threads"])
data = np.load(spec["arrays"])
entity_to_id = {f"e{i}": i for i in range(spec["num_entities"])}
relation_to_id = {f"r{i}": i for i in range(spec["num_relations"])}
factories = {split: TriplesFactory(torch.as_tensor(data[split]), entity_to_id=entity_to_id, relation_to_id=relation_to_id)
             for split in ("train", "valid", "test")}
if spec["model"] == "transe":
    model, model_kwargs, loss, loss_kwargs = "TransE", {"embedding_dim": spec["dim"], "scoring_fct_norm": 1}, "marginranking", {"margin": 1.0}
else:
    model, model_kwargs = "RotatE", {"embedding_dim": spec["dim"]}
    loss, loss_kwargs = "nssa", {"margin": spec["gamma"], "adversarial_temperature": spec["temperature"]}
result = pipeline(
    training=factories["train"], validation=factories["valid"], testing=factories["test"],
    model=model, model_kwargs=model_kwargs, loss=loss, loss_kwargs=loss_kwargs,
    optimizer="Adam", optimizer_kwargs={"lr": spec["lr"]},
    negative_sampler="basic", negative_sampler_kwargs={"num_negs_per_pos": spec["negatives"]},
    training_kwargs={"num_epochs": spec["epochs"], "batch_size": spec["batch_size"], "use_tqdm": False},
    evaluation_kwargs={"batch_size": 256, "use_tqdm": False},
    random_seed=spec["seed"], device="cpu",
)
get = result.metric_results.get_metric
print("RESULT " + json.dumps({
    "mrr": float(get("both.realistic.inverse_harmonic_mean_rank")), "mr": float(get("both.realistic.arithmetic_mean_rank")),
    "hits@1": float(get("both.realistic.hits_at_1")), "hits@10": float(get("both.realistic.hits_at_10")),
    "train_s_per_epoch": result.train_seconds / spec["epochs"], "epochs": spec["epochs"],
}))
"""


def build_task(data: str):
    from fusionrec.api import build_task, resolve_config
    from fusionrec.data.prepare import load_dataset

    dataset = load_dataset(data)
    run_config, model_config = resolve_config("distmult", data)
    return build_task(run_config, dataset, model_config)


def triples(task, rows: np.ndarray) -> np.ndarray:
    return np.stack([task.heads[rows], task.rels[rows], task.tails[rows]], axis=1).astype(np.int64)


def evaluator_check(args: argparse.Namespace, venv: Path, work: Path) -> dict:
    from fusionrec.metrics.link_prediction import filtered_ranks, rank_metrics, realistic
    from fusionrec.registry import MODELS

    task = build_task(args.data)
    torch.manual_seed(0)
    model = MODELS.get("distmult").from_dataset(MODELS.entry("distmult").config(name="distmult", dim=16), task.dataset)
    test = triples(task, task.split_rows("test"))
    R = task.num_relations
    with torch.no_grad():
        tail_scores = model.score_queries(torch.as_tensor(test[:, 0]), torch.as_tensor(test[:, 1]))
        head_scores = model.score_queries(torch.as_tensor(test[:, 2]), torch.as_tensor(test[:, 1] + R))
        scale = torch.cat([tail_scores, head_scores]).std()
        tail_scores, head_scores = (torch.round(s / scale, decimals=1) for s in (tail_scores, head_scores))  # ties

    table = _TableModel(test, tail_scores, head_scores, R)
    task_metrics = task.evaluate(table, "test").metrics  # fusionrec's own protocol on the fixed matrices
    queries = np.concatenate([test[:, 0], test[:, 2]]), np.concatenate([test[:, 1], test[:, 1] + R])
    answers = np.concatenate([test[:, 2], test[:, 0]])
    optimistic, pessimistic = filtered_ranks(
        table.score_queries, *queries, answers, task.known, num_entities=task.num_entities
    )
    fusionrec_metrics = rank_metrics(realistic(optimistic, pessimistic))
    fusionrec_metrics["optimistic_mrr"] = float(np.mean(1 / optimistic))
    fusionrec_metrics["pessimistic_mrr"] = float(np.mean(1 / pessimistic))
    known = triples(task, np.arange(len(task.heads)))
    np.savez(
        work / "arrays.npz", test=test, known=known, tail_scores=tail_scores.numpy(), head_scores=head_scores.numpy()
    )
    pykeen = run_runner(venv, EVALUATOR_RUNNER, {"arrays": str(work / "arrays.npz")}, work, args.threads, args.verbose)
    ties = float((tail_scores == tail_scores.gather(1, torch.as_tensor(test[:, 2:3]))).sum(1).float().mean() - 1)
    return {
        "data": args.data,
        "test_triples": len(test),
        "entities": task.num_entities,
        "mean_ties_per_tail_query": ties,
        "fusionrec": fusionrec_metrics,
        "fusionrec_task_evaluate": {k: task_metrics[k] for k in ("mrr", "mr", "hits@1", "hits@3", "hits@10")},
        "pykeen": pykeen,
        "max_abs_difference": max(abs(fusionrec_metrics[k] - pykeen[k]) for k in pykeen),
    }


class _TableModel(torch.nn.Module):
    """Answers the kg task's queries from the two saved matrices (looked up by query, not by position)."""

    def __init__(self, test: np.ndarray, tail_scores: torch.Tensor, head_scores: torch.Tensor, num_relations: int):
        super().__init__()
        self.rows = {}
        for i, (h, r, t) in enumerate(test.tolist()):
            self.rows.setdefault((h, r), tail_scores[i])
            self.rows.setdefault((t, r + num_relations), head_scores[i])

    def score_queries(self, entities, relations):
        return torch.stack([self.rows[(int(e), int(r))] for e, r in zip(entities, relations)]).clone()


def train_side_by_side(args: argparse.Namespace, venv: Path, work: Path) -> dict:
    task = build_task(args.data)
    arrays = {
        split: triples(task, np.flatnonzero(task.splits == code))
        for code, split in enumerate(("train", "valid", "test"))
    }
    np.savez(work / "split.npz", **arrays)
    spec = {
        "arrays": str(work / "split.npz"),
        "num_entities": task.num_entities,
        "num_relations": task.num_relations,
        "model": args.model,
        "dim": args.dim,
        "lr": args.lr,
        "negatives": args.negatives,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "gamma": GAMMA,
        "temperature": TEMPERATURE,
        "seed": args.seed,
        "threads": args.threads,
    }
    log(f"pykeen: {args.model} on {args.data}, {args.epochs} epochs")
    pykeen = run_runner(venv, TRAIN_RUNNER, spec, work, args.threads, args.verbose)
    run_dir = work / "fusionrec-run"
    cmd = [
        str(FUSIONREC), "train", "-m", args.model, "-d", args.data, "--run-dir", str(run_dir), "-q",
        f"model.dim={args.dim}", f"train.lr={args.lr}", f"train.batch_size={args.batch_size}",
        f"train.epochs={args.epochs}", f"train.patience={args.epochs}", f"train.seed={args.seed}",
        f"train.eval_every={args.eval_every}",
        f"train.num_threads={args.threads}", f"task.num_negatives={args.negatives}", "task.directions=random",
    ]  # fmt: skip
    if args.model == "rotate":
        cmd += [f"model.gamma={GAMMA}", f"model.temperature={TEMPERATURE}"]
    record = fusionrec_train(cmd, run_dir, args.threads, args.verbose)
    ours = {k: record["metrics"]["test"][k] for k in ("mrr", "mr", "hits@1", "hits@10")}
    ours["train_s_per_epoch"] = record["timings"]["train_s_per_epoch"]
    ours["best_epoch"] = record["best_epoch"]
    return {
        "data": args.data,
        "model": args.model,
        "settings": {k: spec[k] for k in ("dim", "lr", "negatives", "batch_size", "epochs", "seed", "threads")},
        "fusionrec": ours,
        "pykeen": pykeen,
        "s_per_epoch_ratio_fusionrec_over_pykeen": ours["train_s_per_epoch"] / pykeen["train_s_per_epoch"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["evaluator", "train"])
    parser.add_argument("--data", default="umls")
    parser.add_argument("--model", choices=["transe", "rotate"], default="transe")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--negatives", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--eval-every",
        type=int,
        default=1,
        help="fusionrec validates every N epochs (full ranking is slow at 40k entities)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    venv = CACHE / "pykeen-venv"
    ensure_venv(venv, INSTALL_STEPS, CHECK)
    with tempfile.TemporaryDirectory(prefix="pykeen-side-") as tmp:
        work = Path(tmp)
        result = evaluator_check(args, venv, work) if args.what == "evaluator" else train_side_by_side(args, venv, work)
    print(json.dumps(result, indent=1))
    save_json(args.json, result)


if __name__ == "__main__":
    main()
