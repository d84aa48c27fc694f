"""RecBole 1.2.1 and fusionrec side by side on the identical ml-100k split.

Run with fusionrec's interpreter::

    .venv/bin/python benchmarks/peers/recbole_side_by_side.py --model LightGCN
    .venv/bin/python benchmarks/peers/recbole_side_by_side.py --epochs 3 --patience 3   # smoke test

RecBole lives in a throwaway venv outside the repository (default ``~/.cache/fusionrec-peers/recbole-venv``)
that this script creates on first use and patches in place (see ``PATCHES``); nothing RecBole-related is ever
imported by fusionrec or by this process. RecBole runs through a small runner file executed with that venv's
python, which times every training epoch and every evaluation and prints one JSON line. fusionrec runs through
its CLI and is read back from ``record.json``. Both sides get the same split
(``fixtures/ml100k-peer-split`` of the shared folder: ``$FUSIONREC_SHARED``, else ``../shared`` beside the
repository), hyper-parameters, seed and thread count.

Regularisation (LightGCN): both add ``reg_weight * penalty(u_ego, pos_ego, neg_ego)`` on the layer-0 embeddings
of the batch. fusionrec's penalty (``l2_penalty``) is sum_t ||t||_F^2 / (2 B): half the squared norm averaged over
the batch. RecBole 1.2.1's ``EmbLoss`` depends on ``require_pow`` (overall.yaml default False):
  - require_pow=True:  sum_t ||t||_F^2 / B / 2  -- identical to fusionrec's, so the weights are equal (1x);
  - require_pow=False: sum_t ||t||_F / B        -- the plain, *unsquared* norm; no factor makes it equal.
``--reg-form squared`` (default) sets require_pow=True and passes ``--reg`` unchanged to both, so both sides
optimise the same objective; ``--reg-form recbole-default`` keeps RecBole's shipped default (what PEERS.md used)
and still passes ``--reg`` unchanged. At reg 1e-5 either term is ~1e-5 of the BPR loss. The note is printed.
RecBole's BPR is plain MF + BPRLoss (no regulariser, no item bias), so fusionrec's BPR gets reg 0, no bias.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_venv import CACHE, ensure_venv, fusionrec_train, log, outside_repository, run_runner, save_json, venv_python  # noqa: E402

DEFAULT_SPLIT = (
    Path(os.environ.get("FUSIONREC_SHARED") or Path(__file__).resolve().parents[3] / "shared")
    / "fixtures"
    / "ml100k-peer-split"
)  # noqa: E501
DEFAULT_VENV = CACHE / "recbole-venv"
FUSIONREC = Path(sys.executable).with_name("fusionrec")
DATASET_NAME = "ml100k-peer"
SPLITS = ("train", "valid", "test")
MODELS = {"LightGCN": "lightgcn", "BPR": "bpr"}  # RecBole name -> fusionrec name
METRIC_KEYS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")

# Installed in this order into the throwaway venv. torch first: a local CPU wheel on these machines, and
# installing it on its own keeps pip from resolving recbole's "torch>=1.10" to something else.
INSTALL_STEPS = (
    ("torch==2.13.0",),
    ("recbole==1.2.1", "setuptools<81", "numpy==1.26.4", "pandas==2.1.4"),
)


# --------------------------------------------------------------------------------------------------------------
# RecBole venv: create, install, patch
# --------------------------------------------------------------------------------------------------------------


def ensure_recbole_venv(venv: Path, reinstall: bool = False) -> float | None:
    """The RecBole venv, built and patched unless already there. Returns install seconds (None if reused)."""
    return ensure_venv(
        venv,
        INSTALL_STEPS,
        "import recbole, torch, numpy, pandas, scipy; print('recbole, torch, numpy, "
        "pandas, scipy =', recbole.__version__, torch.__version__, numpy.__version__, pandas.__version__, "
        "scipy.__version__)",
        patch=patch_recbole,
        patch_names=[p[0] for p in PATCHES],
        reinstall=reinstall,
    )


def _recbole_dir(venv: Path) -> Path:
    out = subprocess.run(
        [str(venv_python(venv)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    pkg = Path(out.stdout.strip()) / "recbole"
    if not pkg.is_dir():
        raise RuntimeError(f"recbole is not installed in {venv}")
    return pkg


def _add_weights_only(text: str) -> str:
    """``torch.load(a, b)`` -> ``torch.load(a, b, weights_only=False)`` for calls that do not say it yet."""
    out, i = [], 0
    for m in re.finditer(r"torch\.load\(", text):
        if m.start() < i:
            continue
        depth, j = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        call = text[m.start() : j]
        if "weights_only" not in call:
            call = call[:-1].rstrip().rstrip(",") + ", weights_only=False)"
        out.append(text[i : m.start()] + call)
        i = j
    out.append(text[i:])
    return "".join(out)


def _scipy_update(text: str) -> str:
    # scipy >= 1.15 dropped dok_matrix._update; the dict behind it is dok_matrix._dict.
    return re.sub(r"\b(\w+)\._update\(", r"\1._dict.update(", text)


# (description, files relative to the recbole package (glob), transformation). Every transformation is idempotent.
PATCHES = (
    ("torch>=2.6 checkpoint reload: torch.load(..., weights_only=False)", ("trainer/trainer.py",), _add_weights_only),
    ("scipy>=1.15: dok_matrix A._update(d) -> A._dict.update(d)", ("model/**/*.py",), _scipy_update),
)


def patch_recbole(venv: Path) -> list[str]:
    pkg = _recbole_dir(venv)
    changed = []
    for _, globs, fn in PATCHES:
        for pattern in globs:
            for path in sorted(pkg.glob(pattern)):
                text = path.read_text()
                new = fn(text)
                if new != text:
                    path.write_text(new)
                    changed.append(str(path.relative_to(pkg.parent)))
    for rel in changed:
        log(f"patched {rel}")
    return changed


# --------------------------------------------------------------------------------------------------------------
# RecBole run
# --------------------------------------------------------------------------------------------------------------

RUNNER = r'''
"""Executed with the RecBole venv's python: python runner.py config.json. Prints one line 'RESULT {json}'."""
import json, resource, sys, time

