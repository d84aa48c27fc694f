"""Cornac 3.0.1 and fusionrec side by side on the identical ml-100k split (BPR, VBPR).

Run with fusionrec's interpreter::

    .venv/bin/python benchmarks/peers/cornac_side_by_side.py --model BPR --threads 1 --json OUT.json
    .venv/bin/python benchmarks/peers/cornac_side_by_side.py --model VBPR --threads 1
    .venv/bin/python benchmarks/peers/cornac_side_by_side.py --model BPR --max-epochs 20 --chunk 10  # smoke

Cornac has no early stopping, so its side trains in chunks of ``--chunk`` epochs (its models continue from their
current parameters when ``fit`` is called again), evaluates validation NDCG@20 with Cornac's own ``ranking_eval``
after each chunk, stops after ``--patience`` chunks without improvement and reads test once, with the parameters of
the best chunk. Test masks training and validation items (``ranking_eval(..., val_set=...)``), as fusionrec does.

Settings, both sides (Cornac's defaults where the peer table in PEERS.md used them):
- BPR: k 64 with item bias; Cornac: per-sample SGD, lr 1e-3, lambda 0.01, 3,000 epochs at most. fusionrec runs its
  shipped config (``-c ml100k/bpr``: Adagrad, mini-batches) and, with ``--fusionrec-config cornac``, the same
  dynamics as Cornac (SGD on mini-batches of 2,048 summed pairs = lr 1e-3 per pair, lambda 0.01, Cornac's init scale).
- VBPR: item features = ml-100k's genre multi-hot (19 columns) on both sides; Cornac: k = k2 = 32 (fusionrec's
  shipped VBPR sizes), Adam lr 1e-3, batch 100, lambda_w 0.01, lambda_b 0.01, lambda_e 0 (its defaults otherwise;
  a new Adam per chunk, which is how Cornac's ``fit`` works); fusionrec: ``-c ml100k/vbpr`` with
  ``model.modalities=[genre]``.
Seconds per epoch are each library's training time only (no evaluation), one process, ``--threads`` threads.
Cornac runs in its own throwaway venv (``~/.cache/fusionrec-peers/cornac-venv``), created on first use.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_venv import CACHE, ensure_venv, fusionrec_train, log, outside_repository, run_runner, save_json  # noqa: E402

DEFAULT_SPLIT = (
    Path(os.environ.get("FUSIONREC_SHARED") or Path(__file__).resolve().parents[3] / "shared")
    / "fixtures"
    / "ml100k-peer-split"
)  # noqa: E501
FUSIONREC = Path(sys.executable).with_name("fusionrec")
INSTALL_STEPS = (("torch==2.13.0",), ("cornac==3.0.1",))
CHECK = "import cornac, torch, numpy; print('cornac, torch, numpy =', cornac.__version__, torch.__version__, numpy.__version__)"
FUSIONREC_CONFIGS = {
    "BPR": {
        "shipped": ["-c", "ml100k/bpr"],
        "cornac": [
            "-m",
            "bpr",
            "model.reg_weight=0.01",
            "model.init_std=0.0045",
            "train.optimizer=sgd",
            "train.lr=2.048",
            "train.batch_size=2048",
            "train.epochs=3000",
            "train.eval_every=20",
            "train.patience=150",
        ],
    },
    "VBPR": {"shipped": ["-c", "ml100k/vbpr", "model.modalities=[genre]"]},
}

RUNNER = r'''
"""Executed with the Cornac venv's python: python runner.py spec.json. Prints one line 'RESULT {json}'."""
import copy, json, resource, sys, time
import numpy as np

spec = json.load(open(sys.argv[1]))
import torch
torch.set_num_threads(spec["threads"])
import cornac
from cornac.data import ImageModality
from cornac.eval_methods import BaseMethod, ranking_eval
from cornac.metrics import NDCG, Recall

def read(name):
    lines = open(f"{spec['split']}/{name}.tsv").read().splitlines()[1:]
    return [(u, i, 1.0) for u, i in (ln.split("\t") for ln in lines if ln.strip())]

modality = {}
if spec["model"] == "VBPR":
    feats = np.load(spec["features"])
    modality["item_image"] = ImageModality(features=feats, ids=json.load(open(spec["feature_ids"])), normalized=True)
