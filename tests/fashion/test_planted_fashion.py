"""The planted-region fashion set: its ground truth is what it says, reviews name the liked garment, and
the features are the pixels of the composed images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fusionrec.data.builtin.planted_fashion import CLASSES, WORDS, ground_truth, read_idx
from fusionrec.data.paths import shared_dir
from fusionrec.errors import DataError


def layouts(dataset) -> np.ndarray:
    return np.array([[int(c) for c in row.split()] for row in dataset.items["layout"]])


def test_ground_truth_region_holds_the_users_liked_garment(planted_tiny):
    ds = planted_tiny
    cells = layouts(ds)  # (I, 9)
    liked = ds.users["liked"].map(CLASSES.index).to_numpy()  # (U,)
    inter = ds.interactions
    users, items, gt = (inter[c].to_numpy() for c in ("user", "item", "gt_region"))
    planted = gt >= 0
    assert planted.mean() > 0.7  # most interactions follow the user's taste (noise 0.1)
    assert (cells[items[planted], gt[planted]] == liked[users[planted]]).all()
    # an interaction without a ground-truth region is one whose item lacks the liked garment
    assert not (cells[items[~planted]] == liked[users[~planted], None]).any()
    assert set(ds.split_sizes()) == {"train", "valid", "test"} and min(ds.split_sizes().values()) > 0
    assert len(ground_truth(ds, "test")) == int(((inter["split"] == 2) & planted).sum())


def test_every_item_has_one_top_one_pair_of_shoes_and_one_extra(planted_tiny):
    cells = layouts(planted_tiny)
    assert ((cells >= 0).sum(1) == 3).all()
    for group in ((0, 2, 3, 4, 6), (5, 7, 9), (1, 8)):
        assert (np.isin(cells, group).sum(1) == 1).all()
    labels = planted_tiny.modalities["attribute"].values
    expected = np.zeros_like(labels)
    for i, row in enumerate(cells):
        expected[i, row[row >= 0]] = 1
    np.testing.assert_array_equal(labels, expected)
    assert planted_tiny.modalities["attribute"].labels == list(CLASSES)


def test_reviews_name_the_liked_garment(planted_tiny):
    inter, users = planted_tiny.interactions, planted_tiny.users
    liked = users["liked"].map(CLASSES.index).to_numpy()
    rows = inter[inter["gt_region"] >= 0]
    for user, review in zip(rows["user"].to_numpy()[:50], rows["review"].to_numpy()[:50]):
        assert WORDS[liked[user]] in review


def test_region_features_are_the_pooled_pixels_of_the_item_image(planted_tiny):
    ds = planted_tiny
    regions = ds.modalities["image_regions"].values
    assert regions.shape == (60, 9, 196) and ds.modalities["image"].values.shape == (60, 196)
    cells = layouts(ds)
    for item in (0, 7):
        picture = np.asarray(Image.open(ds.items["image_path"].iloc[item]), dtype=np.float32) / 255.0  # (84, 84)
        assert picture.shape == (84, 84)
        for r in range(9):
            cell = picture[28 * (r // 3) : 28 * (r // 3 + 1), 28 * (r % 3) : 28 * (r % 3 + 1)]
            pooled = cell.reshape(14, 2, 14, 2).mean(axis=(1, 3)).ravel()
            np.testing.assert_allclose(regions[item, r], pooled, atol=1e-6)
            assert (cell.max() == 0) == (cells[item, r] < 0)  # empty cells are black


def test_same_seed_same_set_and_another_seed_another(tiny_image_folder):
    from fusionrec.data.builtin.planted_fashion import PlantedFashionOptions, load_planted_fashion

    opts = {"num_users": 10, "num_items": 20, "interactions_per_user": 5, "images": str(tiny_image_folder)}
    a = load_planted_fashion(PlantedFashionOptions(**opts, seed=4))
    b = load_planted_fashion(PlantedFashionOptions(**opts, seed=4))
    c = load_planted_fashion(PlantedFashionOptions(**opts, seed=5))
    assert a.interactions.equals(b.interactions) and list(a.items["layout"]) == list(b.items["layout"])
    assert list(a.items["layout"]) != list(c.items["layout"])


def test_images_missing_a_class_are_refused(tmp_path):
    from fusionrec.data.builtin.planted_fashion import PlantedFashionOptions, load_planted_fashion, write_idx

    write_idx(tmp_path, np.zeros((9, 28, 28), np.uint8), np.arange(9, dtype=np.uint8))  # no Ankle boot
    with pytest.raises(DataError, match="Ankle boot"):
        load_planted_fashion(PlantedFashionOptions(images=str(tmp_path)))
    with pytest.raises(DataError, match="does not exist"):
        load_planted_fashion(PlantedFashionOptions(images=str(tmp_path / "nowhere")))


@pytest.mark.skipif(shared_dir("data/fashion-mnist-test") is None, reason="needs ../shared/data/fashion-mnist-test")
def test_reads_the_real_fashion_mnist_test_images():
    root = shared_dir("data/fashion-mnist-test") / "data" / "fashion-mnist-test"  # type: ignore[operator]
    images, labels = read_idx(root / "t10k-images-idx3-ubyte.gz", root / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10_000, 28, 28) and np.bincount(labels).tolist() == [1000] * 10
