"""DKN's news click files (``raw_train.txt``, optional ``raw_test.txt``) turned into impressions.

Each line (tab-separated, no header): user id, title (lower-case words), click label 0/1, entities
``id:name;id:name``. The files carry no timestamps and no news ids: a news is its title, and the
order of a user's lines (``raw_train.txt`` first, then ``raw_test.txt``) is taken as the user's
clock. Every click line is one impression: the clicked news and the ``negatives`` (default 4)
non-clicked lines of the same user nearest to it in that order, within the same split's segment of
the user's lines (the news of the same period the user
did not click, as MIND's npratio samples); its history is the user's clicks at earlier positions only.
Per user with 5 lines or more, the last 20% of the lines are the test segment and the 20% before them
the valid one (fewer lines: all train), so the split is time-ordered per user and no line is a candidate
in two splits. A click whose segment has no non-click gives an impression without one: kept in the
table and counted (the news task skips it in training and evaluation).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset
from fusionrec.data.readers.mind import build_news_dataset
from fusionrec.errors import DataError
from fusionrec.registry import READERS

if TYPE_CHECKING:
    from fusionrec.data.config import DataConfig

FILES = ("raw_train.txt", "raw_test.txt")


def news_id(title: str) -> str:
    return "T" + hashlib.sha1(title.encode("utf-8")).hexdigest()[:12]


def read_dkn_lines(folder: Path) -> pd.DataFrame:
    rows = []
    for part, file in enumerate(FILES):
        path = folder / file
        if not path.is_file():
            if part == 0:
                raise DataError(f"{folder}: no {file}; a DKN folder has raw_train.txt (and optionally raw_test.txt)")
            continue
        with open(path, encoding="utf-8", newline="") as fh:
            for number, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                fields = line.split("\t")
                if len(fields) < 3 or fields[2].strip() not in ("0", "1"):
                    raise DataError(
                        f"{path} line {number}: expected user<TAB>title<TAB>label 0/1[<TAB>entities]; fix or drop the line"
                    )
                rows.append(
                    (fields[0].strip(), fields[1].strip(), int(fields[2]), fields[3] if len(fields) > 3 else "", part)
                )
    return pd.DataFrame(rows, columns=["user", "title", "label", "entities", "part"])


def dkn_impressions(lines: pd.DataFrame, negatives: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(behaviors, news) from DKN lines: one impression per click line, its candidates the click and the
    ``negatives`` non-clicked lines of the same user and split segment nearest to it in the user's order
    (earlier first on ties); its history the user's clicks at earlier positions. Per user with 5 lines or
    more, the last 20% of the lines are the test segment and the 20% before them the valid one."""
    lines = lines.assign(item=lines["title"].map(news_id))
    lines["position"] = lines.groupby("user", sort=False).cumcount()
    behaviors = []
    for user, rows in lines.groupby("user", sort=False):
        labels = rows["label"].to_numpy()
        items = rows["item"].to_numpy()
        clicks, others = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
        # the user's lines in order: the last 20% are the test segment, the 20% before the valid one (users
        # with 5 lines or more); an impression draws its non-clicks from its own segment only
        n = len(labels)
        n_test = n_valid = round(0.2 * n) if n >= 5 else 0
        segment = np.zeros(n, dtype=np.int64)
        segment[n - n_test - n_valid : n - n_test] = 1
        segment[n - n_test :] = 2
        for k, at in enumerate(clicks):
            split = ("train", "valid", "test")[segment[at]]
            pool = others[segment[others] == segment[at]]
            near = pool[np.lexsort((pool, np.abs(pool - at)))[:negatives]]
            behaviors.append(
                {
                    "impression": f"{user}-{at}",
                    "user": user,
                    "time": int(at),
                    "history": items[clicks[:k]].tolist(),
                    "candidates": [items[at], *items[np.sort(near)].tolist()],
                    "labels": [1] + [0] * len(near),
                    "split": split,
                }
            )
    news = lines.drop_duplicates("item")[["item", "title", "entities"]].reset_index(drop=True)
    return pd.DataFrame(behaviors), news


def read_dkn_folder(path: Path, name: str | None = None, negatives: int = 4) -> Dataset:
    behaviors, news = dkn_impressions(read_dkn_lines(path), negatives)
    return build_news_dataset(
        name or path.name,
        behaviors,
        news,
        meta={"source": str(path), "format": "dkn", "negatives": negatives},
    )


@READERS.register(
    "dkn",
    order=23,
    detects="a folder with raw_train.txt",
    description="DKN news clicks (user, title, label, entities) grouped into impressions per user; task news",
)
class DKNReader:
    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_dir() and (path / "raw_train.txt").is_file()

    @staticmethod
    def read(path: Path, config: DataConfig) -> Dataset:
        return read_dkn_folder(path)