method = BaseMethod.from_splits(train_data=read("train"), test_data=read("test"), val_data=read("valid"),
                                exclude_unknowns=True, seed=spec["seed"], verbose=False, **modality)
chunk = spec["chunk"]
if spec["model"] == "BPR":
    model = cornac.models.BPR(k=64, max_iter=chunk, learning_rate=1e-3, lambda_reg=0.01, seed=spec["seed"])
    state = lambda m: (m.u_factors.copy(), m.i_factors.copy(), m.i_biases.copy())
    def restore(m, s): m.u_factors, m.i_factors, m.i_biases = s
else:
    model = cornac.models.VBPR(k=32, k2=32, n_epochs=chunk, batch_size=100, learning_rate=1e-3, lambda_w=0.01,
                               lambda_b=0.01, lambda_e=0.0, use_gpu=False, seed=spec["seed"])
    names = ("beta_item", "gamma_user", "gamma_item", "theta_user", "emb_matrix", "beta_prime")
    state = lambda m: {n: getattr(m, n).copy() for n in names}
    def restore(m, s):
        for n, v in s.items(): setattr(m, n, v)
        F = m.train_set.item_image.features[: m.total_items].astype(np.float32)
        m.theta_item, m.visual_bias = F @ m.emb_matrix, (F @ m.beta_prime).ravel()

metrics = [Recall(k=10), Recall(k=20), NDCG(k=10), NDCG(k=20)]
train_s, valid_s, history = [], [], []
best, best_state, best_epoch, waited, epoch = -1.0, None, 0, 0, 0
while epoch < spec["max_epochs"] and waited < spec["patience"]:
    t0 = time.perf_counter(); model.fit(method.train_set, method.val_set); train_s.append((time.perf_counter() - t0) / chunk)
    epoch += chunk
    t0 = time.perf_counter()
    valid = ranking_eval(model, [NDCG(k=20)], method.train_set, method.val_set, rating_threshold=0.5,
                         exclude_unknowns=True)[0][0]
    valid_s.append(time.perf_counter() - t0)
    history.append({"epoch": epoch, "ndcg@20": valid})
    if valid > best:
        best, best_state, best_epoch, waited = valid, state(model), epoch, 0
    else:
        waited += 1
restore(model, best_state)
t0 = time.perf_counter()
test = ranking_eval(model, metrics, method.train_set, method.test_set, val_set=method.val_set, rating_threshold=0.5,
                    exclude_unknowns=True)[0]
test_s = time.perf_counter() - t0
keys = ["recall@10", "recall@20", "ndcg@10", "ndcg@20"]
print("RESULT " + json.dumps({
    "library": "Cornac " + cornac.__version__, "model": spec["model"], "valid_ndcg@20": best,
    "test": dict(zip(keys, map(float, test))), "best_epoch": best_epoch, "epochs_run": epoch,
    "train_s_per_epoch": sum(train_s) / len(train_s), "valid_eval_s": sum(valid_s) / len(valid_s), "test_eval_s": test_s,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "history": history,
    "sizes": {"users": method.total_users, "items": method.total_items}}), flush=True)
