"""A planted-region fashion set: item images composed of real Fashion-MNIST garments in known cells,
users whose taste depends on one garment, and short reviews naming it.

Why: explainable fashion recommenders (SAERS, VECF) promise to point at the image region behind a
recommendation, and no public set with users, images and reviews has a ground truth for that. Here
every item image is a ``grid x grid`` canvas of 28 x 28 cells (default 3 x 3, 84 x 84 pixels) holding
three real garments from Fashion-MNIST (the 10,000 test images, read at run time from
``<shared>/data/fashion-mnist-test``) in three random distinct cells, the other cells empty:

- one *top* (T-shirt/top, Pullover, Dress, Coat or Shirt),
- one pair of *shoes* (Sandal, Sneaker or Ankle boot),
- one *extra* (Trouser or Bag).

Each user likes one garment class (``users.liked``, uniform over the 10 classes) and interacts with
items that contain it; a ``noise`` share of a user's interactions are uniform over all items. For
every interaction ``interactions.gt_region`` is the cell of the liked garment in that item (row-major,
``-1`` for a noise interaction without it): the ground truth of explanation accuracy
(:mod:`fusionrec.metrics.explanation`). ``interactions.review`` is a short sentence naming the liked
garment (a noise interaction names a random garment of the item). Models may read reviews of
*training* interactions only; ``gt_region`` is for evaluation only.

Modalities: ``image_regions`` (I, grid^2, 196): each cell's pixels average-pooled 2 x 2 to 14 x 14, in
[0, 1] (a linear function of the pixels, so a gradient on them is an image gradient); ``image`` (I, 196):
their mean over cells (the global vector of VBPR-style models); ``attribute`` (I, 10): multi-hot garment
classes, the image-level attribute labels (what is in the image, not where). ``items.image_path`` is
the composed PNG, written once under ``$FUSIONREC_HOME/raw/planted-fashion/<key>/``.

``images`` (an option) points at another folder holding ``t10k-images-idx3-ubyte.gz`` and
``t10k-labels-idx1-ubyte.gz`` in the IDX format (tests write tiny ones); every class must occur.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from fusionrec.config import StrictConfig
from fusionrec.data.dataset import Dataset, Modality, build_dataset
from fusionrec.data.paths import home, require_shared
from fusionrec.errors import DataError
from fusionrec.registry import DATASETS

SOURCE = (
    "it needs Fashion-MNIST's test images (t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from "
    "https://github.com/zalandoresearch/fashion-mnist, or the Debian package dataset-fashion-mnist) in "
    "<shared>/data/fashion-mnist-test/"
)
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
WORDS = ("t-shirt", "trousers", "pullover", "dress", "coat", "sandals", "shirt", "sneakers", "bag", "ankle boots")
GROUPS = ((0, 2, 3, 4, 6), (5, 7, 9), (1, 8))  # top, shoes, extra: one of each per item
TEMPLATES = (
    "love the {g}",
    "the {g} is great",
    "nice {g} in this look",
    "i like the {g}",
    "great {g}",
    "the {g} look really good",
)
CELL = 28
POOL = 2


class PlantedFashionOptions(StrictConfig):
    num_users: int = Field(300, gt=1)
    num_items: int = Field(600, gt=1)
    interactions_per_user: int = Field(20, gt=2, description="mean interactions per user (at least 3 each)")
    grid: int = Field(3, ge=2, le=5, description="cells per side of the item image (grid^2 regions)")
    noise: float = Field(0.1, ge=0, lt=1, description="share of a user's interactions drawn uniformly")
    seed: int = 0
    images: str | None = Field(
        None, description="folder with Fashion-MNIST IDX files (default <shared>/data/fashion-mnist-test)"
    )


def read_idx(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST IDX files (gzip): images ``(N, 28, 28)`` uint8 and labels ``(N,)`` uint8."""
    with gzip.open(images, "rb") as f:
        raw = f.read()
    if len(raw) < 16 or int.from_bytes(raw[:4], "big") != 2051:
        raise DataError(f"{images}: not an IDX image file (magic 2051)")
    n, rows, cols = (int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(3))
    if (rows, cols) != (CELL, CELL) or len(raw) != 16 + n * rows * cols:
        raise DataError(f"{images}: expected {n} images of {CELL}x{CELL} pixels")
    with gzip.open(labels, "rb") as f:
        lab = f.read()
    if len(lab) != 8 + n or int.from_bytes(lab[:4], "big") != 2049:
        raise DataError(f"{labels}: not an IDX label file with {n} labels (magic 2049)")
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, CELL, CELL), np.frombuffer(lab, np.uint8, offset=8)


