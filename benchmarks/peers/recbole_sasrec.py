"""SASRec in RecBole 1.2.1 and in fusionrec on the identical ml-100k leave-one-out split, pass by pass.

Run with fusionrec's interpreter::

    .venv/bin/python benchmarks/peers/recbole_sasrec.py --passes 5 --threads 1 --json OUT.json
    .venv/bin/python benchmarks/peers/recbole_sasrec.py --passes 1 --only fusionrec   # smoke test

One RecBole epoch trains on every prefix of every training sequence (about 97,000 samples on ml-100k) and takes
minutes, so a converged RecBole run takes hours. The comparison is therefore made after the same number of passes
over the training data: RecBole runs ``--passes`` epochs, validating after each; fusionrec runs to convergence
(validating every pass, early stopping on validation NDCG@10), and its validation curve is read at the same passes.
A fusionrec pass is one epoch with ``task.sequence_windows=all`` (every training interaction is a target once,
as in RecBole's epoch); the paper's sampler (``last``: only each user's 50 most recent items) is run as well.

Identical split: fusionrec prepares ml-100k with its leave-one-out split and this script writes each user's
sequence in fusionrec's order (ties in ml-100k's timestamps broken as fusionrec breaks them) with the position as
the timestamp, so RecBole's own leave-one-out (``LS: valid_and_test``, time order) reproduces it exactly.
Identical model: 2 blocks, 1 head, hidden 64, feed-forward 64 with ReLU, dropout 0.2 (embedding, attention,
feed-forward), max length 50, full-softmax cross-entropy, Adam lr 1e-3. Differences that remain: RecBole's block
is post-norm (LayerNorm after each residual), fusionrec's follows the SASRec paper (pre-norm queries); batches are
each library's own: RecBole 2048 prefixes = 48 updates per pass; fusionrec ``--batch-size`` windows, 128 by
default = 19 updates per pass with ``all`` and 8 with ``last`` (48 windows give RecBole's update count).
Evaluation: full ranking, items of the input history *not* masked on either side (RecBole does not mask them
for sequential models), HR@10 and NDCG@10.

RecBole runs in the throwaway venv of ``recbole_side_by_side.py`` (created and patched on first use).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_venv import fusionrec_train, log, outside_repository, run_runner, save_json  # noqa: E402
from recbole_side_by_side import DEFAULT_VENV, FUSIONREC, RUNNER, ensure_recbole_venv  # noqa: E402

DATASET_NAME = "ml100k-loo"
KEYS = (
    ("hit@10", "hit_rate@10"),
    ("ndcg@10", "ndcg@10"),
)  # RecBole key, fusionrec key (MRR: RecBole cuts at 10, fusionrec does not)
SAMPLERS = {"all": "every training interaction once per pass (windows of 50)", "last": "paper: last 50 items per user"}


def write_sequences(out: Path) -> dict:
    """fusionrec's leave-one-out sequences of ml-100k as RecBole atomic file ``out/<name>/<name>.inter``."""
    from fusionrec.api import resolve_config
    from fusionrec.data.prepare import prepare
    from fusionrec.data.sequences import user_sequences
    from fusionrec.data.store import load_dataset_dir

    run_config, _ = resolve_config("sasrec", "ml-100k", overrides=["data.split.method=loo"])
    dataset = load_dataset_dir(prepare(run_config.data))
    seq = user_sequences(dataset)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for u in range(seq.num_users):
        items = seq.items[seq.starts[u] : seq.starts[u + 1]]
        lines += [f"{dataset.user_ids[u]}\t{dataset.item_ids[i]}\t{t}" for t, i in enumerate(items)]
    folder = out / DATASET_NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{DATASET_NAME}.inter").write_text("\n".join(lines) + "\n")
    return {"users": int(seq.num_users), "interactions": len(lines) - 1}


def recbole_config(args: argparse.Namespace, data_dir: Path, work: Path) -> dict:
    return {
        "data_path": str(data_dir),
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": 50,
        "n_layers": 2,
        "n_heads": 1,
        "hidden_size": 64,
        "inner_size": 64,
        "hidden_dropout_prob": 0.2,
        "attn_dropout_prob": 0.2,
        "hidden_act": "relu",
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "learning_rate": 1e-3,
        "train_batch_size": 2048,
        "epochs": args.passes,
        "stopping_step": args.passes,
        "eval_step": 1,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["Hit", "NDCG", "MRR"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "metric_decimal_place": 6,
        "seed": args.seed,
        "reproducibility": True,
        "use_gpu": False,
        "worker": 0,
        "checkpoint_dir": str(work / "saved"),
        "show_progress": False,
        "state": "INFO",
    }


def run_recbole(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="recbole-sasrec-"))
    try:
        sizes = write_sequences(work / "data")
        spec = {
            "model": "SASRec",
            "dataset": DATASET_NAME,
            "threads": args.threads,
            "config": recbole_config(args, work / "data", work),
        }
        log(f"RecBole SASRec: {args.passes} epoch(s) on {sizes} (log in {work / 'log'})")
        result = run_runner(args.venv, RUNNER, spec, work, args.threads)
        result["valid_curve"] = {h["epoch"]: h["valid"] for h in result["history"]}
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True) if not args.keep else log(f"kept {work}")


