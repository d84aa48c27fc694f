"""Built-in data sets: exact sizes of the real ones, and the synthetic generator's promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import DataConfig, SplitConfig
from fusionrec.data.builtin.synthetic import SyntheticOptions, load_synthetic
from fusionrec.data.dataset import TEST, TRAIN
from fusionrec.data.prepare import read_source, review_modality
from fusionrec.data.splits import apply_split

# -- ml-100k ----------------------------------------------------------------------------------


def test_ml100k_sizes(ml100k):
    assert (ml100k.num_users, ml100k.num_items, ml100k.num_interactions) == (943, 1682, 100_000)
    assert ml100k.is_split and sum(ml100k.split_sizes().values()) == 100_000
    assert ml100k.interactions["rating"].between(1, 5).all()
    assert ml100k.meta["fingerprint"]


def test_ml100k_modalities(ml100k):
    text, genre = ml100k.modalities["text"], ml100k.modalities["genre"]
    assert text.values.shape == (1682, 64) and text.mask.all()
    np.testing.assert_allclose(np.linalg.norm(text.values, axis=1), 1.0, rtol=1e-4)
    assert genre.kind == "categorical" and genre.values.shape == (1682, len(genre.labels))
    assert {"Action", "Comedy", "Drama"} <= set(genre.labels) and len(genre.labels) >= 18
    assert set(np.unique(genre.values)) <= {0.0, 1.0} and genre.mask.mean() > 0.99
    # Toy Story (raw id 1) is an animation / children's / comedy film.
    toy = list(ml100k.item_ids).index("1")
    labels = {genre.labels[j] for j in np.flatnonzero(genre.values[toy])}
    assert "Animation" in labels and "Comedy" in labels
    assert "Toy Story" in ml100k.items["title"].iloc[toy]


def test_ml100k_text_basis_is_fitted_on_training_items_only(ml100k_env):
    """Under a cold-item split the LSA vocabulary and basis come from the warm items: editing a held-out
    item's text changes its own vector only."""
    from fusionrec.data import load_dataset
    from fusionrec.data.builtin import ml100k as module
    from fusionrec.data.content import training_item_mask

    cold = load_dataset("ml-100k", split={"method": "cold_item", "seed": 3})
    warm = training_item_mask(cold)
    assert f"fitted on {int(warm.sum())} training items" in cold.modalities["text"].source and not warm.all()
    held_out = int(np.flatnonzero(~warm)[0])
    cold.items.loc[held_out, "text"] = "zebra zebra zebra quantum chromodynamics"
    edited = module.add_text(cold).modalities["text"].values
    reference = load_dataset("ml-100k", split={"method": "cold_item", "seed": 3}).modalities["text"].values
    np.testing.assert_allclose(edited[warm], reference[warm], atol=1e-6)
    assert not np.allclose(edited[held_out], reference[held_out])


def test_ml100k_knowledge_graph(ml100k):
    assert len(ml100k.kg) == 91_631 and list(ml100k.kg.columns) == ["head", "relation", "tail"]
    links = ml100k.item_entities
    assert len(links) == 1598 and links["item"].between(0, 1681).all() and links["item"].is_unique
    entities = set(ml100k.kg["head"]) | set(ml100k.kg["tail"])
    assert links["entity"].isin(entities).mean() > 0.95


# -- shared real data -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def movielens_small(shared):
    if not (shared / "data" / "movielens-latest-small").is_dir():
        pytest.skip("movielens-latest-small not in the shared folder")
    return read_source(DataConfig(name="movielens-small"), None)


def test_movielens_small(movielens_small, shared):
    ds = movielens_small
    assert (ds.num_users, ds.num_items, ds.num_interactions) == (610, 9724, 100_836)
    posters = ds.items["image_path"].dropna()
    assert len(posters) == 188 and all(Path(p).is_file() for p in posters)
    assert ds.items.loc[list(ds.item_ids).index("1"), "image_path"].endswith("1.jpg")
    assert ds.modalities["genre"].values.shape[0] == 9724
    assert "text" not in ds.modalities  # built after the split, from training tags (see test_movielens_tags)
    ratings = pd.read_csv(shared / "data" / "movielens-latest-small" / "ratings.csv")
    assert ds.interactions["timestamp"].sum() == ratings["timestamp"].sum()


def test_movielens_small_posters_only_keeps_the_movies_with_a_poster(movielens_small, shared):
    ds = read_source(DataConfig(name="movielens-small"), {"posters_only": True})
    assert ds.num_items == 188 and ds.items["image_path"].notna().all()
    full = movielens_small
    kept = set(full.item_ids[full.items["image_path"].notna().to_numpy()].astype(str))
    assert set(ds.item_ids.astype(str)) == kept
    expected = full.interactions["item"].isin(np.flatnonzero(full.items["image_path"].notna().to_numpy())).sum()
    assert ds.num_interactions == expected


