"""Polyvore outfits, and the canonical outfit data set every outfit source becomes.

Two layouts of the Polyvore outfits of Han et al. (2017) are read:

- **Maryland / MCN** (``fashion_compatibility_mcn``): JSON files ``{set_id: {category: {"index": i,
  "name": text}}}``, one per split (``train_*.json``, ``valid_*.json``, ``test_*.json``), categories
  ``upper``, ``bottom``, ``shoe``, ``bag``, ``accessory``; an item is ``<set_id>_<index>``.
- **Polyvore-Outfits** (Vasileva et al. 2018): ``train.json`` / ``valid.json`` / ``test.json`` lists of
  ``{"set_id", "items": [{"item_id", "index"}]}`` plus ``polyvore_item_metadata.json`` (``{item_id:
  {"semantic_category", "title" | "url_name"}}``).

Item images are optional: ``images/<item>.jpg`` (or ``.png``) next to the JSON become the items'
``image_path`` (``fusionrec features extract DATA --modality image``).

:func:`build_outfit_dataset` turns outfits + an item table into the canonical form (docs/outfit.md):

- ``items``: ``item``, ``title`` / ``text`` (the name), ``category``; modalities as usual;
- ``tables["outfits"]``: ``outfit`` (raw id), ``items`` (list of item indices, in category order),
  ``split`` (0/1/2): the record table that carries the split (``meta["split_records"]``);
- ``tables["fitb"]``: one fill-in-the-blank question per valid/test outfit, drawn once with
  ``question_seed``: ``outfit`` (row), ``blank`` (position), ``candidates`` (4 items of the blank's category,
  the answer among them), ``answer`` (position of the right one in ``candidates``), ``split``;
- ``tables["compat"]``: every valid/test outfit (label 1) and one outfit with each of its items swapped for a
  random item of the same category and split (label 0): ``items``, ``label``, ``outfit``, ``split``;
- ``interactions``: outfit membership (``user`` = outfit id, ``item``), split as the outfit's, so that the
  generic summaries count something meaningful.

Candidates and swaps of a split are drawn from the items of that split's outfits only (held-out
outfits never lend items to training questions, and test questions never name training items).

Bad input is cleaned and counted in ``meta["cleaning"]``: duplicate items of an outfit (kept once),
items of an unknown category or missing from the item table (dropped), outfits left with fewer than two
items (dropped). An input with no usable outfit is one error line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset, build_dataset
from fusionrec.errors import DataError
from fusionrec.registry import READERS

if TYPE_CHECKING:
    from fusionrec.data.config import DataConfig

POLYVORE_CATEGORIES = ("upper", "bottom", "shoe", "bag", "accessory")
SPLIT_PREFIXES = ("train", "valid", "test")
FITB_CANDIDATES = 4


def split_outfits(num: int, ratios: Sequence[float], seed: int) -> np.ndarray:
    """Split codes (0/1/2) for ``num`` outfits, drawn with ``seed`` in proportions ``ratios``."""
    position = np.random.default_rng(seed).permutation(num)
    cut = np.cumsum(np.asarray(ratios, dtype=float) / float(sum(ratios)))[:2] * num
    return np.where(position < cut[0], 0, np.where(position < cut[1], 1, 2)).astype(np.int8)


def clean_outfits(
    outfits: Sequence[tuple[str, list[str]]], known: set[str], cleaning: dict[str, int]
) -> tuple[list[tuple[str, list[str]]], list[int]]:
    """Drop unknown items and repeats inside an outfit, then outfits of fewer than two items, counting each in
    ``cleaning``; returns the kept outfits and their positions in ``outfits``."""
    kept, where = [], []
    for position, (outfit, items) in enumerate(outfits):
        seen: list[str] = []
        for item in items:
            if item not in known:
                cleaning["items_missing_from_item_table"] = cleaning.get("items_missing_from_item_table", 0) + 1
            elif item in seen:
                cleaning["duplicate_items_in_outfit"] = cleaning.get("duplicate_items_in_outfit", 0) + 1
            else:
                seen.append(item)
        if len(seen) < 2:
            cleaning["outfits_under_two_items"] = cleaning.get("outfits_under_two_items", 0) + 1
            continue
        kept.append((outfit, seen))
        where.append(position)
    return kept, where


def build_outfit_dataset(
    name: str,
    outfits: Sequence[tuple[str, list[str]]],
    items: pd.DataFrame,
    splits: np.ndarray,
    *,
    categories: Sequence[str] | None = None,
    modalities: dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]] | None = None,
    question_seed: int = 0,
    cleaning: dict[str, int] | None = None,
    meta: dict[str, Any] | None = None,
) -> Dataset:
    """The canonical outfit data set (module docstring) from raw outfits ``[(outfit id, [item ids])]``, an item
    table (``item``, ``title``, ``category``; more columns kept) and one split code per raw outfit."""
    cleaning = dict(cleaning or {})
    splits = np.asarray(splits, dtype=np.int8)
    if len(splits) != len(outfits):
        raise DataError(f"{name}: {len(splits)} split codes for {len(outfits)} outfits")
    items = items.copy()
    items["item"] = items["item"].astype(str)
    items["category"] = items["category"].astype(str)
    items = items.drop_duplicates("item")
    if categories is None:
        categories = sorted(items["category"].unique())
    order = {c: k for k, c in enumerate(categories)}
    unknown = ~items["category"].isin(list(order))
    if unknown.any():
        cleaning["items_of_unknown_category"] = cleaning.get("items_of_unknown_category", 0) + int(unknown.sum())
        items = items[~unknown]
    kept, where = clean_outfits([(str(o), [str(i) for i in its]) for o, its in outfits], set(items["item"]), cleaning)
    if not kept:
        raise DataError(f"{name}: no outfit with two or more known items; check the outfit and item files")
    splits = splits[where]
    used = sorted({i for _, its in kept for i in its})
    items = items.set_index("item").loc[used].reset_index()
    items["title"] = items["title"].astype(str) if "title" in items else items["item"]
    if "text" not in items:
        items["text"] = items["title"]
    membership = pd.DataFrame(
        [(o, i, s) for (o, its), s in zip(kept, splits) for i in its], columns=["user", "item", "split"]
    )
    dataset = build_dataset(
        name,
        membership,
        items=items,
        modalities=modalities,
        item_universe=np.asarray(used, dtype=object),
        meta={**(meta or {}), "categories": list(categories), "cleaning": cleaning, "split_records": "outfits"},
    )
    index = pd.Index(dataset.item_ids)
    assert dataset.items is not None
    cat_code = dataset.items["category"].astype(str).map(order).to_numpy()
    rows = []
    for _, its in kept:
        codes = index.get_indexer(its)
        rows.append(codes[np.argsort(cat_code[codes], kind="stable")].tolist())
    dataset.tables["outfits"] = pd.DataFrame({"outfit": [o for o, _ in kept], "items": rows, "split": splits})
    add_questions(dataset, question_seed)
    return dataset


def item_categories(dataset: Dataset) -> np.ndarray:
    """Category code of every item index (position in ``meta["categories"]``)."""
    assert dataset.items is not None
    order = {c: k for k, c in enumerate(dataset.meta["categories"])}
    return dataset.items["category"].astype(str).map(order).to_numpy().astype(np.int64)


def split_pools(dataset: Dataset) -> dict[tuple[int, int], np.ndarray]:
    """``{(split, category): item indices}`` of the items in that split's outfits."""
    outfits = dataset.tables["outfits"]
    cats = item_categories(dataset)
    pools: dict[tuple[int, int], np.ndarray] = {}
    for split in (0, 1, 2):
        members = outfits.loc[outfits["split"] == split, "items"]
        its = (
            np.unique(np.concatenate([np.asarray(m, dtype=np.int64) for m in members]))
            if len(members)
            else np.zeros(0, dtype=np.int64)
        )
        for c in range(len(dataset.meta["categories"])):
            pools[(split, c)] = its[cats[its] == c]
    return pools


