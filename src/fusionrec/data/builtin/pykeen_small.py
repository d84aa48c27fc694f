"""Nations, Kinships and UMLS, taken offline from the ``pykeen==1.11.1`` wheel on PyPI.

The wheel is downloaded with ``pip download --no-deps`` (never installed or imported) and only
``pykeen/datasets/<name>/{train,valid,test}.txt`` is extracted into ``$FUSIONREC_HOME/raw/<name>``.
Set ``FUSIONREC_PYKEEN_WHEEL`` to a wheel file you already have to skip the download. The splits
are PyKEEN's (and the original papers'): Nations 14 entities / 55 relations, Kinships 104 / 25,
UMLS 135 / 46.
"""

from __future__ import annotations

from pathlib import Path

from fusionrec.config import StrictConfig
from fusionrec.data.dataset import Dataset
from fusionrec.data.readers.triples import SPLITS, read_triples_folder
from fusionrec.data.wheels import Wheel
from fusionrec.registry import DATASETS

PYKEEN = Wheel("pykeen==1.11.1", "FUSIONREC_PYKEEN_WHEEL")


class PyKEENDataOptions(StrictConfig):
    """These data sets take no options: their splits are PyKEEN's (any ``data.options`` key is refused)."""


def raw_dir(name: str) -> Path:
    """The extracted triples of ``name``, fetching the wheel the first time."""
    return PYKEEN.extract(name, {f"pykeen/datasets/{name}/{split}.txt": f"{split}.txt" for split in SPLITS})


def _download_wheel(folder: Path, name: str) -> str:
    return PYKEEN.download(folder, name)


def _register(name: str, description: str) -> None:
    def load(options: PyKEENDataOptions) -> Dataset:
        dataset = read_triples_folder(raw_dir(name), name=name)
        dataset.meta.update(source=f"{PYKEEN.requirement} wheel: pykeen/datasets/{name}/", license="MIT (PyKEEN)")
        return dataset

    DATASETS.register(name, config=PyKEENDataOptions, task="kg", description=description)(load)


_register("nations", "Nations (14 countries, 55 relations; 1,592 / 199 / 201 triples) from the pykeen wheel")
_register("kinships", "Kinships (104 people, 25 relations; 8,544 / 1,068 / 1,074 triples) from the pykeen wheel")
_register("umls", "UMLS (135 concepts, 46 relations; 5,216 / 652 / 661 triples) from the pykeen wheel")