with open(sys.argv[1]) as f:
    spec = json.load(f)

import torch
torch.set_num_threads(spec["threads"])

from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.trainer import Trainer
from recbole.utils import get_model, get_trainer, init_logger, init_seed

train_s, valid_s, valid_scores, test_s = [], [], [], []
_state = {"in_valid": False}

_orig_train_epoch = Trainer._train_epoch
_orig_valid_epoch = Trainer._valid_epoch
_orig_evaluate = Trainer.evaluate


def _train_epoch(self, *args, **kwargs):
    t0 = time.perf_counter()
    out = _orig_train_epoch(self, *args, **kwargs)
    train_s.append(time.perf_counter() - t0)
    return out


def _valid_epoch(self, *args, **kwargs):
    _state["in_valid"] = True
    t0 = time.perf_counter()
    try:
        score, result = _orig_valid_epoch(self, *args, **kwargs)
    finally:
        _state["in_valid"] = False
    valid_s.append(time.perf_counter() - t0)
    valid_scores.append((len(train_s), float(score), {k: float(v) for k, v in result.items()}))
    return score, result


def _evaluate(self, *args, **kwargs):
    if _state["in_valid"]:
        return _orig_evaluate(self, *args, **kwargs)
    t0 = time.perf_counter()
    out = _orig_evaluate(self, *args, **kwargs)
    test_s.append(time.perf_counter() - t0)
    return out


Trainer._train_epoch = _train_epoch
Trainer._valid_epoch = _valid_epoch
Trainer.evaluate = _evaluate

config = Config(model=spec["model"], dataset=spec["dataset"], config_dict=spec["config"])
torch.set_num_threads(spec["threads"])
init_seed(config["seed"], config["reproducibility"])
init_logger(config)
import logging
logging.getLogger().info(config)
dataset = create_dataset(config)
train_data, valid_data, test_data = data_preparation(config, dataset)
logging.getLogger().info(dataset)
sizes = {name: len(d._dataset) for name, d in (("train", train_data), ("valid", valid_data), ("test", test_data))}
init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
torch.set_num_threads(spec["threads"])