def _draw(rng: np.random.Generator, pool: np.ndarray, exclude: Sequence[int], k: int) -> list[int]:
    allowed = pool[~np.isin(pool, list(exclude))]
    if len(allowed) == 0:
        return []
    return rng.choice(allowed, size=min(k, len(allowed)), replace=False).tolist()


def add_questions(dataset: Dataset, seed: int) -> None:
    """Draw the stored FITB questions and compatibility negatives of valid and test outfits (module docstring)."""
    rng = np.random.default_rng([seed, 21])
    outfits = dataset.tables["outfits"]
    cats = item_categories(dataset)
    pools = split_pools(dataset)
    fitb, compat = [], []
    skipped = 0
    for row, (its, split) in enumerate(zip(outfits["items"], outfits["split"])):
        if split == 0:
            continue
        its = [int(i) for i in its]
        blank = int(rng.integers(len(its)))
        wrong = _draw(rng, pools[(int(split), int(cats[its[blank]]))], its, FITB_CANDIDATES - 1)
        if len(wrong) == FITB_CANDIDATES - 1:
            candidates = [its[blank], *wrong]
            perm = rng.permutation(FITB_CANDIDATES)
            fitb.append((row, blank, [candidates[p] for p in perm], int(np.flatnonzero(perm == 0)[0]), split))
        else:
            skipped += 1
        swapped: list[int] = []
        for item in its:
            drawn = _draw(rng, pools[(int(split), int(cats[item]))], [*its, *swapped], 1)
            swapped.append(drawn[0] if drawn else item)
        compat.append((its, 1, row, split))
        compat.append((swapped, 0, row, split))
    dataset.tables["fitb"] = pd.DataFrame(fitb, columns=["outfit", "blank", "candidates", "answer", "split"]).astype(
        {"split": np.int8, "outfit": np.int64, "blank": np.int64, "answer": np.int64}
    )
    dataset.tables["compat"] = pd.DataFrame(compat, columns=["items", "label", "outfit", "split"]).astype(
        {"split": np.int8, "label": np.int8, "outfit": np.int64}
    )
    dataset.meta["questions"] = {"seed": seed, "fitb_candidates": FITB_CANDIDATES, "fitb_skipped": skipped}