def test_movielens_tags_come_from_training_ratings_only():
    """Item text is built after the split from the tags of training (user, item) pairs: a tag its
    author wrote on a held-out item never reaches that item's text (no data needed: a toy set)."""
    from fusionrec.data.builtin.movielens_small import add_training_text
    from fusionrec.data.dataset import build_dataset

    ratings = pd.DataFrame(
        {
            "user": ["1", "1", "2", "2", "3", "3"],
            "item": ["10", "20", "10", "20", "10", "20"],
            "timestamp": [1, 2, 3, 4, 5, 6],
            "tags": [None, "leaky spoiler", "cozy", None, "cozy|classic", None],
        }
    )
    movies = pd.DataFrame(
        {"item": ["10", "20"], "title": ["Alpha", "Beta"], "year": ["1995", "1996"], "genres": ["Drama", "Comedy"]}
    )
    ds = build_dataset("ml-toy", ratings[["user", "item", "timestamp"]], items=movies, meta={"text_dim": 8})
    ds.interactions["tags"] = ratings["tags"].to_numpy(dtype=object)
    split = ds.interactions["split"].to_numpy().copy()
    split[:] = TRAIN
    split[1] = TEST  # user 1's rating of item 20 (the one they tagged) is held out
    ds.interactions["split"] = split
    add_training_text(ds)
    assert ds.items["tags"].tolist() == ["classic, cozy", ""]
    assert "leaky" not in ds.items["text"].iloc[1] and "spoiler" not in " ".join(ds.items["text"])
    assert ds.items["text"].iloc[0] == "Alpha (1995). Genres: Drama. Tags: classic, cozy."
    assert ds.modalities["text"].values.shape == (2, 8)


@pytest.fixture(scope="module")
def movielens_split(shared, tmp_path_factory):
    if not (shared / "data" / "movielens-latest-small").is_dir():
        pytest.skip("movielens-latest-small not in the shared folder")
    from fusionrec.data import load_dataset

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FUSIONREC_HOME", str(tmp_path_factory.mktemp("ml-small-home")))
        return load_dataset("movielens-small", split={"method": "loo"})


def test_movielens_small_text_has_no_held_out_tag(movielens_split, shared):
    ds = movielens_split
    tags = pd.read_csv(shared / "data" / "movielens-latest-small" / "tags.csv", dtype=str)
    raw_split = {
        (ds.user_ids[u], ds.item_ids[i]): s
        for u, i, s in ds.interactions[["user", "item", "split"]].itertuples(index=False)
    }
    tags["split"] = [raw_split.get((u, i)) for u, i in zip(tags["userId"], tags["movieId"])]
    train_tags = tags[tags["split"] == TRAIN].groupby("movieId")["tag"].agg(lambda t: set(t.str.strip()))
    item_index = {raw: j for j, raw in enumerate(ds.item_ids)}
    held_out = tags[tags["split"].isin([1, 2])]
    assert len(held_out) > 0, "the loo split should hold out some tagged ratings"
    leaks = [
        (r.movieId, r.tag)
        for r in held_out.itertuples()
        if r.tag.strip() not in train_tags.get(r.movieId, set())
        and r.tag.strip() in ds.items["tags"].iloc[item_index[r.movieId]].split(", ")
    ]
    assert not leaks, f"held-out tags in item text: {leaks[:5]}"
    # Every item's tags are exactly the tags of its training ratings.
    for movie, expected in list(train_tags.items())[:200]:
        assert set(filter(None, ds.items["tags"].iloc[item_index[movie]].split(", "))) == expected
    assert ds.modalities["text"].values.shape == (9724, 64)
    assert "training ratings" in ds.modalities["text"].source


@pytest.fixture(scope="module")
def amazon(shared):
    if not (shared / "data" / "amazon-fashion-5core").is_dir():
        pytest.skip("amazon-fashion-5core not in the shared folder")
    return read_source(DataConfig(name="amazon-fashion"), None)


def test_amazon_fashion(amazon):
    assert (amazon.num_users, amazon.num_items, amazon.num_interactions) == (406, 31, 3042)
    assert amazon.interactions["rating"].between(1, 5).all()
    assert amazon.interactions["review"].str.len().gt(0).mean() > 0.99


def test_amazon_review_text_uses_training_reviews_only(amazon):
    ds = apply_split(amazon, SplitConfig(method="loo"))
    before = review_modality(ds, 16).values
    tampered = ds.interactions.copy()
    held_out = tampered["split"].to_numpy() != TRAIN
    tampered.loc[held_out, "review"] = "zebra quantum saxophone " * 5
    ds.interactions = tampered
    np.testing.assert_array_equal(review_modality(ds, 16).values, before)