'''


def genre_features(work: Path) -> tuple[Path, Path]:
    """ml-100k's genre multi-hot from fusionrec's prepared data, keyed by raw item id (the split's ids)."""
    import numpy as np

    from fusionrec.api import resolve_config
    from fusionrec.data.prepare import prepare
    from fusionrec.data.store import load_dataset_dir

    run_config, _ = resolve_config("vbpr", "ml-100k")
    dataset = load_dataset_dir(prepare(run_config.data))
    genre = dataset.modalities["genre"]
    values = genre.values.toarray() if hasattr(genre.values, "toarray") else np.asarray(genre.values)
    np.save(work / "genre.npy", values.astype(np.float32))
    (work / "genre_ids.json").write_text(json.dumps([str(i) for i in dataset.item_ids]))
    return work / "genre.npy", work / "genre_ids.json"


def run_cornac(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="cornac-run-"))
    try:
        spec = {
            "model": args.model,
            "split": str(args.split),
            "seed": args.seed,
            "threads": args.threads,
            "chunk": args.chunk,
            "max_epochs": args.max_epochs,
            "patience": args.patience,
        }
        if args.model == "VBPR":
            features, ids = genre_features(work)
            spec |= {"features": str(features), "feature_ids": str(ids)}
        log(f"Cornac {args.model}: chunks of {args.chunk} epochs, at most {args.max_epochs}")
        return run_runner(args.venv, RUNNER, spec, work, args.threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_fusionrec(args: argparse.Namespace, config: str) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix="fusionrec-run-"))
    try:
        cmd = [
            str(FUSIONREC),
            "train",
            *FUSIONREC_CONFIGS[args.model][config],
            "-d",
            "ml-100k",
            "data.split.method=files",
            f"data.split.path={args.split}",
            f"train.seed={args.seed}",
            f"train.num_threads={args.threads}",
            "--run-dir",
            str(run_dir),
            "-q",
        ]
        rec = fusionrec_train(cmd, run_dir, args.threads)
        t = rec["timings"]
        return {
            "library": f"fusionrec {rec['versions'].get('fusionrec', '?')} ({config})",
            "model": rec["model"],
            "valid_ndcg@20": rec["metrics"]["valid"]["ndcg@20"],
            "test": rec["metrics"]["test"],
            "best_epoch": rec["best_epoch"],
            "epochs_run": rec["epochs_run"],
            "train_s_per_epoch": t["train_s_per_epoch"],
            "valid_eval_s": t["eval_s"],
            "test_eval_s": t.get("test_eval_s"),
            "peak_rss_mb": rec["peak_rss_mb"],
            "command": cmd,
        }
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def print_table(results: dict) -> None:
    rows = [r for r in results.values() if isinstance(r, dict) and "test" in r]
    print(f"\n{results['model']} on ml100k-peer-split (test; epoch chosen on validation NDCG@20)")
    print(
        "| library | Recall@20 | NDCG@20 | valid NDCG@20 | best epoch | epochs | s/epoch | time to best s | "
        "valid eval s | test eval s | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = r["test"]
        print(
            f"| {r['library']} | {t['recall@20']:.4f} | {t['ndcg@20']:.4f} | {r['valid_ndcg@20']:.4f} | "
            f"{r['best_epoch']} | {r['epochs_run']} | {r['train_s_per_epoch']:.4f} | "
            f"{r['train_s_per_epoch'] * r['best_epoch']:.1f} | {r['valid_eval_s']:.3f} | "
            f"{r['test_eval_s'] or 0:.3f} | {r['peak_rss_mb']:,.0f} |"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=sorted(FUSIONREC_CONFIGS), default="BPR")
    p.add_argument("--fusionrec-config", nargs="+", default=["shipped"], help="shipped and/or cornac (BPR only)")
    p.add_argument("--chunk", type=int, default=None, help="Cornac epochs between validations (BPR 50, VBPR 5)")
    p.add_argument("--max-epochs", type=int, default=None, help="Cornac epoch cap (BPR 3000, VBPR 300)")
    p.add_argument("--patience", type=int, default=None, help="Cornac chunks without improvement (BPR 10, VBPR 6)")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--split", type=Path, default=DEFAULT_SPLIT)
    p.add_argument("--only", choices=("cornac", "fusionrec"))
    p.add_argument("--venv", type=Path, default=CACHE / "cornac-venv")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    bpr = args.model == "BPR"
    args.chunk = args.chunk or (50 if bpr else 5)
    args.max_epochs = args.max_epochs or (3000 if bpr else 300)
    args.patience = args.patience or (10 if bpr else 6)
    args.split, args.venv = args.split.resolve(), outside_repository(args.venv)
    unknown = set(args.fusionrec_config) - set(FUSIONREC_CONFIGS[args.model])
    if unknown:
        raise SystemExit(
            f"--fusionrec-config {sorted(unknown)} not available for {args.model}; "
            f"choose from {sorted(FUSIONREC_CONFIGS[args.model])}"
        )
    results: dict = {"model": args.model, "settings": {k: str(v) for k, v in vars(args).items()}}
    if args.only in (None, "cornac"):
        results["install_s"] = ensure_venv(args.venv, INSTALL_STEPS, CHECK)
        results["cornac"] = run_cornac(args)
    if args.only in (None, "fusionrec"):
        for config in args.fusionrec_config:
            results[f"fusionrec-{config}"] = run_fusionrec(args, config)
    print_table(results)
    save_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
