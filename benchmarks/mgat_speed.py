"""MGAT training speed: fused sparse kernels (CSR graph) vs PyG message passing, per epoch on ml-100k.

One training step = MGAT's full-graph forward (every modality, every layer), the BPR loss on a batch
of 2048 pairs, backward and an Adam step; an epoch is ``ceil(train pairs / 2048)`` steps (40 on the
peer split). Variants, all the same model and math (tests/nn/test_graph_ops.py checks that outputs and
gradients agree):

- ``fused``: ``GatedGraphAttentionConv`` on a ``CSRGraph`` (SDDMM + SpMM kernels, hand-written
  softmax/gate gradients), as ``fusionrec train -m mgat`` runs it;
- ``message passing``: the same layers on a PyG ``edge_index`` (per-edge (E, D) messages, scatter),
  which is how the official code (zltao/MGAT) runs its ``GraphGAT`` layer.

Each at 2 layers (the paper's; ``model.num_layers=2``, the default) and 1 layer (what the official
code computes, since its forward returns after layer 1).

Usage:
    PYTHONPATH=src .venv/bin/python benchmarks/mgat_speed.py [--threads 1] [--steps 3] [--rounds 3]

On a shared machine timings move with the load: rounds are interleaved so that every variant sees
the same conditions; the minimum over rounds is the figure to compare.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from fusionrec.data import load_dataset
from fusionrec.models.topk.mgat import MGAT, MGATConfig
from fusionrec.nn.losses import bpr_loss
from fusionrec.tasks.topk.sampler import PairSampler

PEER = {"method": "files", "path": "shared:fixtures/ml100k-peer-split"}


def step_fn(model: MGAT, graph, optimizer):
    def step(batch) -> None:
        reps = {m: enc(getattr(model, f"features_{m}"), model.id_embedding, graph) for m, enc in model.encoders.items()}
        fused = model.fusion(reps, model.node_mask).out
        users, items = fused[: model.num_users], fused[model.num_users :]
        u = users[batch.users]
        loss = bpr_loss((u * items[batch.pos_items]).sum(-1), (u[:, None] * items[batch.neg_items]).sum(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="training steps timed per round and variant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--split", default=PEER["path"], help="folder of the ml-100k peer split")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset("ml-100k", split={"method": "files", "path": args.split})
    sampler = PairSampler(dataset.matrix("train"), 2048, 1, seed=0)
    batches = list(sampler.epoch(1))
    steps_per_epoch = len(batches)
    variants = {}
    for layers in (2, 1):
        torch.manual_seed(0)
        model = MGAT.from_dataset(MGATConfig(num_layers=layers), dataset)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = model.graph
        edge_index = torch.stack([g.col, g.row])  # PyG: row 0 = source, row 1 = target
        variants[f"fused, {layers} layer(s)"] = step_fn(model, g, optimizer)
        variants[f"message passing, {layers} layer(s)"] = step_fn(model, edge_index, optimizer)
    best = {name: math.inf for name in variants}
    for _ in range(args.rounds):
        for name, step in variants.items():
            step(batches[0])  # warm-up
            start = time.perf_counter()
            for batch in batches[1 : 1 + args.steps]:
                step(batch)
            best[name] = min(best[name], (time.perf_counter() - start) / args.steps)
    print(
        f"ml-100k peer split: {dataset.num_users} users, {dataset.num_items} items, "
        f"{dataset.matrix('train').nnz} train pairs, {steps_per_epoch} steps/epoch, modalities "
        f"{list(dataset.modalities)}, {args.threads} thread(s); min over {args.rounds} rounds"
    )
    for layers in (2, 1):
        fused, mp = best[f"fused, {layers} layer(s)"], best[f"message passing, {layers} layer(s)"]
        print(
            f"{layers} layer(s): fused {fused * steps_per_epoch:6.2f} s/epoch   message passing "
            f"{mp * steps_per_epoch:6.2f} s/epoch   ({mp / fused:.1f}x)"
        )


if __name__ == "__main__":
    main()