# -- synthetic --------------------------------------------------------------------------------


def syn(**kw):
    return load_synthetic(SyntheticOptions(**{"num_users": 300, "num_items": 400, "num_interactions": 9000, **kw}))


def test_synthetic_same_seed_same_data():
    a, b = syn(seed=4), syn(seed=4)
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    for name in ("visual", "text"):
        np.testing.assert_array_equal(a.modalities[name].values, b.modalities[name].values)
        np.testing.assert_array_equal(a.modalities[name].mask, b.modalities[name].mask)


def test_synthetic_other_seed_other_data():
    a, b = syn(seed=4), syn(seed=5)
    assert not a.interactions[["user", "item"]].equals(b.interactions[["user", "item"]])
    assert not np.array_equal(a.modalities["visual"].values, b.modalities["visual"].values)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"num_users": 50, "num_items": 30, "num_interactions": 1200},
        {"num_users": 2000, "num_items": 50, "num_interactions": 30000},
        {"num_users": 500, "num_items": 3000, "num_interactions": 400},
    ],
)
def test_synthetic_reaches_the_interaction_count(kw):
    ds = syn(**kw)
    target = ds.meta["options"]["num_interactions"]
    assert not ds.interactions.duplicated(["user", "item"]).any()
    assert 0.99 * target <= ds.num_interactions <= target


def _top3_cluster_share(ds, shuffle: bool = False) -> float:
    """Mean share of a user's interactions in their 3 most frequent item clusters (users with >= 20)."""
    cluster = ds.items["cluster"].to_numpy()
    inter = ds.interactions
    n = inter.groupby("user").size()
    heavy = inter[inter["user"].isin(n.index[n >= 20])]
    items = heavy["item"].to_numpy()
    if shuffle:  # same users, same item popularity, preferences destroyed
        items = np.random.default_rng(0).permutation(items)
    table = pd.crosstab(heavy["user"].to_numpy(), cluster[items]).to_numpy()
    return float((np.sort(table, axis=1)[:, -3:].sum(axis=1) / table.sum(axis=1)).mean())


def test_synthetic_users_concentrate_on_few_clusters():
    ds = syn(num_clusters=20, seed=1)
    planted, shuffled = _top3_cluster_share(ds), _top3_cluster_share(ds, shuffle=True)
    assert planted > 0.5 and planted > shuffled + 0.15
    # A lower temperature plants sharper preferences.
    assert _top3_cluster_share(syn(num_clusters=20, seed=1, temperature=0.2)) > planted + 0.1


def test_synthetic_features_predict_co_interaction():
    """Items consumed by the same user have closer visual features than random item pairs."""
    ds = syn(missing_rate=0.0, seed=2)
    feats = ds.modalities["visual"].values
    feats = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    inter = ds.interactions.sort_values(["user", "timestamp"])
    same_user = inter["user"].to_numpy()[1:] == inter["user"].to_numpy()[:-1]
    a, b = inter["item"].to_numpy()[:-1][same_user], inter["item"].to_numpy()[1:][same_user]
    co = float((feats[a] * feats[b]).sum(axis=1).mean())
    rng = np.random.default_rng(0)
    r1, r2 = rng.integers(0, ds.num_items, (2, 20000))
    chance = float((feats[r1] * feats[r2]).sum(axis=1).mean())
    assert co > chance + 0.07


def test_synthetic_missing_modality_rate():
    ds = syn(num_items=4000, num_interactions=20000, missing_rate=0.3)
    for m in ds.modalities.values():
        assert abs((1 - m.mask.mean()) - 0.3) < 0.03
        assert not m.values[~m.mask].any()  # missing rows are zeros
        assert (np.abs(m.values[m.mask]).sum(axis=1) > 0).all()


def test_synthetic_prepares_and_splits():
    ds = apply_split(syn(), SplitConfig(method="loo"))
    assert (ds.interactions["split"] == TEST).sum() > 0


@pytest.mark.slow
def test_synthetic_ten_million_interactions_fit_in_memory(tmp_path):
    """10^7 interactions within ~3 GB peak RSS (run in a fresh process to measure it alone)."""
    code = (
        "import resource, json\n"
        "from fusionrec.data.builtin.synthetic import SyntheticOptions, load_synthetic\n"
        "ds = load_synthetic(SyntheticOptions(num_users=500_000, num_items=100_000, num_interactions=10_000_000))\n"
        "print(json.dumps({'n': ds.num_interactions, 'rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["n"] >= 9_900_000
    assert result["rss_kb"] < 3 * 1024 * 1024
