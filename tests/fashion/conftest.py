"""Tiny Fashion-MNIST-format images for the planted-fashion tests (no shared data needed)."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data.builtin.planted_fashion import write_idx


def tiny_images(folder, per_class: int = 2, seed: int = 0):
    """``per_class`` random 28 x 28 images of each of the 10 classes, each class with its own bright block
    (so classes differ), written as the two IDX files in ``folder``."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), per_class).astype(np.uint8)
    images = rng.integers(0, 40, (len(labels), 28, 28)).astype(np.uint8)
    for n, c in enumerate(labels):
        images[n, 2 * c : 2 * c + 8, 4:24] = 200 + c  # a class-specific stripe
    return write_idx(folder, images, labels)


@pytest.fixture(scope="session")
def tiny_image_folder(tmp_path_factory):
    return tiny_images(tmp_path_factory.mktemp("fmnist"))


@pytest.fixture(scope="session")
def planted_tiny(tiny_image_folder):
    """A 40-user, 60-item planted-fashion set from the tiny images, random 80/10/10 split."""
    from fusionrec.data import load_dataset

    return load_dataset(
        "planted-fashion",
        options={
            "num_users": 40,
            "num_items": 60,
            "interactions_per_user": 12,
            "seed": 1,
            "images": str(tiny_image_folder),
        },
    )