def write_idx(folder: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write ``images`` (N, 28, 28) uint8 and ``labels`` (N,) as the two gzip IDX files (for tests)."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(images)
    head = (2051).to_bytes(4, "big") + n.to_bytes(4, "big") + CELL.to_bytes(4, "big") + CELL.to_bytes(4, "big")
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(head + np.asarray(images, np.uint8).tobytes())
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write((2049).to_bytes(4, "big") + n.to_bytes(4, "big") + np.asarray(labels, np.uint8).tobytes())
    return folder


def compose(rng: np.random.Generator, num_items: int, grid: int, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Layouts: ``cells`` (I, grid^2) garment class per cell (-1 empty), ``source`` (I, grid^2) the
    Fashion-MNIST image index per cell (-1 empty)."""
    by_class = [np.flatnonzero(labels == c) for c in range(len(CLASSES))]
    missing = [CLASSES[c] for c, idx in enumerate(by_class) if not len(idx)]
    if missing:
        raise DataError(f"planted-fashion: the images hold no {', '.join(missing)}; every class must occur")
    regions = grid * grid
    cells = np.full((num_items, regions), -1, dtype=np.int64)
    source = np.full((num_items, regions), -1, dtype=np.int64)
    for i in range(num_items):
        slots = rng.choice(regions, len(GROUPS), replace=False)
        for slot, group in zip(slots, GROUPS):
            c = int(rng.choice(group))
            cells[i, slot] = c
            source[i, slot] = int(rng.choice(by_class[c]))
    return cells, source


def render(images: np.ndarray, source: np.ndarray, grid: int) -> np.ndarray:
    """The composed item images ``(I, grid*28, grid*28)`` uint8 (empty cells black)."""
    num_items = len(source)
    canvas = np.zeros((num_items, grid, grid, CELL, CELL), dtype=np.uint8)
    filled = source >= 0
    canvas.reshape(num_items, grid * grid, CELL, CELL)[filled] = images[source[filled]]
    return canvas.transpose(0, 1, 3, 2, 4).reshape(num_items, grid * CELL, grid * CELL)


def region_features(pictures: np.ndarray, grid: int) -> np.ndarray:
    """Each cell's pixels in [0, 1], average-pooled ``POOL x POOL``: ``(I, grid^2, (28/POOL)^2)``."""
    num_items = len(pictures)
    side = CELL // POOL
    x = pictures.astype(np.float32).reshape(num_items, grid, side, POOL, grid, side, POOL) / 255.0
    pooled = x.mean(axis=(3, 6))  # (I, grid, side, grid, side)
    return pooled.transpose(0, 1, 3, 2, 4).reshape(num_items, grid * grid, side * side)


def draw_interactions(
    rng: np.random.Generator, cells: np.ndarray, o: PlantedFashionOptions
) -> tuple[np.ndarray, pd.DataFrame]:
    """Each user's liked class and interactions: ``(liked (U,), frame user, item, gt_region, review)``."""
    liked = rng.integers(0, len(CLASSES), o.num_users)
    counts = np.maximum(3, rng.poisson(o.interactions_per_user, o.num_users))
    rows: list[tuple[int, int]] = []
    for u in range(o.num_users):
        pool = np.flatnonzero((cells == liked[u]).any(axis=1))
        want = int(min(counts[u], o.num_items))
        noisy = int(rng.binomial(want, o.noise)) if len(pool) else want
        chosen = list(rng.choice(pool, min(want - noisy, len(pool)), replace=False)) if len(pool) else []
        others = np.setdiff1d(np.arange(o.num_items), chosen)
        chosen += list(rng.choice(others, min(want - len(chosen), len(others)), replace=False))
        rows += [(u, int(i)) for i in chosen]
    users = np.array([r[0] for r in rows], dtype=np.int64)
    items = np.array([r[1] for r in rows], dtype=np.int64)
    hit = cells[items] == liked[users][:, None]  # (N, R)
    gt = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    named = np.where(gt >= 0, liked[users], -1)
    for n in np.flatnonzero(named < 0):  # a noise interaction names a random garment of its item
        present = cells[items[n]][cells[items[n]] >= 0]
        named[n] = int(rng.choice(present))
    template = rng.integers(0, len(TEMPLATES), len(rows))
    reviews = [TEMPLATES[t].format(g=WORDS[c]) for t, c in zip(template, named)]
    frame = pd.DataFrame(
        {"user": users, "item": items, "timestamp": rng.permutation(len(rows)), "gt_region": gt, "review": reviews}
    )
    return liked, frame


def _image_folder(o: PlantedFashionOptions, digest: str) -> Path:
    key = hashlib.sha256(json.dumps({**o.model_dump(), "data": digest}, sort_keys=True).encode()).hexdigest()[:12]
    return home() / "raw" / "planted-fashion" / key


def write_pictures(folder: Path, pictures: np.ndarray) -> list[str | None]:
    """One PNG per item (written once; a complete folder is reused). Returns the paths; without Pillow
    (``pip install 'fusionrec[vision]'``) none are written and the paths are None (no heat maps then)."""
    try:
        from PIL import Image
    except ImportError:
        return [None] * len(pictures)

    paths = [folder / f"item-{i}.png" for i in range(len(pictures))]
    if not (folder / "done").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for path, picture in zip(paths, pictures):
            tmp = path.with_suffix(".tmp.png")
            Image.fromarray(picture, mode="L").save(tmp)
            tmp.replace(path)
        (folder / "done").write_text(str(len(pictures)))
    return [str(p) for p in paths]


@DATASETS.register(
    "planted-fashion",
    config=PlantedFashionOptions,
    task="top-k, explainable fashion (region ground truth)",
    source=SOURCE,
    description="item images of 3 real Fashion-MNIST garments in known grid cells, users who like one garment "
    "class, short reviews naming it; ground-truth regions for explanation accuracy; needs the shared data folder",
)
def load_planted_fashion(options: PlantedFashionOptions) -> Dataset:
    o = options
    folder = Path(o.images).expanduser() if o.images else require_shared("fashion-mnist-test", SOURCE)
    image_file, label_file = folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz"
    for path in (image_file, label_file):
        if not path.exists():
            raise DataError(f"planted-fashion: {path} does not exist; {SOURCE}")
    images, labels = read_idx(image_file, label_file)
    rng = np.random.default_rng(o.seed)
    cells, source = compose(rng, o.num_items, o.grid, labels)
    liked, frame = draw_interactions(rng, cells, o)
    pictures = render(images, source, o.grid)  # (I, H, W)
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()[:16]
    paths = write_pictures(_image_folder(o, digest), pictures)

    regions = region_features(pictures, o.grid)  # (I, R, F)
    attribute = np.zeros((o.num_items, len(CLASSES)), dtype=np.float32)
    rows = np.repeat(np.arange(o.num_items), (cells >= 0).sum(axis=1))
    attribute[rows, cells[cells >= 0]] = 1.0
    item_table = pd.DataFrame(
        {
            "item": np.arange(o.num_items),
            "title": [", ".join(WORDS[c] for c in row if c >= 0) for row in cells],
            "layout": [" ".join(str(c) for c in row) for row in cells],  # class per cell, row-major (-1 empty)
            "image_path": paths,
        }
    )
    user_table = pd.DataFrame({"user": np.arange(o.num_users), "liked": [CLASSES[c] for c in liked]})
    dataset = build_dataset(
        "planted-fashion",
        frame[["user", "item", "timestamp"]],
        items=item_table,
        users=user_table,
        item_universe=np.arange(o.num_items),
        meta={"source": str(folder), "options": o.model_dump(), "classes": list(CLASSES), "grid": o.grid},
    )
    order = dataset.item_ids.astype(np.int64)  # item index -> original item number (sorted raw ids)
    # rows keep their order in build_dataset; the extra columns follow them
    dataset.interactions["gt_region"] = frame["gt_region"].to_numpy(dtype=np.int64)
    dataset.interactions["review"] = frame["review"].to_numpy(dtype=object)
    present = np.ones(o.num_items, dtype=bool)
    dataset.modalities = {
        "image_regions": Modality(
            regions[order], present, "regions", f"planted-fashion: {o.grid}x{o.grid} cells, pixels pooled 2x2"
        ),
        "image": Modality(regions[order].mean(axis=1), present, "dense", "planted-fashion: mean of the cell features"),
        "attribute": Modality(
            attribute[order], present, "categorical", "planted-fashion: garment classes (multi-hot)", list(CLASSES)
        ),
    }
    return dataset


def ground_truth(dataset: Dataset, split: str = "test") -> pd.DataFrame:
    """The (user, item, gt_region) rows of ``split`` whose item holds the user's liked garment."""
    from fusionrec.data.dataset import SPLIT_CODES

    inter = dataset.interactions
    if "gt_region" not in inter:
        raise DataError(f"{dataset.name}: no gt_region column; explanation accuracy needs planted-fashion")
    rows = inter[(inter["split"].to_numpy() == SPLIT_CODES[split]) & (inter["gt_region"].to_numpy() >= 0)]
    return rows[["user", "item", "gt_region"]].reset_index(drop=True)
