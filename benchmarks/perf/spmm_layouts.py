"""Where LightGCN's propagation time goes at 10^5 to 10^7 interactions: nanoseconds per edge of the
normalised bipartite adjacency times a 64-d table, for the layouts and kernels tried against its growth.

- ``torch``: ``torch.sparse_csr`` @ dense, the table in ordinary 4 KiB pages;
- ``torch, huge pages``: the same product with the table first copied into a buffer advised to Linux as
  2 MiB pages (``madvise``; the copy is included): fewer TLB misses on the random row reads;
- ``order: degree / planted clusters / random``: the nodes renumbered before the product (users and
  items by degree; by the synthetic set's planted cluster, the best locality any order can find there,
  known only because the data is synthetic; a random order as the floor);
- ``C csr`` and ``C propagation blocking``: a plain compiled row loop, and propagation blocking (Beamer
  et al., IPDPS 2017: per chunk of source rows, each edge's contribution is written to a buffer grouped
  by destination block, then each block is summed while its rows of the output stay in cache), compiled
  here at run time with ``cc -O3 -march=native -fopenmp`` (skipped, with one line, without a compiler);
- ``copy``: a plain copy of the table, the streaming bandwidth the blocking's two passes are bound by.

Usage::

    .venv/bin/python benchmarks/perf/spmm_layouts.py [--sizes 100000 1000000 10000000] [--threads 2]
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

KERNELS = r"""
#include <stdint.h>
#include <string.h>
#include <omp.h>

void pb_spmm(int64_t d, const int64_t *indptr, const float *values, const int32_t *slot, int64_t n_chunks,
             const int64_t *chunk_rows, int64_t nb, const int64_t *bin_ptr, const int32_t *dst_of_slot,
             const float *x, float *y, float *buf, int threads) {
    omp_set_num_threads(threads);
    memset(y, 0, sizeof(float) * chunk_rows[n_chunks] * d);
    for (int64_t c = 0; c < n_chunks; c++) {
        int64_t base = bin_ptr[c * nb];
        #pragma omp parallel for schedule(static)
        for (int64_t j = chunk_rows[c]; j < chunk_rows[c + 1]; j++)  /* sources in order */
            for (int64_t e = indptr[j]; e < indptr[j + 1]; e++) {
                float w = values[e], *out = buf + ((int64_t)slot[e] - base) * d;
                for (int64_t k = 0; k < d; k++) out[k] = w * x[j * d + k];
            }
        #pragma omp parallel for schedule(dynamic, 1)
        for (int64_t b = 0; b < nb; b++)  /* one destination block at a time */
            for (int64_t p = bin_ptr[c * nb + b]; p < bin_ptr[c * nb + b + 1]; p++) {
                float *yi = y + (int64_t)dst_of_slot[p] * d;
                for (int64_t k = 0; k < d; k++) yi[k] += buf[(p - base) * d + k];
            }
    }
}