t_fit = time.perf_counter()
best_valid_score, best_valid_result = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
fit_s = time.perf_counter() - t_fit
test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)

# RecBole's early stopping keeps the first epoch with the strictly best score; epochs here count from 1.
best = max(valid_scores, key=lambda e: e[1]) if valid_scores else None
mean = lambda xs: sum(xs) / len(xs) if xs else None
result = {
    "library": "RecBole " + __import__("recbole").__version__,
    "model": spec["model"],
    "valid": {k: float(v) for k, v in best_valid_result.items()},
    "test": {k: float(v) for k, v in test_result.items()},
    "best_epoch": best[0] if best else None,
    "epochs_run": len(train_s),
    "train_s_per_epoch": mean(train_s),
    "valid_eval_s": mean(valid_s),
    "test_eval_s": test_s[-1] if test_s else None,
    "fit_s": fit_s,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "num_users": int(dataset.user_num) - 1,
    "num_items": int(dataset.item_num) - 1,
    "sizes": sizes,
    "train_s": train_s,
    "valid_s": valid_s,
    "history": [{"epoch": e, "valid_score": s, "valid": r} for e, s, r in valid_scores],
    "threads": torch.get_num_threads(),
    "config_used": {k: config[k] for k in spec["config"] if k not in ("data_path", "checkpoint_dir")} | {
        k: config[k] for k in ("require_pow", "train_neg_sample_args", "eval_step", "device") if k in config},
    "versions": {m: __import__(m).__version__ for m in ("torch", "numpy", "scipy", "pandas")},
}
print("RESULT " + json.dumps(result, default=str), flush=True)
'''


def write_recbole_data(split: Path, data_dir: Path) -> None:
    """``split/{train,valid,test}.tsv`` (header ``user_id\\titem_id``) -> ``data_dir/<name>/<name>.<split>.inter``."""
    out = data_dir / DATASET_NAME
    out.mkdir(parents=True, exist_ok=True)
    for part in SPLITS:
        lines = (split / f"{part}.tsv").read_text().splitlines()
        header = lines[0].split("\t")
        if header != ["user_id", "item_id"]:
            raise ValueError(f"{split / f'{part}.tsv'}: expected header user_id<TAB>item_id, got {header}")
        body = [ln for ln in lines[1:] if ln.strip()]
        (out / f"{DATASET_NAME}.{part}.inter").write_text("user_id:token\titem_id:token\n" + "\n".join(body) + "\n")


def recbole_config(args: argparse.Namespace, data_dir: Path, work: Path) -> dict:
    cfg = {
        "data_path": str(data_dir),
        "benchmark_filename": list(SPLITS),
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "load_col": {"inter": ["user_id", "item_id"]},
        "embedding_size": args.dim,
        "learning_rate": args.lr,
        "train_batch_size": args.batch_size,
        "eval_batch_size": args.eval_batch_size,
        "epochs": args.epochs,
        "stopping_step": args.patience,
        "eval_step": 1,
        "eval_args": {"mode": "full", "order": "RO"},
        "metrics": ["Recall", "NDCG"],
        "topk": [10, 20],
        "valid_metric": "NDCG@20",
        "metric_decimal_place": 6,
        "seed": args.seed,
        "reproducibility": True,
        "use_gpu": False,
        "worker": 0,
        "checkpoint_dir": str(work / "saved"),
        "show_progress": False,
        "state": "INFO",
    }
    if args.model == "LightGCN":
        cfg["n_layers"] = args.layers
        cfg["reg_weight"] = args.reg
        cfg["require_pow"] = args.reg_form == "squared"
    return cfg


def run_recbole(args: argparse.Namespace, venv: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix="recbole-run-"))
    try:
        data_dir = work / "data"
        write_recbole_data(args.split, data_dir)
        spec = {
            "model": args.model,
            "dataset": DATASET_NAME,
            "threads": args.threads,
            "config": recbole_config(args, data_dir, work),
        }
        log(f"RecBole {args.model}: running (log in {work / 'log'})")
        return run_runner(venv, RUNNER, spec, work, args.threads, args.verbose)
    finally:
        if args.keep:
            log(f"kept RecBole work dir {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------------
# fusionrec run
# --------------------------------------------------------------------------------------------------------------


def fusionrec_reg_weight(args: argparse.Namespace) -> tuple[float, str]:
    """fusionrec ``model.reg_weight`` matching RecBole's ``reg_weight`` for ``args.model``, and why (see the doc)."""
    if args.model == "LightGCN":
        if args.reg_form == "squared":
            return args.reg, (
                f"RecBole reg_weight={args.reg:g} with require_pow=True (EmbLoss = sum ||E||^2 / B / 2) "
                f"== fusionrec model.reg_weight={args.reg:g} (l2_penalty = sum ||E||^2 / (2B)): "
                "identical penalty, factor 1"
            )
        return args.reg, (
            f"RecBole reg_weight={args.reg:g} with its default require_pow=False (EmbLoss = sum ||E|| / B,"
            f" unsquared) vs fusionrec model.reg_weight={args.reg:g} (sum ||E||^2 / (2B)): the penalties "
            "differ in form; no factor makes them equal"
        )
    # RecBole's BPR is plain MF + BPRLoss: no regulariser and no item bias.
    return 0.0, (
        "fusionrec model.reg_weight=0 and model.item_bias=false: RecBole's BPR has no regularisation "
        f"term and no item bias (--reg {args.reg:g} is not used by either side)"
    )


def run_fusionrec(args: argparse.Namespace) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix="fusionrec-run-"))
    try:
        reg, _ = fusionrec_reg_weight(args)
        cmd = [
            str(FUSIONREC),
            "train",
            "-m",
            MODELS[args.model],
            "-d",
            "ml-100k",
            "data.split.method=files",
            f"data.split.path={args.split}",
            f"model.embedding_dim={args.dim}",
            f"model.reg_weight={reg:g}",
            f"train.lr={args.lr:g}",
            f"train.batch_size={args.batch_size}",
            f"train.patience={args.patience}",
            f"train.epochs={args.epochs}",
            f"train.seed={args.seed}",
            f"train.num_threads={args.threads}",
            "train.metric=ndcg@20",
            "--run-dir",
            str(run_dir),
            "-q",
        ]
        if args.model == "LightGCN":
            cmd.insert(cmd.index("--run-dir"), f"model.num_layers={args.layers}")
        else:
            cmd.insert(cmd.index("--run-dir"), "model.item_bias=false")
        rec = fusionrec_train(cmd, run_dir, args.threads, args.verbose)
        timings = rec.get("timings", {})
        return {
            "library": "fusionrec " + rec.get("versions", {}).get("fusionrec", "?"),
            "model": rec.get("model"),
            "valid": rec["metrics"]["valid"],
            "test": rec["metrics"]["test"],
            "best_epoch": rec.get("best_epoch"),
            "epochs_run": rec.get("epochs_run"),
            "train_s_per_epoch": timings.get("train_s_per_epoch"),
            "valid_eval_s": timings.get("eval_s"),
            "test_eval_s": timings.get("test_eval_s"),
            "peak_rss_mb": rec.get("peak_rss_mb"),
            "status": rec.get("status"),
            "num_users": rec.get("data", {}).get("users"),
            "num_items": rec.get("data", {}).get("items"),
            "sizes": rec.get("data", {}).get("sizes"),
            "train_s": [h.get("train_s") for h in rec.get("history", [])],
            "protocol": rec.get("evaluation", {}).get("protocol"),
            "command": cmd,
            "versions": rec.get("versions"),
        }
    finally:
        if args.keep:
            log(f"kept fusionrec run dir {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------------------


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_table(results: dict) -> None:
    cols = [
        "library",
        "Recall@10",
        "Recall@20",
        "NDCG@10",
        "NDCG@20",
        "best ep",
        "epochs",
        "s/epoch",
        "valid-eval s",
        "test-eval s",
        "peak RSS MB",
    ]
    rows = []
    for side in ("recbole", "fusionrec"):
        r = results.get(side)
        if r is None:
            continue
        t = r["test"]
        rows.append(
            [
                r["library"],
                *(_fmt(t.get(k), ".4f") for k in METRIC_KEYS),
                _fmt(r["best_epoch"], "d"),
                _fmt(r["epochs_run"], "d"),
                _fmt(r["train_s_per_epoch"], ".3f"),
                _fmt(r["valid_eval_s"], ".3f"),
                _fmt(r["test_eval_s"], ".3f"),
                _fmt(r["peak_rss_mb"], ".0f"),
            ]
        )
    widths = [max([len(c)] + [len(row[i]) for row in rows]) for i, c in enumerate(cols)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    print(f"\n{results['model']} on ml100k-peer-split (test metrics; best epoch on valid NDCG@20)")
    print(line(cols))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))
    if "recbole" in results and "fusionrec" in results:
        a, b = results["fusionrec"]["train_s_per_epoch"], results["recbole"]["train_s_per_epoch"]
        if a and b:
            results["ratio_s_per_epoch"] = a / b
            print(f"\nfusionrec s/epoch / RecBole s/epoch = {a / b:.2f}")
    print(f"reg: {results['reg_note']}")
    print(f"settings: {json.dumps(results['settings'])}")
    if results.get("install_s") is not None:
        print(f"RecBole venv install: {results['install_s']:.1f} s")
    for side, err in results.get("errors", {}).items():
        print(f"\n{side} FAILED:\n{err}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--model", default="LightGCN", choices=sorted(MODELS), help="RecBole model name")
    p.add_argument("--epochs", type=int, default=500)
    p.add_argument("--patience", type=int, default=30, help="RecBole stopping_step / fusionrec train.patience")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reg", type=float, default=1e-5, help="LightGCN reg_weight, both sides (see --reg-form)")
    p.add_argument(
        "--reg-form",
        choices=("squared", "recbole-default"),
        default="squared",
        help="squared: RecBole require_pow=True, the same penalty as fusionrec's; recbole-default: "
        "RecBole's shipped require_pow=False (unsquared norm)",
    )
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--layers", type=int, default=2, help="LightGCN layers")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument(
        "--eval-batch-size",
        type=int,
        default=4_096_000,
        help="RecBole eval_batch_size (interactions; full ranking scores it / n_items users at a time)",
    )
    p.add_argument("--only", choices=("recbole", "fusionrec"), help="run one side only")
    p.add_argument("--json", type=Path, metavar="OUT", help="save the results here")
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="throwaway venv for RecBole")
    p.add_argument("--reinstall", action="store_true", help="reinstall the RecBole venv's packages")
    p.add_argument("--split", type=Path, default=DEFAULT_SPLIT, help="dir with train/valid/test.tsv")
    p.add_argument("--keep", action="store_true", help="keep the temp data/log/run dirs")
    p.add_argument("--verbose", action="store_true", help="echo both libraries' own output")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.split = args.split.resolve()
    args.venv = outside_repository(args.venv)
    _, reg_note = fusionrec_reg_weight(args)
    results: dict = {
        "model": args.model,
        "reg_note": reg_note,
        "install_s": None,
        "settings": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("json", "verbose", "keep", "reinstall")
        },
    }
    errors = {}
    if args.only in (None, "recbole"):
        try:
            results["install_s"] = ensure_recbole_venv(args.venv, args.reinstall)
            results["recbole"] = run_recbole(args, args.venv)
        except (RuntimeError, subprocess.CalledProcessError) as e:
            errors["recbole"] = str(e)
            log(f"RecBole side failed: {e}")
    if args.only in (None, "fusionrec"):
        try:
            results["fusionrec"] = run_fusionrec(args)
        except RuntimeError as e:
            errors["fusionrec"] = str(e)
            log(f"fusionrec side failed: {e}")
    if errors:
        results["errors"] = errors
    print_table(results)
    save_json(args.json, results)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
