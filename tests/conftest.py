"""Shared fixtures: an isolated cache and a tiny synthetic data set."""

from __future__ import annotations

import pytest
import torch

# `make test` runs two pytest workers on two cores: one thread each avoids oversubscription, which
# slows small BLAS and sparse kernels down by an order of magnitude.
torch.set_num_threads(1)
try:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test writes its caches under a temporary FUSIONREC_HOME, never the user's."""
    monkeypatch.setenv("FUSIONREC_HOME", str(tmp_path_factory.getbasetemp() / "fusionrec-home"))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A 120-user, 80-item synthetic set with visual and text modalities, random 80/10/10 split."""
    import os

    os.environ["FUSIONREC_HOME"] = str(tmp_path_factory.getbasetemp() / "fusionrec-home")
    from fusionrec.data import load_dataset

    return load_dataset(
        "synthetic",
        options={
            "num_users": 120,
            "num_items": 80,
            "num_interactions": 3000,
            "visual_dim": 12,
            "text_dim": 10,
            "seed": 3,
        },
    )


@pytest.fixture(scope="session")
def cold_item_dataset(tmp_path_factory):
    """150 users, 200 items, 30% of the items held out of training (cold-item split, seed 1)."""
    import os

    os.environ["FUSIONREC_HOME"] = str(tmp_path_factory.getbasetemp() / "fusionrec-home")
    from fusionrec.data import load_dataset

    return load_dataset(
        "synthetic",
        options={
            "num_users": 150,
            "num_items": 200,
            "num_interactions": 3000,
            "visual_dim": 8,
            "text_dim": 6,
            "seed": 4,
        },
        split={"method": "cold_item", "cold_item_ratio": 0.3, "seed": 1},
    )
