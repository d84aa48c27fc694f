"""Cornac 3.0.1 and fusionrec side by side on the identical rating split: biased MF, RMSE and s/epoch.

Run with fusionrec's interpreter::

    nice -n 10 .venv/bin/python benchmarks/peers/cornac_rating_side_by_side.py [--data amazon-musical-instruments]

The split is fusionrec's (per-user random 80/10/10, ``data.split.seed`` 2024): its train, valid and test
rows are written as (raw user, raw item, rating) files and both libraries read the same rows. Models:
Cornac's ``MF`` (biases on, SGD per rating in Cython, its default learning rate 0.01 and lambda 0.02,
k 32) and fusionrec's ``biased_mf`` (k 32, Adam on batches of 128, lambda 0.05 as in
benchmarks/specs/rating.yaml). Cornac's MF has no validation-based early stopping, so its number of
epochs is chosen on validation RMSE among ``--cornac-epochs`` (each a fresh fit); fusionrec stops on
validation MSE. Test is read once per library, for the chosen setting. Predictions of both are clipped
to [1, 5]; Cornac scores an unknown item with the training mean (fusionrec with its biases).
Seconds per epoch are training time only (no evaluation), one process, ``--threads`` threads.
Cornac runs in its own throwaway venv (``~/.cache/fusionrec-peers/cornac-rating-venv``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_venv import CACHE, ensure_venv, fusionrec_train, log, run_runner, save_json  # noqa: E402

INSTALL_STEPS = (("cornac==3.0.1",),)
CHECK = "import cornac; print('cornac', cornac.__version__)"
FUSIONREC = Path(sys.executable).with_name("fusionrec")

RUNNER = r"""
import json, sys, time
import numpy as np
import cornac
from cornac.data import Dataset

spec = json.load(open(sys.argv[1]))
def read(name):
    rows = [line.rstrip("\n").split("\t") for line in open(spec[name], encoding="utf-8")]
    return [(u, i, float(r)) for u, i, r in rows]
train, valid, test = read("train"), read("valid"), read("test")
data = Dataset.from_uir(train, seed=0)
mean = float(np.mean([r for _, _, r in train]))

def rmse(model, rows):
    errors = []
    for u, i, r in rows:
        uid, iid = data.uid_map.get(u), data.iid_map.get(i)
        if uid is None or iid is None:
            pred = mean
        else:
            pred = float(model.score(uid, iid))
        errors.append(min(max(pred, 1.0), 5.0) - r)
    return float(np.sqrt(np.mean(np.square(errors))))

best = None
for epochs in spec["epochs"]:
    model = cornac.models.MF(k=32, max_iter=epochs, learning_rate=0.01, lambda_reg=0.02, use_bias=True,
                             early_stop=False, verbose=False, seed=0)
    start = time.perf_counter()
    model.fit(data)
    seconds = time.perf_counter() - start
    valid_rmse = rmse(model, valid)
    if best is None or valid_rmse < best[1]:
        best = (epochs, valid_rmse, seconds / epochs, model)
epochs, valid_rmse, per_epoch, model = best
print("RESULT " + json.dumps({"epochs": epochs, "valid_rmse": valid_rmse, "test_rmse": rmse(model, test),
                              "s_per_epoch": per_epoch, "version": cornac.__version__}))
"""


def export_split(data: str, folder: Path) -> dict[str, str]:
    """fusionrec's prepared split of ``data`` as three (user, item, rating) TSV files of raw ids."""
    from fusionrec.data.prepare import load_dataset

    dataset = load_dataset(data)
    inter = dataset.interactions
    paths = {}
    for code, name in enumerate(("train", "valid", "test")):
        rows = inter[inter["split"].to_numpy() == code]
        users = dataset.user_ids[rows["user"].to_numpy()]
        items = dataset.item_ids[rows["item"].to_numpy()]
        path = folder / f"{name}.tsv"
        with open(path, "w", encoding="utf-8") as fh:
            for u, i, r in zip(users, items, rows["rating"].to_numpy()):
                fh.write(f"{u}\t{i}\t{float(r)}\n")
        paths[name] = str(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="amazon-musical-instruments")
    parser.add_argument("--cornac-epochs", type=int, nargs="+", default=[2, 5, 10, 25, 50, 100])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    venv = CACHE / "cornac-rating-venv"
    ensure_venv(venv, INSTALL_STEPS, CHECK)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spec = {**export_split(args.data, work), "epochs": args.cornac_epochs}
        log("cornac: MF")
        theirs = run_runner(venv, RUNNER, spec, work, args.threads)
        run_dir = work / "fusionrec-run"
        cmd = [str(FUSIONREC), "train", "-m", "biased_mf", "-d", args.data, "--run-dir", str(run_dir)]
        cmd += ["train.lr=0.005", "train.epochs=80", "train.patience=8", "train.batch_size=128"]
        cmd += ["model.embedding_dim=32", "model.reg_weight=0.05", f"train.num_threads={args.threads}"]
        record = fusionrec_train(cmd, run_dir, args.threads)
    ours = {
        "epochs": record["best_epoch"],
        "valid_rmse": record["metrics"]["valid"]["rmse"],
        "test_rmse": record["metrics"]["test"]["rmse"],
        "s_per_epoch": record["timings"]["train_s_per_epoch"],
    }
    results = {"data": args.data, "cornac_mf": theirs, "fusionrec_biased_mf": ours}
    ratio = ours["s_per_epoch"] / theirs["s_per_epoch"]
    print(f"{args.data}, identical split; test RMSE (valid RMSE, epochs chosen on valid), s/epoch")
    print("| library | test RMSE | valid RMSE | epochs | s/epoch |\n|---|---:|---:|---:|---:|")
    print(
        f"| Cornac {theirs['version']} MF | {theirs['test_rmse']:.4f} | {theirs['valid_rmse']:.4f} | {theirs['epochs']} | {theirs['s_per_epoch']:.4f} |"
    )
    print(
        f"| fusionrec biased_mf | {ours['test_rmse']:.4f} | {ours['valid_rmse']:.4f} | {ours['epochs']} | {ours['s_per_epoch']:.4f} |"
    )
    print(
        f"s/epoch ratio fusionrec / Cornac: {ratio:.2f}; test RMSE difference {ours['test_rmse'] - theirs['test_rmse']:+.4f}"
    )
    save_json(args.json, {**results, "s_per_epoch_ratio": ratio, "numpy": np.__version__})


if __name__ == "__main__":
    main()
