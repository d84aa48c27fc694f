"""One training step (forward, backward, optimiser) of BPR, or of SASRec under a sampled loss, with dense and
with sparse embedding gradients, as the embedding tables grow: what ``train.sparse_embeddings`` changes.

With dense gradients every step zeroes, fills and updates the whole tables, so a step's cost grows with
the catalogue; with sparse ones it costs what the batch touches. Tables of U users and U / 2.5 items
(the synthetic data set's ratio), embedding dimension 64, batches of 2,048 random (user, positive,
negative) triples; each figure is the mean over ``--steps`` steps after 5 warm-up steps. ``--model sasrec``:
SASRec's item table (U / 2.5 items, 2 blocks, hidden 64), batches of 128 full sequences of 50 items with
``--negatives`` sampled negatives per target (``bce`` for one, else ``sampled_ce``), or per batch with ``--shared``.

Usage::

    .venv/bin/python benchmarks/perf/embedding_steps.py [--users 5000 50000 500000] [--threads 1] [--steps 25] \
        [--model bpr|sasrec] [--negatives 100] [--shared]
"""

from __future__ import annotations

import argparse
import time

import torch

from fusionrec.data.batches import PairBatch, SequenceBatch
from fusionrec.models.sequential.sasrec import SASRec
from fusionrec.models.topk.bpr import BPR
from fusionrec.training.config import TrainConfig
from fusionrec.training.optim import build_optimizer

SETTINGS = [("adam", False), ("adam", True), ("adagrad", False), ("adagrad", True)]


def sequence_batch(num_items: int, batch_size: int, length: int, negatives: int, shared: bool) -> SequenceBatch:
    items = torch.randint(0, num_items, (batch_size, length + 1))
    positions = torch.arange(length - 1, -1, -1).expand(batch_size, -1)
    sampled = (
        torch.randperm(num_items)[:negatives]
        if shared
        else torch.randint(0, num_items, (batch_size, length, negatives))
    )
    return SequenceBatch(torch.arange(batch_size), items[:, :-1], positions, items[:, 1:], sampled)


def step_ms(
    num_users: int,
    optimizer: str,
    sparse: bool,
    steps: int,
    batch_size: int,
    model_name: str = "bpr",
    negatives: int = 100,
    shared: bool = False,
) -> float:
    torch.manual_seed(0)
    num_items = int(num_users / 2.5)
    if model_name == "sasrec":
        model = SASRec(num_items, loss="bce" if negatives == 1 else "sampled_ce")
        batches = [sequence_batch(num_items, batch_size, 50, negatives, shared) for _ in range(steps + 5)]
    else:
        model = BPR(num_users, num_items, embedding_dim=64)
        batches = [
            PairBatch(
                torch.randint(0, num_users, (batch_size,)),
                torch.randint(0, num_items, (batch_size,)),
                torch.randint(0, num_items, (batch_size, 1)),
            )
            for _ in range(steps + 5)
        ]
    opt = build_optimizer(model, TrainConfig(optimizer=optimizer, lr=0.01, sparse_embeddings=sparse))

    def step(batch: PairBatch) -> None:
        opt.zero_grad(set_to_none=True)
        model.loss(batch).loss.backward()
        opt.step()

    for batch in batches[:5]:
        step(batch)
    start = time.perf_counter()
    for batch in batches[5:]:
        step(batch)
    return (time.perf_counter() - start) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[5_000, 50_000, 500_000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: 2,048 pairs (bpr), 128 sequences (sasrec)"
    )
    parser.add_argument("--model", choices=["bpr", "sasrec"], default="bpr")
    parser.add_argument("--negatives", type=int, default=100, help="sasrec: sampled negatives per target")
    parser.add_argument("--shared", action="store_true", help="sasrec: the negatives are shared by the batch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batch_size = args.batch_size or (128 if args.model == "sasrec" else 2048)
    print("| users | items | " + " | ".join(f"{o} {'sparse' if s else 'dense'} ms/step" for o, s in SETTINGS) + " |")
    print("|---|---|" + "---|" * len(SETTINGS))
    for users in args.users:
        cells = [
            f"{step_ms(users, o, s, args.steps, batch_size, args.model, args.negatives, args.shared):.1f}"
            for o, s in SETTINGS
        ]
        print(f"| {users:,} | {int(users / 2.5):,} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
