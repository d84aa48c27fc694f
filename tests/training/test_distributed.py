"""Data-parallel training: shards of a batch, the torchrun command, devices, and real 2-process runs.

The 2-process runs start ``fusionrec train --nproc 2`` (torchrun, gloo on CPU) on a tiny synthetic
set: a dropout-free model must follow the 1-process run's losses at the same global batch, and a
DDP run resumed from its checkpoint must end exactly where the uninterrupted DDP run did.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fusionrec
from fusionrec.api import train
from fusionrec.data.batches import PairBatch, SequenceBatch, UserBatch
from fusionrec.errors import ConfigError
from fusionrec.training.device import resolve_device
from fusionrec.training.distributed import torchrun_command

TINY = [
    "data.options.num_users=120",
    "data.options.num_items=80",
    "data.options.num_interactions=3000",
    "train.batch_size=256",
    "train.lr=0.01",
]


def test_shards_cover_every_row_once_and_keep_shared_fields():
    pairs = PairBatch(torch.arange(7), torch.arange(7) + 10, torch.arange(14).view(7, 2))
    parts = [pairs.shard(rank, 3) for rank in range(3)]
    assert torch.equal(torch.cat([p.users for p in parts]), pairs.users)
    assert torch.equal(torch.cat([p.neg_items for p in parts]), pairs.neg_items)
    assert [len(p) for p in parts] == [2, 2, 3]
    users = UserBatch(torch.arange(4), items=torch.tensor([5, 6, 7]))
    assert torch.equal(users.shard(1, 2).items, users.items)  # candidates are not rows
    sequences = SequenceBatch(
        torch.arange(4),
        torch.zeros(4, 3, dtype=torch.long),
        torch.zeros(4, 3, dtype=torch.long),
        negatives=torch.arange(9),  # (N,): shared by every target of the batch
        side={"genre": torch.arange(12).view(4, 3)},
    )
    half = sequences.shard(1, 2)
    assert torch.equal(half.negatives, sequences.negatives) and torch.equal(
        half.side["genre"], torch.arange(6, 12).view(2, 3)
    )


def test_torchrun_command_drops_nproc_and_runs_the_cli():
    command = torchrun_command(2, ["train", "-m", "bpr", "--nproc", "2", "--nproc=2", "train.epochs=1"])
    assert command[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    assert command[5:] == ["-m", "fusionrec", "train", "-m", "bpr", "train.epochs=1"]


def test_devices_resolve_or_are_refused_in_one_line():
    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto") == "cpu"
        with pytest.raises(ConfigError, match="no CUDA GPU is visible here"):
            resolve_device("cuda:0")
    with pytest.raises(ConfigError, match="bf16 is for CUDA"):
        resolve_device("cpu", "bf16")


def _torchrun(tmp_path: Path, name: str, args: list[str]) -> dict:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(fusionrec.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    )
    env["FUSIONREC_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, "-m", "fusionrec", "train", "--nproc", "2", "-q", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((tmp_path / name / "record.json").read_text())


def test_two_processes_follow_one_at_the_same_global_batch(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONREC_HOME", str(tmp_path / "home"))
    args = ["-m", "lightgcn", "-d", "synthetic", *TINY, "model.embedding_dim=8", "train.epochs=2"]
    # one thread, as each rank has: the kernels then differ only in how the batch is split
    single = train(*args[1:4:2], overrides=[*args[4:], "train.num_threads=1"], run_dir=tmp_path / "one", progress=False)
    double = _torchrun(tmp_path, "two", [*args, "--run-dir", str(tmp_path / "two")])
    assert double["distributed"] == {"world_size": 2, "backend": "gloo", "global_batch": 256}
    losses = [h["loss"] for h in double["history"]]
    assert losses == pytest.approx([h["loss"] for h in single.record["history"]], rel=1e-5)
    # float rounding may flip a near-tie among 80 items: one user's rank moves NDCG by ~1e-3
    assert double["metrics"]["test"]["ndcg@20"] == pytest.approx(single.test_metrics["ndcg@20"], abs=5e-3)


def test_a_resumed_two_process_run_ends_where_the_uninterrupted_one_did(tmp_path):
    # SASRec has dropout: exactness needs the per-(epoch, rank) seeding that --resume repeats
    args = [
        "-m",
        "sasrec",
        "-d",
        "synthetic",
        *TINY,
        "data.split.method=loo",
        "model.hidden_dim=16",
        "model.max_length=12",
    ]
    full = _torchrun(tmp_path, "full", [*args, "train.epochs=3", "--run-dir", str(tmp_path / "full")])
    _torchrun(tmp_path, "part", [*args, "train.epochs=1", "--run-dir", str(tmp_path / "part")])
    resumed = _torchrun(tmp_path, "part", ["--resume", str(tmp_path / "part"), "train.epochs=3"])
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in full["history"]]
    assert resumed["metrics"]["test"] == full["metrics"]["test"]


def test_a_two_process_kg_run_evaluates_its_triples_in_two_parts_and_matches_one(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONREC_HOME", str(tmp_path / "home"))
    options = ["data.options.num_entities=60", "data.options.num_relations=3", "data.options.num_clusters=4"]
    args = ["-m", "distmult", "-d", "synthetic-kg", *options, "model.dim=8", "train.epochs=2", "train.batch_size=64"]
    single = train(
        "distmult",
        "synthetic-kg",
        overrides=[*args[4:], "train.num_threads=1"],
        run_dir=tmp_path / "one",
        progress=False,
    )
    double = _torchrun(tmp_path, "two", [*args, "--run-dir", str(tmp_path / "two")])
    assert double["distributed"]["world_size"] == 2
    assert [h["loss"] for h in double["history"]] == pytest.approx(
        [h["loss"] for h in single.record["history"]], rel=1e-5
    )
    assert double["metrics"]["test"] == pytest.approx(single.test_metrics, rel=1e-4)