def run_fusionrec(args: argparse.Namespace, windows: str) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix=f"fusionrec-sasrec-{windows}-"))
    try:
        cmd = [
            str(FUSIONREC),
            "train",
            "-m",
            "sasrec",
            "-d",
            "ml-100k",
            "data.split.method=loo",
            "model.num_heads=1",
            "model.hidden_dim=64",
            "model.inner_dim=64",
            "model.dropout=0.2",
            "model.max_length=50",
            "model.loss=ce",
            "train.lr=1e-3",
            f"task.sequence_windows={windows}",
            "task.mask_history=false",
            "train.metric=ndcg@10",
            "train.eval_every=1",
            f"train.epochs={args.max_epochs}",
            f"train.patience={args.patience}",
            f"train.seed={args.seed}",
            f"train.num_threads={args.threads}",
            f"train.batch_size={args.batch_size}",
            "--run-dir",
            str(run_dir),
            "-q",
        ]
        rec = fusionrec_train(cmd, run_dir, args.threads)
        curve = {h["epoch"]: {rk: h["valid"][fk] for rk, fk in KEYS} for h in rec["history"] if "valid" in h}
        return {
            "library": f"fusionrec {rec['versions'].get('fusionrec', '?')} ({windows})",
            "windows": windows,
            "valid_curve": curve,
            "train_s": [h["train_s"] for h in rec["history"]],
            "train_s_per_epoch": rec["timings"]["train_s_per_epoch"],
            "valid_eval_s": rec["timings"]["eval_s"],
            "best_epoch": rec["best_epoch"],
            "epochs_run": rec["epochs_run"],
            "status": rec["status"],
            "test": {rk: rec["metrics"]["test"][fk] for rk, fk in KEYS},
            "peak_rss_mb": rec["peak_rss_mb"],
            "command": cmd,
        }
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def print_report(results: dict, passes: int) -> None:
    sides = [(name, r) for name, r in results.items() if isinstance(r, dict) and "valid_curve" in r]
    print("\nSASRec on ml-100k leave-one-out, validation NDCG@10 after each pass (history items not masked)")
    print("| pass | " + " | ".join(r.get("library", name) for name, r in sides) + " |")
    print("|---|" + "---|" * len(sides))
    for p in range(1, passes + 1):
        cells = [r["valid_curve"].get(p, r["valid_curve"].get(str(p), {})).get("ndcg@10") for _, r in sides]
        print(f"| {p} | " + " | ".join("-" if c is None else f"{c:.4f}" for c in cells) + " |")
    print("\n| library | s/pass | valid eval s | peak RSS MB | epochs run | best epoch | test HR@10 | test NDCG@10 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in sides:
        t = r.get("test", {})
        print(
            f"| {r.get('library', name)} | {r['train_s_per_epoch']:.2f} | {r.get('valid_eval_s') or 0:.2f} | "
            f"{r.get('peak_rss_mb') or 0:,.0f} | {r.get('epochs_run')} | {r.get('best_epoch')} | "
            f"{t.get('hit@10', float('nan')):.4f} | {t.get('ndcg@10', float('nan')):.4f} |"
        )
    if "recbole" in results and "fusionrec-all" in results:
        ratio = results["recbole"]["train_s_per_epoch"] / results["fusionrec-all"]["train_s_per_epoch"]
        print(f"\nRecBole s/pass / fusionrec s/pass (sequence_windows=all) = {ratio:.1f}x")
    print("RecBole's test row is after its last pass (not converged); fusionrec's after early stopping.")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--passes", type=int, default=5, help="RecBole epochs (the passes compared)")
    p.add_argument("--max-epochs", type=int, default=300, help="fusionrec: cap before early stopping")
    p.add_argument("--patience", type=int, default=20, help="fusionrec: validations without improvement")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--windows", nargs="+", choices=sorted(SAMPLERS), default=["all", "last"])
    p.add_argument(
        "--batch-size",
        type=int,
        default=128,
        help="fusionrec sequences per batch (48 gives RecBole's ~48 updates per pass with windows=all)",
    )
    p.add_argument("--only", choices=("recbole", "fusionrec"))
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    p.add_argument("--json", type=Path)
    p.add_argument("--keep", action="store_true", help="keep RecBole's work folder")
    args = p.parse_args(argv)
    results: dict = {"settings": {k: str(v) for k, v in vars(args).items()}}
    if args.only in (None, "fusionrec"):
        for windows in args.windows:
            results[f"fusionrec-{windows}"] = run_fusionrec(args, windows)
    if args.only in (None, "recbole"):
        ensure_recbole_venv(outside_repository(args.venv))
        results["recbole"] = run_recbole(args)
    print_report(results, args.passes)
    save_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
