"""DeepCTR-Torch and fusionrec side by side on the identical ml-100k CTR split and fields (DeepFM, DCN).

Run with fusionrec's interpreter::

    .venv/bin/python benchmarks/peers/deepctr_ctr_side_by_side.py --threads 1 --json OUT.json
    .venv/bin/python benchmarks/peers/deepctr_ctr_side_by_side.py --models DeepFM --max-epochs 2   # smoke

The split and the inputs are fusionrec's: ml-100k, label rating >= 4, per-user temporal 80/10/10 split, the
fields of ``benchmarks/specs/ctr-ml100k.yaml`` without the text vector (ids, age bucket, gender, occupation,
zip prefix, year: categorical; genres and title tokens: variable-length, mean-combined). fusionrec's ctr task fits
the codes on training rows and this script hands the same integer codes and labels to DeepCTR-Torch, so both
libraries see identical rows and vocabularies.

Settings, both sides: embedding 16, DNN (256, 128) ReLU, dropout 0.1, embedding L2 1e-6, Adam lr 1e-3, batches
of 2,048 rows, at most ``--max-epochs`` epochs, the epoch chosen on validation logloss (patience 2), test read
once with the best epoch's weights. DCN: DeepCTR-Torch's ``DCN(cross_parameterization="matrix")`` (DCN-v2's
full-matrix cross layer), 3 cross layers, against fusionrec's ``dcn_v2``. DeepCTR-Torch adds a linear (wide)
logit to its DCN; fusionrec's ``dcn_v2`` follows the paper (no linear part).
Seconds per epoch are each library's training time only; the peer runs in its own throwaway venv
(``~/.cache/fusionrec-peers/deepctr-venv``), created on first use.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_venv import CACHE, ensure_venv, fusionrec_train, log, outside_repository, run_runner, save_json  # noqa: E402

FUSIONREC = Path(sys.executable).with_name("fusionrec")
INSTALL_STEPS = (("torch==2.13.0",), ("deepctr-torch==0.3.0", "scikit-learn", "pandas", "requests"))
CHECK = "import deepctr_torch, torch; print('deepctr_torch, torch =', deepctr_torch.__version__, torch.__version__)"
FIELDS = [
    "task.rating_threshold=4",
    "data.split.method=temporal",
    "task.fields.user.source=user_id",
    "task.fields.item.source=item_id",
    "task.fields.age.source=user",
    "task.fields.age.kind=numeric",
    "task.fields.age.transform=bucketize",
    "task.fields.age.num_buckets=8",
    "task.fields.gender.source=user",
    "task.fields.occupation.source=user",
    "task.fields.zip.source=user",
    "task.fields.zip.column=zip_code",
    "task.fields.zip.prefix=2",
    "task.fields.genres.source=item",
    "task.fields.genres.kind=multi",
    "task.fields.year.source=item",
    "task.fields.title.source=item",
    "task.fields.title.kind=tokens",
]
SHARED = ["model.embedding_dim=16", "model.hidden_dims=[256,128]", "model.dropout=0.1", "model.embedding_reg=1e-6"]
MODELS = {"DeepFM": ("deepfm", []), "DCN": ("dcn_v2", ["model.num_cross_layers=3"])}

RUNNER = r"""
import json, sys, time, copy
import numpy as np, torch
from sklearn.metrics import roc_auc_score, log_loss
from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat
from deepctr_torch.models import DeepFM, DCN

spec = json.load(open(sys.argv[1]))
torch.set_num_threads(spec["threads"])
torch.manual_seed(spec["seed"]); np.random.seed(spec["seed"])
data = np.load(spec["data"], allow_pickle=True)
names, vocab, lengths = list(data["names"]), [int(v) for v in data["vocab"]], [int(v) for v in data["lengths"]]
columns = []
for name, size, length in zip(names, vocab, lengths):
    feat = SparseFeat(name, vocabulary_size=size, embedding_dim=16)
    columns.append(VarLenSparseFeat(feat, maxlen=length, combiner="mean") if length else feat)

def inputs(split):
    return {n: data[f"{split}_{n}"] for n in names}

common = dict(dnn_hidden_units=(256, 128), dnn_dropout=0.1, l2_reg_embedding=1e-6, task="binary", seed=spec["seed"])
if spec["model"] == "DeepFM":
    model = DeepFM(columns, columns, **common)
else:
    model = DCN(columns, columns, cross_num=3, cross_parameterization="matrix", **common)
model.compile(torch.optim.Adam(model.parameters(), lr=1e-3), "binary_crossentropy")
best, best_state, bad, history = None, None, 0, []
for epoch in range(1, spec["max_epochs"] + 1):
    start = time.perf_counter()
    model.fit(inputs("train"), data["train_label"], batch_size=2048, epochs=1, verbose=0, shuffle=True)
    seconds = time.perf_counter() - start
    p = model.predict(inputs("valid"), batch_size=8192)
    loss = log_loss(data["valid_label"], np.clip(p, 1e-7, 1 - 1e-7))
    history.append({"epoch": epoch, "train_s": seconds, "valid_logloss": loss, "valid_auc": roc_auc_score(data["valid_label"], p)})
    if best is None or loss < best:
        best, best_state, bad, best_epoch = loss, copy.deepcopy(model.state_dict()), 0, epoch
    else:
        bad += 1
        if bad >= 2:
            break