# ---------------------------------------------------------------------------------------------- readers
def _split_of(path: Path) -> str | None:
    return next((s for s in SPLIT_PREFIXES if path.name.lower().startswith(s)), None)


def _images(folder: Path, items: pd.DataFrame) -> pd.DataFrame:
    images = folder / "images"
    if images.is_dir():
        paths = []
        for item in items["item"]:
            found = next(
                (images / f"{item}{ext}" for ext in (".jpg", ".png") if (images / f"{item}{ext}").is_file()), None
            )
            paths.append(str(found) if found else None)
        items = items.assign(image_path=paths)
    return items


def read_mcn(
    files: Sequence[Path],
) -> tuple[list[tuple[str, list[str]]], pd.DataFrame, list[str | None], dict[str, int]]:
    """Outfits, items, the split each file's name gives (or None) and the cleaning counts of MCN JSON files."""
    outfits: list[tuple[str, list[str]]] = []
    split_of: list[str | None] = []
    rows: dict[str, tuple[str, str]] = {}
    cleaning: dict[str, int] = {}
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(
                f"{path}: not readable JSON ({exc}); expected {{set_id: {{category: {{index, name}}}}}}"
            ) from None
        if not isinstance(data, dict):
            raise DataError(f"{path}: expected a JSON object {{set_id: {{category: {{index, name}}}}}}")
        for set_id, slots in data.items():
            if not isinstance(slots, dict):
                raise DataError(f"{path}: outfit {set_id!r} is not an object of category -> {{index, name}}")
            members = []
            for category, slot in slots.items():
                if not isinstance(slot, dict) or "index" not in slot:
                    raise DataError(f"{path}: outfit {set_id!r}, {category!r} lacks an index")
                if category not in POLYVORE_CATEGORIES:
                    cleaning["items_of_unknown_category"] = cleaning.get("items_of_unknown_category", 0) + 1
                    continue
                item = f"{set_id}_{slot['index']}"
                rows[item] = (str(slot.get("name", "")).strip(), category)
                members.append(item)
            outfits.append((str(set_id), members))
            split_of.append(_split_of(path))
    items = pd.DataFrame([(i, t, c) for i, (t, c) in rows.items()], columns=["item", "title", "category"])
    return outfits, items, split_of, cleaning


