"""Synthetic pieces of the outfit family: users with planted style preferences, top-bottom comments, and a
small synthetic outfit set with item images (a ``visual`` region modality) for the image path and tests.

No public outfit data with real user histories or outfit comments is obtainable offline (iFashion's user
clicks and ExpFashion's comments are not in ``shared/data``), so both are *generated*, over real Polyvore
items in ``polyvore-mcn`` and over synthetic items here, and the docs say so:

- **users** (:func:`plant_users`): every user prefers one style (an item's ``style``: a colour word of its
  name for Polyvore, the planted style here). A user's history is ``history_len`` items drawn from
  *training* outfits, a share ``1 - noise`` of them of the user's style; each record pairs the history with
  one target outfit of that style from the record's split. Users are split (train / valid / test) as wholes;
  train users have ``records_per_user`` records. Stored in ``tables["histories"]`` (``user``, ``history``,
  ``outfit`` row, ``split``).
- **comments** (:func:`add_comments`): every outfit with an ``upper`` and a ``bottom`` gives a pair whose
  comment is built from the two items' names by one of a few templates (chosen by whether the two share a
  style, and seeded): ``tables["pairs"]`` (``top``, ``bottom``, ``comment``, ``outfit``, ``split``).
- **outfit-synthetic**: ``num_styles`` styles x the five Polyvore categories; items carry a name ("<style
  word> <adjective> <category noun>"), a ``visual`` region grid (style prototype + category prototype +
  noise per region, some regions blank) and a style; an outfit takes one item per category (upper, bottom,
  shoe, and bag / accessory at random) of mostly one style.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from fusionrec.config import StrictConfig
from fusionrec.data.dataset import Dataset
from fusionrec.data.readers.polyvore import POLYVORE_CATEGORIES, build_outfit_dataset, split_outfits
from fusionrec.registry import DATASETS

STYLE_WORDS = ("black", "white", "red", "blue", "green", "pink", "grey", "brown", "gold", "silver", "beige", "navy")
ADJECTIVES = ("classic", "soft", "slim", "bold", "light", "cropped", "long", "wide", "plain", "printed")
NOUNS = {
    "upper": ("blouse", "shirt", "sweater", "jacket", "top"),
    "bottom": ("skirt", "jeans", "trousers", "shorts", "pants"),
    "shoe": ("heels", "boots", "sneakers", "sandals", "flats"),
    "bag": ("tote", "clutch", "backpack", "handbag", "purse"),
    "accessory": ("necklace", "earrings", "scarf", "bracelet", "hat"),
}


def outfit_styles(dataset: Dataset, item_style: np.ndarray) -> np.ndarray:
    """The style of every outfit: the most frequent non-empty style of its items ('' when none)."""
    out = []
    for its in dataset.tables["outfits"]["items"]:
        styles = [item_style[i] for i in its if item_style[i]]
        out.append(max(set(styles), key=lambda s: (styles.count(s), -styles.index(s))) if styles else "")
    return np.asarray(out, dtype=object)


def plant_users(
    dataset: Dataset,
    item_style: np.ndarray,
    *,
    num_users: int,
    history_len: int,
    records_per_user: int,
    noise: float,
    seed: int,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> None:
    """Add ``tables["histories"]`` (module docstring); users whose style has no outfit in their split are skipped
    (counted in ``meta["users"]["skipped"]``)."""
    rng = np.random.default_rng([seed, 7])
    outfits = dataset.tables["outfits"]
    style = outfit_styles(dataset, item_style)
    train_items = np.unique(np.concatenate([np.asarray(x) for x in outfits.loc[outfits["split"] == 0, "items"]]))
    styles = sorted({s for s in style if s})
    by_style_items = {s: train_items[item_style[train_items] == s] for s in styles}
    user_split = split_outfits(num_users, ratios, seed + 1)
    rows, skipped = [], 0
    for user in range(num_users):
        split = int(user_split[user])
        liked = styles[int(rng.integers(len(styles)))]
        targets = np.flatnonzero((style == liked) & (outfits["split"].to_numpy() == split))
        pool = by_style_items[liked]
        if not len(targets) or not len(pool):
            skipped += 1
            continue
        for _ in range(records_per_user if split == 0 else 1):
            own = rng.random(history_len) >= noise
            history = np.where(own, rng.choice(pool, history_len), rng.choice(train_items, history_len)).tolist()
            rows.append((f"u{user}", history, int(rng.choice(targets)), split, liked))
    dataset.tables["histories"] = pd.DataFrame(rows, columns=["user", "history", "outfit", "split", "style"]).astype(
        {"split": np.int8, "outfit": np.int64}
    )
    dataset.meta["users"] = {
        "synthetic": True,
        "num_users": num_users,
        "history_len": history_len,
        "records_per_user": records_per_user,
        "noise": noise,
        "seed": seed,
        "skipped": skipped,
    }


def _short(name: str, words: int = 4) -> str:
    return " ".join(str(name).split()[-words:]) or "piece"


def add_comments(dataset: Dataset, item_style: np.ndarray, seed: int) -> None:
    """Add ``tables["pairs"]`` (module docstring): a comment per top-bottom pair built from the item names."""
    rng = np.random.default_rng([seed, 11])
    assert dataset.items is not None
    names = dataset.items["title"].astype(str).tolist()
    cats = dataset.items["category"].astype(str).to_numpy()
    rows = []
    for row, (its, split) in enumerate(zip(dataset.tables["outfits"]["items"], dataset.tables["outfits"]["split"])):
        tops = [i for i in its if cats[i] == "upper"]
        bottoms = [i for i in its if cats[i] == "bottom"]
        if not tops or not bottoms:
            continue
        top, bottom = int(tops[0]), int(bottoms[0])
        a, b = _short(names[top]), _short(names[bottom])
        shared = item_style[top] and item_style[top] == item_style[bottom]
        if shared:
            templates = (f"all in {item_style[top]} the {a} matches the {b}", f"a {item_style[top]} look {a} with {b}")
        else:
            templates = (f"the {a} goes well with the {b}", f"pair the {a} with a {b} for contrast")
        rows.append((top, bottom, templates[int(rng.integers(2))], row, split))
    dataset.tables["pairs"] = pd.DataFrame(rows, columns=["top", "bottom", "comment", "outfit", "split"]).astype(
        {"split": np.int8, "outfit": np.int64, "top": np.int64, "bottom": np.int64}
    )
    dataset.meta["comments"] = {"synthetic": True, "seed": seed, "from": "item names, 4 templates"}


class OutfitSyntheticOptions(StrictConfig):
    num_styles: int = Field(6, gt=1, le=len(STYLE_WORDS))
    items_per_style: int = Field(12, gt=1, description="items per style and category")
    num_outfits: int = Field(400, gt=9)
    purity: float = Field(0.85, ge=0, le=1, description="share of an outfit's items of its style")
    regions: int = Field(4, gt=0, description="visual regions per item")
    visual_dim: int = Field(16, gt=0)
    noise: float = Field(0.6, ge=0)
    num_users: int = Field(120, ge=0)
    history_len: int = Field(8, gt=0)
    records_per_user: int = Field(3, gt=0)
    user_noise: float = Field(0.2, ge=0, le=1)
    ratios: tuple[float, float, float] = (0.7, 0.1, 0.2)
    seed: int = 0


@DATASETS.register(
    "outfit-synthetic",
    config=OutfitSyntheticOptions,
    task="outfit",
    description="seeded outfits over styled items with visual region grids, synthetic users and comments",
)
def load_outfit_synthetic(options: OutfitSyntheticOptions) -> Dataset:
    o = options
    rng = np.random.default_rng(o.seed)
    styles = STYLE_WORDS[: o.num_styles]
    style_proto = rng.standard_normal((o.num_styles, o.visual_dim))
    cat_proto = rng.standard_normal((len(POLYVORE_CATEGORIES), o.visual_dim))
    rows: list[tuple[str, str, str, str]] = []
    values: list[np.ndarray] = []
    for c, category in enumerate(POLYVORE_CATEGORIES):
        for s, style in enumerate(styles):
            for k in range(o.items_per_style):
                name = f"{style} {ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]} {NOUNS[category][k % 5]}"
                rows.append((f"{category[:2]}{s}_{k}", name, category, style))
                grid = style_proto[s] + cat_proto[c] + o.noise * rng.standard_normal((o.regions, o.visual_dim))
                blank = rng.random(o.regions) < 0.25
                blank[0] = False
                grid[blank] = 0.0
                values.append(grid)
    items = pd.DataFrame(rows, columns=["item", "title", "category", "style"])
    by = {
        (c, s): items.index[(items["category"] == c) & (items["style"] == s)].to_numpy()
        for c in POLYVORE_CATEGORIES
        for s in styles
    }
    outfits = []
    for n in range(o.num_outfits):
        main = styles[int(rng.integers(o.num_styles))]
        cats = ["upper", "bottom", "shoe"] + [c for c in ("bag", "accessory") if rng.random() < 0.5]
        members = []
        for cat in cats:
            style = main if rng.random() < o.purity else styles[int(rng.integers(o.num_styles))]
            members.append(items["item"].iloc[int(rng.choice(by[(cat, style)]))])
        outfits.append((f"o{n}", members))
    dataset = build_outfit_dataset(
        "outfit-synthetic",
        outfits,
        items,
        split_outfits(len(outfits), o.ratios, o.seed),
        categories=POLYVORE_CATEGORIES,
        modalities={
            "visual": (
                items["item"].to_numpy(),
                np.asarray(values, dtype=np.float32),
                {"kind": "regions", "source": f"planted style + category prototypes (noise {o.noise})"},
            )
        },
        question_seed=o.seed,
        meta={
            "source": "fusionrec outfit-synthetic generator",
            "options": o.model_dump(mode="json"),
            "split": {"method": "random by outfit", "ratios": list(o.ratios), "seed": o.seed},
        },
    )
    assert dataset.items is not None
    item_style = dataset.items["style"].astype(str).to_numpy(dtype=object)
    if o.num_users:
        plant_users(
            dataset,
            item_style,
            num_users=o.num_users,
            history_len=o.history_len,
            records_per_user=o.records_per_user,
            noise=o.user_noise,
            seed=o.seed,
        )
    add_comments(dataset, item_style, o.seed)
    return dataset
