"""Seconds per epoch and peak memory of LightGCN, MGAT and SASRec at 10^6 and 10^7 interactions, on CPU
and on a GPU when one is visible, and how close graph propagation gets to the memory-bandwidth bound.

A prepared script for a machine with an accelerator (it also runs on CPU only, skipping the GPU):

    python benchmarks/gpu_scale.py --out runs/gpu-scale.json                      # 10^6 and 10^7
    python benchmarks/gpu_scale.py --sizes 100000 --devices cpu --steps 5        # a smoke test

- Data: the built-in ``synthetic`` set (users = n / 20, items = n / 50, per-user random split; SASRec on a
  leave-one-out split), prepared once under ``FUSIONREC_HOME``.
- Training: ``--steps`` steps of the model's own task and batches (``fusionrec train``'s, batch size
  ``--batch``), after one warm-up step; **s/epoch is extrapolated** from the mean step time to the
  epoch's number of batches (an epoch of MGAT at 10^7 on two CPU cores takes hours).
- Peak memory: ``torch.cuda.max_memory_allocated`` on a GPU, the process's peak RSS on CPU.
- Propagation bound: one LightGCN layer ``A @ E`` (normalised adjacency, 64 floats per row) on the
  device, its bytes (CSR values and column indices, one gathered row per edge, one written row per
  node) over its time, against the device's measured copy bandwidth (a large tensor copied).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

MODELS = {
    "lightgcn": [],
    "mgat": [],
    "sasrec": ["data.split.method=loo"],
}


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_memory_mb(device: str) -> float:
    import torch

    from fusionrec.training.record import peak_rss_mb

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return peak_rss_mb()


def time_training(model_name: str, n: int, device: str, steps: int, batch: int) -> dict[str, Any]:
    import torch

    from fusionrec.api import build_model, build_task, resolve_config
    from fusionrec.data.prepare import prepare
    from fusionrec.data.store import load_dataset_dir

    overrides = [
        f"data.options.num_users={max(n // 20, 2)}",
        f"data.options.num_items={max(n // 50, 2)}",
        f"data.options.num_interactions={n}",
        f"train.batch_size={batch}",
        f"train.device={device}",
        *MODELS[model_name],
    ]
    run_config, model_config = resolve_config(model_name, "synthetic", None, overrides)
    dataset = load_dataset_dir(prepare(run_config.data))
    task = build_task(run_config, dataset, model_config)
    model = build_model(model_config, dataset, 0).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i, batch_data in enumerate(task.train_batches(1)):
        if i > steps:
            break
        sync(device)
        start = time.perf_counter()
        out = model.loss(batch_data.to(device))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        sync(device)
        if i > 0:  # step 0 warms up (allocations, kernel choice)
            times.append(time.perf_counter() - start)
    step_s = statistics.mean(times)
    return {
        "model": model_name,
        "interactions": n,
        "device": device,
        "batches_per_epoch": task.num_batches,
        "timed_steps": len(times),
        "step_s": round(step_s, 5),
        "s_per_epoch_extrapolated": round(step_s * task.num_batches, 2),
        "peak_memory_mb": round(peak_memory_mb(device), 1),
    }


def copy_bandwidth(device: str, megabytes: int = 1024) -> float:
    """Bytes per second of copying a large float32 tensor on ``device`` (read + write)."""
    import torch

    src = torch.empty(megabytes * 2**20 // 4, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync(device)
    start = time.perf_counter()
    for _ in range(5):
        dst.copy_(src)
    sync(device)
    return 2 * src.numel() * 4 * 5 / (time.perf_counter() - start)


def propagation_bound(n: int, device: str, dim: int = 64) -> dict[str, Any]:
    import torch

    from fusionrec.data.prepare import prepare
    from fusionrec.data.store import load_dataset_dir
    from fusionrec.models.topk.lightgcn import LightGCN, LightGCNConfig

    overrides = {"num_users": max(n // 20, 2), "num_items": max(n // 50, 2), "num_interactions": n}
    from fusionrec.data import DataConfig

    dataset = load_dataset_dir(prepare(DataConfig(name="synthetic", options=overrides)))
    model = LightGCN.from_dataset(LightGCNConfig(embedding_dim=dim), dataset).to(device)
    adjacency = next(b for b in model.buffers() if b.layout != torch.strided)
    table = torch.randn(adjacency.shape[1], dim, device=device)
    adjacency @ table
    sync(device)
    start = time.perf_counter()
    for _ in range(5):
        adjacency @ table
    sync(device)
    seconds = (time.perf_counter() - start) / 5
    nnz = adjacency._nnz() if adjacency.layout == torch.sparse_coo else adjacency.values().numel()
    moved = nnz * (4 + 8) + nnz * dim * 4 + adjacency.shape[0] * dim * 4
    achieved = moved / seconds
    bandwidth = copy_bandwidth(device)
    return {
        "interactions": n,
        "device": device,
        "edges": int(nnz),
        "spmm_s": round(seconds, 5),
        "achieved_gb_s": round(achieved / 1e9, 1),
        "copy_gb_s": round(bandwidth / 1e9, 1),
        "fraction_of_bound": round(achieved / bandwidth, 3),
    }


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[1_000_000, 10_000_000])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per (model, size, device)")
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    devices = [d for d in args.devices if d == "cpu" or torch.cuda.is_available()]
    skipped = sorted(set(args.devices) - set(devices))
    rows, bounds = [], []
    for n in args.sizes:
        for device in devices:
            bounds.append(propagation_bound(n, device))
            print(json.dumps(bounds[-1]), flush=True)
            for model in args.models:
                rows.append(time_training(model, n, device, args.steps, args.batch))
                print(json.dumps(rows[-1]), flush=True)
    result = {
        "machine": platform.node(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "skipped_devices": skipped,
        "training": rows,
        "propagation": bounds,
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    print("| model | interactions | device | s/epoch (extrapolated) | peak MB |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['interactions']:,} | {r['device']} | {r['s_per_epoch_extrapolated']} | {r['peak_memory_mb']} |"
        )
    for b in bounds:
        print(
            f"propagation at {b['interactions']:,} on {b['device']}: {b['achieved_gb_s']} GB/s of "
            f"{b['copy_gb_s']} GB/s copy bandwidth ({b['fraction_of_bound']:.0%})"
        )
    if skipped:
        print(f"skipped: {', '.join(skipped)} (no CUDA GPU visible)")
    if not math.isfinite(sum(r["step_s"] for r in rows)):
        raise SystemExit("a step time is not finite")


if __name__ == "__main__":
    main()
