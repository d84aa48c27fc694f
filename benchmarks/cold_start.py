"""Cold-start items: can a model rank items that had no training interaction?

Split: ``cold_item`` (20% of items held out entirely: half valid, half test; every interaction with
them is a valid/test target). Training is the library's (uniform negatives over all items, so cold
items do appear as negatives). Evaluation ranks, for each user, only the held-out items of the
split: valid ranks the valid-cold items, test the test-cold items (every other item excluded).
The full-ranking protocol (``fusionrec train ... data.split.method=cold_item``) also ranks the
~1,350 warm items, which outscore every cold item for every model here (NDCG@20 ~0), so it says
nothing about the cold items themselves.

The epoch is chosen on validation (evaluated every ``--eval-every`` epochs), test is read once.

Usage:
    PYTHONPATH=src .venv/bin/python benchmarks/cold_start.py --model mgat --epochs 20 --lr 1e-3 \
        [--set weight_decay=1e-4] [--model-set num_layers=2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import scipy.sparse as sp
import torch

from fusionrec import models  # noqa: F401
from fusionrec.data import load_dataset
from fusionrec.metrics.full_ranking import evaluate_full_ranking
from fusionrec.registry import MODELS
from fusionrec.tasks.topk import TopKTask


def only(items: np.ndarray, num_users: int, num_items: int) -> sp.csr_matrix:
    """An exclusion matrix that leaves only ``items`` as candidates for every user."""
    others = np.setdiff1d(np.arange(num_items), items)
    rows = np.repeat(np.arange(num_users), len(others))
    cols = np.tile(others, num_users)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(num_users, num_items))


def parse(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--eval-every", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--set", nargs="*", default=[], help="optimiser options, e.g. weight_decay=1e-4")
    parser.add_argument("--model-set", nargs="*", default=[], help="model config overrides, e.g. num_layers=1")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dataset = load_dataset("ml-100k", split={"method": "cold_item"})
    U, I = dataset.num_users, dataset.num_items
    cold = {s: np.unique(dataset.matrix(s).indices) for s in ("valid", "test")}
    exclude = {s: only(cold[s], U, I) for s in cold}
    entry = MODELS.entry(args.model)
    model = entry.obj.from_dataset(entry.config(name=args.model, **parse(args.model_set)), dataset)
    task = TopKTask(dataset, batch_size=2048, num_negatives=1, seed=args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, **parse(args.set))

    def evaluate(split: str) -> dict:
        model.eval()
        with torch.no_grad():
            result = evaluate_full_ranking(model.scorer(), dataset.matrix(split), exclude[split], ks=(20,),
                                           metrics=("ndcg", "recall"))
        model.train()
        return result.metrics

    best, best_epoch, best_state, seconds = -1.0, 0, None, []
    for epoch in range(1, args.epochs + 1):
        model.train()
        model.on_epoch_start(epoch)
        start = time.perf_counter()
        for batch in task.train_batches(epoch):
            out = model.loss(batch)
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
        if epoch % args.eval_every == 0 or epoch == args.epochs:
            valid = evaluate("valid")
            print(f"epoch {epoch}: valid cold ndcg@20 {valid['ndcg@20']:.4f}", flush=True)
            if valid["ndcg@20"] > best:
                best, best_epoch, best_valid = valid["ndcg@20"], epoch, valid
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    test = evaluate("test")
    print(json.dumps({"model": args.model, "lr": args.lr, "set": args.set, "model_set": args.model_set,
                      "cold_items": {s: int(len(v)) for s, v in cold.items()}, "best_epoch": best_epoch,
                      "valid": best_valid, "test": test, "s_per_epoch": round(float(np.mean(seconds)), 2)}))


if __name__ == "__main__":
    main()
