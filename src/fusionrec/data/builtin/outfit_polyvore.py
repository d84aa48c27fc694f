"""``polyvore-mcn``: the Polyvore outfits staged from fashion_compatibility_mcn, read from the shared folder.

``shared/data/polyvore-outfits-mcn`` holds MCN's valid and test JSON (2,463 + 1,196 outfits with item names
and categories; the training JSON and the images are not there). Both files are pooled and split at random by
outfit (``ratios``, ``seed``); items are ``<set_id>_<index>`` with their name as text and their category, so
each item belongs to one outfit and held-out outfits bring unseen items: models place them by their name
(MiniLM after ``fusionrec features extract polyvore-mcn``, else a word embedding trained on training outfits'
names) and category.

Synthetic parts (``outfit_synthetic``): users whose style is a colour word of item names (``plant_users``) and
top-bottom comments built from item names (``add_comments``). They are not Polyvore data.
"""

from __future__ import annotations

import re

import numpy as np
from pydantic import Field

from fusionrec.config import StrictConfig
from fusionrec.data.builtin.outfit_synthetic import STYLE_WORDS, add_comments, plant_users
from fusionrec.data.dataset import Dataset
from fusionrec.data.paths import require_shared
from fusionrec.data.readers.polyvore import POLYVORE_CATEGORIES, _finish, read_mcn
from fusionrec.registry import DATASETS

COLOURS = (*STYLE_WORDS, "yellow", "purple", "orange", "gray", "cream", "ivory", "tan", "khaki", "denim", "floral")
_WORD = re.compile(r"[a-z]+")


class PolyvoreMCNOptions(StrictConfig):
    ratios: tuple[float, float, float] = (0.7, 0.1, 0.2)
    seed: int = Field(0, description="split and question seed")
    num_users: int = Field(600, ge=0, description="synthetic users (0: none)")
    history_len: int = Field(10, gt=0)
    records_per_user: int = Field(4, gt=0)
    user_noise: float = Field(0.2, ge=0, le=1)


def colour_style(names: list[str]) -> np.ndarray:
    """The first colour word of each name ('' when none; ``gray`` counted as ``grey``)."""
    out = []
    for name in names:
        found = next((w for w in _WORD.findall(name.lower()) if w in COLOURS), "")
        out.append("grey" if found == "gray" else found)
    return np.asarray(out, dtype=object)


@DATASETS.register(
    "polyvore-mcn",
    config=PolyvoreMCNOptions,
    task="outfit",
    description="3,659 Polyvore outfits (MCN valid+test, names + categories) from shared/data; synthetic users/comments",
)
def load_polyvore_mcn(options: PolyvoreMCNOptions) -> Dataset:
    folder = require_shared(
        "polyvore-outfits-mcn", "MCN's {valid,test}_no_dup_with_category_3more_name.json (Polyvore outfits)"
    )
    files = sorted(folder.glob("*.json"))
    outfits, items, _, cleaning = read_mcn(files)
    dataset = _finish(
        "polyvore-mcn",
        outfits,
        items,
        [None] * len(outfits),  # the staged files are MCN's valid and test: pooled and split here
        options.ratios,
        options.seed,
        cleaning,
        POLYVORE_CATEGORIES,
        {
            "source": str(folder),
            "license": "MIT (WangXin93/fashion_compatibility_mcn); Polyvore data of Han et al. 2017 (Apache-2.0)",
            "options": options.model_dump(mode="json"),
        },
    )
    assert dataset.items is not None
    style = colour_style(dataset.items["title"].astype(str).tolist())
    dataset.items["style"] = style
    if options.num_users:
        plant_users(
            dataset,
            style,
            num_users=options.num_users,
            history_len=options.history_len,
            records_per_user=options.records_per_user,
            noise=options.user_noise,
            seed=options.seed,
        )
    add_comments(dataset, style, options.seed)
    return dataset
