"""Full-ranking cost of UVCAN (pairwise co-attention) and training cost of MCPTR / UVCAN vs LightGCN.

UVCAN's score of (u, i) comes from S co-attention steps over the pair, so full ranking costs
O(U x I x S x (L + M) x hidden) instead of one ``U @ I.T``. Three ways to rank all items of ml-100k's
valid users are timed (the full protocol of ``TopKTask.evaluate``):

- ``uvcan``: the model's ``scorer()``: ``StackedCoAttention.pairwise`` over item chunks, with every
  one-sided projection computed once and the states carried as mixing coefficients.
- ``uvcan-naive``: the same scores from ``StackedCoAttention.forward`` on explicitly expanded
  (user, item) pairs, chunked the same way (what a straightforward implementation does).
- ``lightgcn``: propagation + ``U @ I.T`` + masked top-k (the floor).

Then the co-attention alone with R image regions per item (random), factored vs naive, and one
training epoch each of LightGCN, MCPTR (one stage-1 epoch, one stage-2 epoch) and UVCAN.

Usage:
    PYTHONPATH=src .venv/bin/python benchmarks/pairwise_scoring_speed.py [--rounds 2] [--threads 1]

On a shared machine timings move with the load: rounds are interleaved and the minimum is reported.
"""

from __future__ import annotations

import argparse
import time

import torch

from fusionrec.api import build_model, build_task, resolve_config
from fusionrec.data.prepare import prepare
from fusionrec.data.store import load_dataset_dir

SPLIT = ["data.split.method=files", "data.split.path=shared:fixtures/ml100k-peer-split"]


def naive_scorer(model):
    """UVCAN scores from ``forward`` on expanded pairs (no factorisation), chunked like the model's."""
    regions = model.item_regions()  # (I, L, D)
    entries, valid = model.user_entries()  # (U, M, D), (U, M)

    def score(users, items):
        u1, _ = model.first_hop(users, entries[users], valid[users])  # (B, D)
        candidates = torch.arange(regions.shape[0]) if items is None else items
        chunk = max(1, model.score_budget // (len(users) * regions.shape[1] * regions.shape[2]))
        blocks = []
        for part in candidates.split(chunk):
            ia = torch.arange(len(users)).repeat_interleave(len(part))
            ib = part.repeat(len(users))
            out = model.co_attention(
                entries[users][ia],
                regions[ib],
                valid[users][ia],
                model.region_mask[ib],
                query_a=u1[ia],
                query_b=model.item_emb(ib),
            )
            blocks.append(model.predict(out.out, out.out_b).view(len(users), len(part)))
        return torch.cat(blocks, 1)

    return score


class Naive:
    """Wraps a UVCAN so that the task's evaluation uses ``naive_scorer``."""

    def __init__(self, model):
        self.model = model
        self.training = False

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def scorer(self):
        return naive_scorer(self.model)


def epoch_seconds(model, task, lr=1e-3):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    for batch in task.train_batches(1):
        out = model.loss(batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--regions", type=int, default=16, help="regions per item in the synthetic region case")
    parser.add_argument("--region-users", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    def setup(name, *overrides):
        run, cfg = resolve_config(name, "ml-100k", overrides=[*SPLIT, *overrides])
        dataset = load_dataset_dir(prepare(run.data))
        return build_model(cfg, dataset, 0), build_task(run, dataset, cfg)

    lightgcn, task = setup("lightgcn")
    uvcans = {
        f"uvcan S={s} hidden={h}": setup("uvcan", f"model.num_steps={s}", f"model.attention_dim={h}")[0]
        for s, h in ((1, 32), (2, 32), (1, 64))
    }
    evals: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, model in [("lightgcn", lightgcn), *uvcans.items()]:
            evals.setdefault(name, []).append(task.evaluate(model, "valid").seconds)
        first = next(iter(uvcans.values()))
        evals.setdefault("uvcan S=1 hidden=32 naive", []).append(task.evaluate(Naive(first), "valid").seconds)
    pairs = task.dataset.num_users * task.dataset.num_items
    print(
        f"full ranking of ml-100k valid users ({pairs:,} user-item pairs), {args.threads} thread(s), min of "
        f"{args.rounds}:"
    )
    for name, times in evals.items():
        print(f"  {name:28s} {min(times):8.2f} s")

    # with image regions: the naive form projects every region once per pair, the factored once per item
    regions = torch.randn(task.dataset.num_items, args.regions, 32)
    first = next(iter(uvcans.values()))
    co_attention = first.co_attention
    users = torch.arange(args.region_users)
    a = torch.randn(len(users), 3, first.item_emb.embedding_dim)
    b = torch.nn.functional.linear(regions, torch.randn(first.item_emb.embedding_dim, 32) * 0.1)  # (I, R, D)
    chunk = max(1, first.score_budget // (len(users) * args.regions * b.shape[-1]))
    timings: dict[str, list[float]] = {}
    with torch.no_grad():
        for _ in range(args.rounds):
            start = time.perf_counter()
            for part in torch.arange(len(b)).split(chunk):
                co_attention.pairwise(a, b[part])
            timings.setdefault("factored (pairwise)", []).append(time.perf_counter() - start)
            start = time.perf_counter()
            for part in torch.arange(len(b)).split(chunk):
                ia, ib = users.repeat_interleave(len(part)), part.repeat(len(users))
                co_attention(a[ia], b[ib])
            timings.setdefault("naive (forward on pairs)", []).append(time.perf_counter() - start)
    print(f"co-attention of {len(users)} users x {len(b)} items with {args.regions} regions, min of {args.rounds}:")
    for name, times in timings.items():
        print(f"  {name:28s} {min(times):8.2f} s")

    mcptr, _ = setup("mcptr", "model.pretrain_epochs=1")
    trains: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        trains.setdefault("lightgcn epoch", []).append(epoch_seconds(lightgcn, task))
        start = time.perf_counter()
        mcptr.pretrain()
        trains.setdefault("mcptr stage-1 epoch", []).append(time.perf_counter() - start)
        trains.setdefault("mcptr stage-2 epoch", []).append(epoch_seconds(mcptr, task))
        for name, model in uvcans.items():
            trains.setdefault(f"{name} epoch", []).append(epoch_seconds(model, task))
    print("training, batch 2048, 1 negative:")
    for name, times in trains.items():
        print(f"  {name:28s} {min(times):8.2f} s")


if __name__ == "__main__":
    main()
