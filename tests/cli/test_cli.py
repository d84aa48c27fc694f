"""The command line: user errors are one line and exit 2; the main commands work end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

TINY = [
    "-d",
    "synthetic",
    "data.options.num_users=100",
    "data.options.num_items=60",
    "data.options.num_interactions=2000",
    "model.embedding_dim=8",
    "train.epochs=2",
]


def cli(*args, env_home, check=True):
    env = {**os.environ, "FUSIONREC_HOME": str(env_home), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "fusionrec.cli.main", *args], capture_output=True, text=True, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "-m", "nope", "-d", "synthetic"], "unknown model 'nope'; choose one of:"),
        (["train", "-m", "bpr", "-d", "no-such-data"], "unknown data set 'no-such-data'"),
        (["train", "-m", "bpr", "-d", "synthetic", "train.lrr=1"], "unknown key 'train.lrr'; valid keys:"),
        (["train", "-m", "bpr", "-d", "synthetic", "trainlr"], "is not key=value"),
        (["data", "info", "/definitely/not/here"], "unknown data set '/definitely/not/here'"),
        (["evaluate", "/definitely/not/here"], "not a run directory"),
        (
            ["train", "-m", "bpr", "-d", "synthetic", "train.candidates=unseen"],
            "train.candidates moved to task.candidates",
        ),
        (["train", "-m", "sasrec", "-d", "synthetic", "task.candidates=unseen"], "unknown key 'task.candidates'"),
        (["compare", "/definitely/not/here"], "neither a run directory nor a folder of runs"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(args, needle, tmp_path):
    proc = cli(*args, env_home=tmp_path, check=False)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_train_evaluate_recommend_compare(tmp_path):
    run_dir = tmp_path / "run"
    proc = cli("train", "-m", "bpr", *TINY, "--run-dir", str(run_dir), "-q", env_home=tmp_path)
    assert "recall@20" in proc.stdout and str(run_dir) in proc.stdout.replace("\n", "")
    record = json.loads((run_dir / "record.json").read_text())
    evaluated = cli("evaluate", str(run_dir), env_home=tmp_path).stdout
    assert f"{record['metrics']['test']['ndcg@20']:.4f}" in evaluated
    recs = cli("recommend", str(run_dir), "--user", "0", "-k", "5", env_home=tmp_path).stdout
    assert sum(1 for line in recs.splitlines() if line.strip().startswith("│")) == 5
    assert "unknown user" in cli("recommend", str(run_dir), "--user", "zz", env_home=tmp_path, check=False).stderr
    no_reasons = cli("recommend", str(run_dir), "--user", "0", "-k", "3", "--why", env_home=tmp_path)
    assert "gives no per-item reasons" in no_reasons.stderr and "fusionrec explain" in no_reasons.stderr
    compared = cli("compare", str(run_dir), str(run_dir), env_home=tmp_path).stdout
    assert compared.count("bpr") >= 2
    unread = cli(
        "train", "-m", "bpr", *TINY, "--run-dir", str(tmp_path / "no-test"), "-q", "--no-test", env_home=tmp_path
    ).stdout
    assert "valid" in unread and "test" not in unread.split("status")[0]
    assert json.loads((tmp_path / "no-test" / "record.json").read_text())["metrics"]["test"] is None


def test_recommend_and_explain_a_sequential_run(tmp_path):
    run_dir = tmp_path / "runs" / "sasrec"
    cli(
        "train",
        "-m",
        "sasrec",
        "-d",
        "synthetic",
        "data.options.num_users=60",
        "data.options.num_items=40",
        "data.options.num_interactions=900",
        "data.split.method=loo",
        "model.hidden_dim=16",
        "model.max_length=10",
        "train.epochs=2",
        "--run-dir",
        str(run_dir),
        "-q",
        env_home=tmp_path,
    )
    recs = cli("recommend", str(run_dir), "--user", "0", "-k", "4", "--why", env_home=tmp_path).stdout
    assert "because of" in recs and sum(1 for line in recs.splitlines() if line.strip().startswith("│")) == 4
    explained = cli("explain", str(run_dir), "--user", "0", env_home=tmp_path).stdout
    assert "attention of the predicting slot" in explained and "heat map" in explained
    assert (run_dir / "explanations" / "attention-u0.png").exists()  # in the run folder, not the working directory
    as_json = json.loads(cli("explain", str(run_dir), "--user", "0", "--json", env_home=tmp_path).stdout)
    assert len(as_json["details"]["attention"]) == len(as_json["details"]["items"])
    compared = cli("compare", str(tmp_path / "runs"), env_home=tmp_path).stdout  # a folder of runs
    assert "sasrec" in compared


def test_list_models_and_datasets(tmp_path):
    models = cli("list", "models", env_home=tmp_path).stdout
    for name in ("bpr", "lightgcn", "vbpr"):
        assert name in models
    datasets = cli("list", "datasets", env_home=tmp_path).stdout
    assert "ml-100k" in datasets and "synthetic" in datasets
    assert "candidates" in cli("list", "tasks", env_home=tmp_path).stdout
    assert "ml100k/ease" in cli("list", "configs", env_home=tmp_path).stdout
    assert "mmrec" in cli("list", "formats", env_home=tmp_path).stdout
    assert "[x_1; ...; x_M]" in cli("list", "fusions", env_home=tmp_path).stdout  # not eaten as Rich markup
    assert cli("--version", env_home=tmp_path).stdout.startswith("fusionrec ")


def test_data_prepare_and_info(tmp_path):
    out = cli(
        "data",
        "prepare",
        "synthetic",
        "-o",
        "num_users=50",
        "-o",
        "num_items=40",
        "-o",
        "num_interactions=800",
        "--split",
        "loo",
        env_home=tmp_path,
    ).stdout
    assert "users" in out and "prepared:" in out
