"""Nations, Kinships and UMLS, taken offline from the ``pykeen==1.11.1`` wheel on PyPI.

The wheel is downloaded with ``pip download --no-deps`` (never installed or imported) and only
``pykeen/datasets/<name>/{train,valid,test}.txt`` is extracted into ``$FUSIONREC_HOME/raw/<name>``.
Set ``FUSIONREC_PYKEEN_WHEEL`` to a wheel file you already have to skip the download. The splits
are PyKEEN's (and the original papers'): Nations 14 entities / 55 relations, Kinships 104 / 25,
UMLS 135 / 46.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from fusionrec.config import StrictConfig
from fusionrec.data.dataset import Dataset
from fusionrec.data.io import atomic_dir
from fusionrec.data.paths import home
from fusionrec.data.readers.triples import SPLITS, read_triples_folder
from fusionrec.errors import DataError
from fusionrec.registry import DATASETS

WHEEL = "pykeen==1.11.1"


class PyKEENDataOptions(StrictConfig):
    pass


def raw_dir(name: str) -> Path:
    """The extracted triples of ``name``, fetching the wheel the first time."""
    target = home() / "raw" / name
    if all((target / f"{s}.txt").exists() for s in SPLITS):
        return target
    wheel = os.environ.get("FUSIONREC_PYKEEN_WHEEL")
    with tempfile.TemporaryDirectory() as tmp:
        if not wheel:
            wheel = _download_wheel(Path(tmp), name)
        try:
            with zipfile.ZipFile(wheel) as archive, atomic_dir(target) as out:
                for split in SPLITS:
                    (out / f"{split}.txt").write_bytes(archive.read(f"pykeen/datasets/{name}/{split}.txt"))
        except (OSError, zipfile.BadZipFile, KeyError) as exc:
            what = f"has no {exc.args[0]}" if isinstance(exc, KeyError) else f"is unreadable ({exc})"
            raise DataError(
                f"{wheel}: the pykeen wheel {what}; point FUSIONREC_PYKEEN_WHEEL at pykeen-1.11.1-py3-none-any.whl, "
                "or unset it to download the wheel"
            ) from None
    return target


def _download_wheel(folder: Path, name: str) -> str:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(folder), WHEEL]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(folder.glob("pykeen-*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(
            f"{name}: could not download the {WHEEL} wheel from the package index ({last}); "
            "set FUSIONREC_PYKEEN_WHEEL=/path/to/pykeen-1.11.1-py3-none-any.whl"
        )
    return str(wheels[0])


def _register(name: str, description: str) -> None:
    def load(options: PyKEENDataOptions) -> Dataset:
        dataset = read_triples_folder(raw_dir(name), name=name)
        dataset.meta.update(source=f"{WHEEL} wheel: pykeen/datasets/{name}/", license="MIT (PyKEEN)")
        return dataset

    DATASETS.register(name, config=PyKEENDataOptions, task="kg", description=description)(load)


_register("nations", "Nations (14 countries, 55 relations; 1,592 / 199 / 201 triples) from the pykeen wheel")
_register("kinships", "Kinships (104 people, 25 relations; 8,544 / 1,068 / 1,074 triples) from the pykeen wheel")
_register("umls", "UMLS (135 concepts, 46 relations; 5,216 / 652 / 661 triples) from the pykeen wheel")
