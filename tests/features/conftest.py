"""Fixtures of the feature tests: a private FUSIONREC_HOME per test, and a tiny data set folder
with item texts (some missing), image files (missing and corrupt ones) and reviews in every split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from features_helpers import TEXTS, write_images

from fusionrec.data.dataset import build_dataset
from fusionrec.data.store import save_dataset


@pytest.fixture(autouse=True)
def _private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("FUSIONREC_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture
def tiny_folder(tmp_path: Path) -> Path:
    """8 items, 6 users; texts with a missing and an empty one; images as write_images; reviews."""
    n = len(TEXTS)
    folder = tmp_path / "tiny"
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(6), 4)
    items = np.concatenate([rng.choice(n, 4, replace=False) for _ in range(6)])
    split = np.tile([0, 0, 1, 2], 6)
    inter = pd.DataFrame(
        {
            "user": users,
            "item": items,
            "split": split,
            "review": [f"{'TRAIN' if s == 0 else 'HELDOUT'} review {u}-{i}" for u, i, s in zip(users, items, split)],
        }
    )
    table = pd.DataFrame(
        {
            "item": np.arange(n),
            "text": TEXTS,
            "title": [f"thing {i}" for i in range(n)],
            "image_path": write_images(tmp_path / "tiny_images", n),
        }
    )
    dataset = build_dataset("tiny", inter, items=table, item_universe=np.arange(n))
    dataset.interactions["review"] = inter["review"].to_numpy()
    save_dataset(dataset, folder)
    return folder
