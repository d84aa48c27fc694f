"""Tiny trained runs shared by the serving tests (trained once per session)."""

from __future__ import annotations

import pytest

from fusionrec import api

SYNTH = [
    "data.options.num_users=80",
    "data.options.num_items=60",
    "data.options.num_interactions=2400",
    "data.options.visual_dim=8",
    "data.options.text_dim=6",
    "data.options.seed=2",
    "train.epochs=2",
    "train.batch_size=256",
]


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """``{model: run_dir}`` for BPR (inner product), MARIO (modality attention), SASRec (sequences), DeepFM
    (ctr) and biased MF (rating)."""
    import os

    root = tmp_path_factory.mktemp("serving-runs")
    os.environ["FUSIONREC_HOME"] = str(root / "home")
    return {
        "bpr": api.train("bpr", "synthetic", overrides=SYNTH, run_dir=root / "bpr", progress=False).run_dir,
        "mario": api.train("mario", "synthetic", overrides=SYNTH, run_dir=root / "mario", progress=False).run_dir,
        "sasrec": api.train(
            "sasrec",
            "synthetic",
            overrides=[*SYNTH, "data.split.method=loo", "model.hidden_dim=16", "model.max_length=12"],
            run_dir=root / "sasrec",
            progress=False,
        ).run_dir,
        # the pointwise families serve through the same task interface
        "deepfm": api.train(
            "deepfm",
            "ctr-synthetic",
            overrides=["data.options.num_rows=4000", "train.epochs=1"],
            run_dir=root / "deepfm",
            progress=False,
        ).run_dir,
        "biased_mf": api.train(
            "biased_mf",
            "synthetic-reviews",
            overrides=["data.options.num_reviews=2000", "train.epochs=1"],
            run_dir=root / "biased_mf",
            progress=False,
        ).run_dir,
    }