def _finish(
    name: str,
    outfits: list[tuple[str, list[str]]],
    items: pd.DataFrame,
    split_names: list[str | None],
    ratios: Sequence[float],
    seed: int,
    cleaning: dict[str, int],
    categories: Sequence[str] | None,
    meta: dict[str, Any],
) -> Dataset:
    given = {s for s in split_names if s} == set(SPLIT_PREFIXES)
    if given:
        splits = np.asarray([SPLIT_PREFIXES.index(s or "train") for s in split_names], dtype=np.int8)
    else:
        splits = split_outfits(len(outfits), ratios, seed)
    method = "given (train/valid/test files)" if given else "random by outfit"
    meta = {**meta, "split": {"method": method, "given": bool(given), "ratios": list(ratios), "seed": seed}}
    return build_outfit_dataset(
        name,
        outfits,
        items,
        splits,
        categories=categories,
        cleaning=cleaning,
        meta=meta,
        question_seed=seed,
    )


def read_polyvore_folder(
    path: Path, name: str | None = None, ratios: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 0
) -> Dataset:
    """A Polyvore folder in either layout (module docstring). When the three split files are not all there, the
    outfits are split at random by ``ratios`` with ``seed``."""
    name = name or path.name
    meta_file = path / "polyvore_item_metadata.json"
    if meta_file.is_file():
        metadata = json.loads(meta_file.read_text(encoding="utf-8"))
        items = pd.DataFrame(
            [
                (str(i), str(m.get("title") or m.get("url_name") or ""), str(m.get("semantic_category", "")))
                for i, m in metadata.items()
            ],
            columns=["item", "title", "category"],
        )
        outfits: list[tuple[str, list[str]]] = []
        names: list[str | None] = []
        for split in SPLIT_PREFIXES:
            file = path / f"{split}.json"
            if not file.is_file():
                continue
            for entry in json.loads(file.read_text(encoding="utf-8")):
                outfits.append((str(entry["set_id"]), [str(x["item_id"]) for x in entry.get("items", [])]))
                names.append(split)
        cleaning: dict[str, int] = {}
        return _finish(
            name,
            outfits,
            _images(path, items),
            names,
            ratios,
            seed,
            cleaning,
            None,
            {"source": str(path), "format": "polyvore-outfits"},
        )
    files = sorted(p for p in path.glob("*.json") if _split_of(p))
    if not files:
        raise DataError(f"{path}: no train*/valid*/test*.json; a Polyvore folder holds MCN or Polyvore-Outfits JSON")
    outfits, items, split_names, cleaning = read_mcn(files)
    return _finish(
        name,
        outfits,
        _images(path, items),
        split_names,
        ratios,
        seed,
        cleaning,
        POLYVORE_CATEGORIES,
        {"source": str(path), "format": "polyvore-mcn"},
    )


@READERS.register(
    "polyvore",
    order=26,
    detects="a folder of train*/valid*/test*.json Polyvore outfits (MCN layout, or Polyvore-Outfits with polyvore_item_metadata.json)",
    description="Polyvore outfits (MCN {set_id: {category: {index, name}}} or Polyvore-Outfits); outfit task",
)
class PolyvoreReader:
    @staticmethod
    def detect(path: Path) -> bool:
        if not path.is_dir():
            return False
        if (path / "polyvore_item_metadata.json").is_file():
            return True
        files = [p for p in path.glob("*.json") if _split_of(p)]
        if not files:
            return False
        try:
            with files[0].open(encoding="utf-8") as handle:
                head = handle.read(4096)
        except OSError:
            return False
        return head.lstrip().startswith("{") and '"index"' in head

    @staticmethod
    def read(path: Path, config: DataConfig) -> Dataset:
        return read_polyvore_folder(path, name=config.name if config.name != str(path) else path.name)