model.load_state_dict(best_state)
p = model.predict(inputs("test"), batch_size=8192)
y = data["test_label"]
result = {"auc": roc_auc_score(y, p), "logloss": log_loss(y, np.clip(p, 1e-7, 1 - 1e-7))}
print("RESULT " + json.dumps({"test": result, "best_epoch": best_epoch, "history": history,
      "train_s_per_epoch": sum(h["train_s"] for h in history) / len(history)}))
"""


def export_split(work: Path) -> Path:
    """fusionrec's fitted codes and labels of every split, as the peer's inputs (one array per field)."""
    from fusionrec.api import build_task, resolve_config
    from fusionrec.data.prepare import prepare
    from fusionrec.data.store import load_dataset_dir

    run_config, model_config = resolve_config("deepfm", "ml-100k", None, FIELDS)
    dataset = load_dataset_dir(prepare(run_config.data))
    task = build_task(run_config, dataset, model_config)
    names = [f.name for f in task.layout.fields]
    arrays: dict[str, np.ndarray] = {
        "names": np.array(names),
        "vocab": np.array([f.vocab_size for f in task.layout.fields]),
        "lengths": np.array([f.length for f in task.layout.fields]),
    }
    for split in ("train", "valid", "test"):
        batch = task.batch(task.rows[split])
        categorical = iter(batch.categorical.T.numpy())
        sequences = iter(s.numpy() for s in batch.sequences)
        for field in task.layout.fields:
            arrays[f"{split}_{field.name}"] = next(sequences) if field.kind == "sequence" else next(categorical)
        arrays[f"{split}_label"] = batch.labels.numpy()
    path = work / "ml100k_ctr.npz"
    np.savez(path, **arrays)
    log(f"exported {', '.join(f'{s} {len(task.rows[s])}' for s in ('train', 'valid', 'test'))} rows, fields {names}")
    return path


def run_fusionrec(model: str, args: argparse.Namespace) -> dict:
    name, extra = MODELS[model]
    run_dir = Path(tempfile.mkdtemp(prefix="fusionrec-run-"))
    try:
        cmd = [str(FUSIONREC), "train", "-m", name, "-d", "ml-100k", *FIELDS, *SHARED, *extra]
        cmd += ["train.lr=0.001", "train.batch_size=2048", f"train.epochs={args.max_epochs}", "train.patience=2"]
        cmd += ["train.metric=logloss", f"train.seed={args.seed}", f"train.num_threads={args.threads}"]
        cmd += ["--run-dir", str(run_dir), "-q"]
        rec = fusionrec_train(cmd, run_dir, args.threads)
        return {
            "library": f"fusionrec {rec['versions'].get('fusionrec', '?')}",
            "test": rec["metrics"]["test"],
            "best_epoch": rec["best_epoch"],
            "train_s_per_epoch": rec["timings"]["train_s_per_epoch"],
        }
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=sorted(MODELS, reverse=True))
    p.add_argument("--max-epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--venv", type=Path, default=CACHE / "deepctr-venv")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    args.venv = outside_repository(args.venv)
    ensure_venv(args.venv, INSTALL_STEPS, CHECK)
    work = Path(tempfile.mkdtemp(prefix="deepctr-run-"))
    results: dict = {"split": "ml-100k CTR, rating >= 4, per-user temporal 80/10/10", "models": {}}
    try:
        data = export_split(work)
        for model in args.models:
            spec = {"model": model, "data": str(data), "seed": args.seed, "threads": args.threads}
            peer = run_runner(args.venv, RUNNER, {**spec, "max_epochs": args.max_epochs}, work, args.threads)
            ours = run_fusionrec(model, args)
            results["models"][model] = {"deepctr-torch": peer, "fusionrec": ours}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| model | library | test AUC | test logloss | best epoch | s/epoch | s/epoch ratio (fusionrec / peer) |")
    print("|---|---|---|---|---|---|---|")
    for model, pair in results["models"].items():
        ratio = pair["fusionrec"]["train_s_per_epoch"] / pair["deepctr-torch"]["train_s_per_epoch"]
        for library, r in (
            ("deepctr-torch 0.3.0", pair["deepctr-torch"]),
            (pair["fusionrec"]["library"], pair["fusionrec"]),
        ):
            print(
                f"| {model} | {library} | {r['test']['auc']:.4f} | {r['test']['logloss']:.4f} | {r['best_epoch']} | "
                f"{r['train_s_per_epoch']:.2f} | {ratio:.2f} |"
            )
    save_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