void csr_spmm(int64_t n, int64_t d, const int64_t *indptr, const int32_t *indices, const float *values,
              const float *x, float *y, int threads) {
    omp_set_num_threads(threads);
    #pragma omp parallel for schedule(dynamic, 256)
    for (int64_t i = 0; i < n; i++) {
        float acc[256] = {0};
        for (int64_t e = indptr[i]; e < indptr[i + 1]; e++)
            for (int64_t k = 0; k < d; k++) acc[k] += values[e] * x[(int64_t)indices[e] * d + k];
        memcpy(y + i * d, acc, sizeof(float) * d);
    }
}
"""


def compiled_kernels(folder: Path):
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        print("no C compiler: the compiled kernels are skipped")
        return None
    (folder / "kernels.c").write_text(KERNELS)
    cmd = [compiler, "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "kernels.c", "-o", "kernels.so"]
    subprocess.run(cmd, cwd=folder, check=True)
    lib = ctypes.CDLL(str(folder / "kernels.so"))
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    lib.pb_spmm.argtypes = [i64, p, p, p, i64, p, i64, p, p, p, p, p, ctypes.c_int]
    lib.csr_spmm.argtypes = [i64, i64, p, p, p, p, p, ctypes.c_int]
    return lib


def blocking_plan(a: sp.csr_matrix, chunk_edges: int, block_rows: int, dim: int) -> dict:
    """Where each edge's contribution goes: chunks of source rows, destination blocks within a chunk."""
    n, indptr = a.shape[0], a.indptr.astype(np.int64)
    cuts = np.searchsorted(indptr, np.arange(0, a.nnz, chunk_edges)[1:])
    chunk_rows = np.unique(np.concatenate([[0], cuts, [n]])).astype(np.int64)
    rows = np.repeat(np.arange(n), np.diff(indptr))
    chunk_of_edge = np.searchsorted(chunk_rows, rows, side="right") - 1
    num_blocks = -(-n // block_rows)
    key = chunk_of_edge * num_blocks + a.indices // block_rows
    order = np.argsort(key, kind="stable")  # sources stay in order within a block: sequential writes
    slot = np.empty(a.nnz, np.int32)
    slot[order] = np.arange(a.nnz, dtype=np.int32)
    counts = np.bincount(key, minlength=(len(chunk_rows) - 1) * num_blocks)
    bin_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    largest = int(np.diff(bin_ptr[::num_blocks]).max())
    return {
        "indptr": indptr,
        "values": a.data.astype(np.float32),
        "slot": slot,
        "chunk_rows": chunk_rows,
        "num_blocks": num_blocks,
        "bin_ptr": bin_ptr,
        "dst": a.indices[order].astype(np.int32),
        "buffer": np.empty((largest, dim), np.float32),
    }


def blocked_product(lib, plan: dict, x: np.ndarray, y: np.ndarray, threads: int):
    """``y = A x`` by propagation blocking with ``plan``, as a no-argument call."""
    c = lambda arr: arr.ctypes.data  # noqa: E731
    args = (
        x.shape[1], c(plan["indptr"]), c(plan["values"]), c(plan["slot"]), len(plan["chunk_rows"]) - 1,
        c(plan["chunk_rows"]), plan["num_blocks"], c(plan["bin_ptr"]), c(plan["dst"]), c(x), c(y),
        c(plan["buffer"]), threads,
    )  # fmt: skip
    return lambda: lib.pb_spmm(*args)


def huge_page_table(like: torch.Tensor) -> tuple[torch.Tensor, mmap.mmap]:
    """An empty tensor like ``like`` in memory advised as huge pages (Linux), and the mapping that owns it."""
    size, huge = like.numel() * like.element_size(), 2 << 20
    mapping = mmap.mmap(-1, size + huge, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        mapping.madvise(mmap.MADV_HUGEPAGE)
    raw = torch.frombuffer(mapping, dtype=torch.uint8)
    start = (-raw.data_ptr()) % huge  # huge pages cover only 2 MiB-aligned spans
    return raw[start : start + size].view(like.dtype).view(like.shape), mapping


def best_of(f, repeats: int) -> float:
    f()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(n: int, threads: int, lib, dim: int = 64) -> dict:
    from fusionrec.data import load_dataset
    from fusionrec.nn import graph

    ds = load_dataset(
        "synthetic",
        options={"num_users": n // 20, "num_items": n // 50, "num_interactions": n, "seed": 0},
    )
    train = ds.matrix("train").tocsr()
    a = graph.sym_normalize(graph.bipartite_adjacency(train))
    a.sort_indices()
    num_users, edges = train.shape[0], a.nnz
    repeats = 5 if n < 10_000_000 else 3
    x = torch.randn(a.shape[0], dim)
    adj = graph.to_torch_sparse(a)
    reference = adj @ x
    ns = lambda seconds: round(seconds / edges * 1e9, 1)  # noqa: E731
    row = {"interactions": n, "nodes": a.shape[0], "edges": edges, "table_mb": round(x.numel() * 4 / 2**20, 1)}
    row["torch"] = ns(best_of(lambda: adj @ x, repeats))
    staged, _mapping = huge_page_table(x)

    def staged_product():
        staged.copy_(x)
        return adj @ staged

    row["torch, huge pages"] = ns(best_of(staged_product, repeats))

    user_degree, item_degree = np.diff(train.indptr), np.bincount(train.indices, minlength=train.shape[1])
    cluster = ds.items["cluster"].to_numpy()
    per_user_cluster = sp.csr_matrix(
        (np.ones(train.nnz), (np.repeat(np.arange(num_users), user_degree), cluster[train.indices])),
        shape=(num_users, cluster.max() + 1),
    )
    user_cluster = np.asarray(per_user_cluster.argmax(1)).ravel()  # the cluster a user draws from most
    orders = {
        "order: degree": (np.argsort(-user_degree, kind="stable"), np.argsort(-item_degree, kind="stable")),
        "order: planted clusters": (np.lexsort((-user_degree, user_cluster)), np.lexsort((-item_degree, cluster))),
        "order: random": tuple(np.random.default_rng(0).permutation(m) for m in train.shape),
    }
    for name, (users, items) in orders.items():
        perm = np.concatenate([users, num_users + items])
        permuted = a[perm][:, perm].tocsr()
        permuted.sort_indices()
        reordered = graph.to_torch_sparse(permuted)
        row[name] = ns(best_of(lambda: reordered @ x, repeats))  # noqa: B023

    if lib is not None:
        xn, y = x.numpy(), np.zeros(tuple(x.shape), np.float32)
        indices = a.indices.astype(np.int32)
        indptr = a.indptr.astype(np.int64)
        row["C csr"] = ns(
            best_of(
                lambda: lib.csr_spmm(
                    a.shape[0],
                    dim,
                    indptr.ctypes.data,
                    indices.ctypes.data,
                    a.data.ctypes.data,
                    xn.ctypes.data,
                    y.ctypes.data,
                    threads,
                ),  # fmt: skip
                repeats,
            )
        )
        blocking = {}
        for chunk in (1 << 18, 1 << 20, 1 << 22):
            for block in (2048, 8192):
                plan = blocking_plan(a, chunk, block, dim)
                run = blocked_product(lib, plan, xn, y, threads)
                blocking[f"{chunk >> 10}k edges x {block} rows"] = ns(best_of(run, repeats))
                np.testing.assert_allclose(y, reference.numpy(), atol=1e-5)
        best = min(blocking, key=blocking.get)
        row["C propagation blocking (best)"] = blocking[best]
        row["blocking: best chunk x block"] = best
    copy_target = torch.empty_like(x)
    row["copy"] = ns(best_of(lambda: copy_target.copy_(x), repeats))
    row["torch (again, last)"] = ns(best_of(lambda: adj @ x, repeats))  # drift of the shared machine
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)  # torch's "sparse CSR support is in beta"
    with tempfile.TemporaryDirectory() as folder:
        lib = compiled_kernels(Path(folder))
        rows = [measure(n, args.threads, lib) for n in args.sizes]
    columns = [k for k in rows[0] if k not in ("interactions", "nodes", "edges", "table_mb")]
    print(f"\nns per edge, {args.threads} thread(s), best of 3-5 products\n")
    print("| | " + " | ".join(f"{r['interactions']:,} ({r['table_mb']} MB table)" for r in rows) + " |")
    print("|---" * (len(rows) + 1) + "|")
    for column in columns:
        print(f"| {column} | " + " | ".join(str(r.get(column, "-")) for r in rows) + " |")


if __name__ == "__main__":
    main()
