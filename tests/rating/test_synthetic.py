"""The synthetic review set: planted aspect words drive the ratings. Whether NRPA's attention finds them
(top-weighted words against chance) is measured by benchmarks/rating_synthetic_attention.py: the
training it needs is past this suite's time budget."""

from __future__ import annotations

import numpy as np

from fusionrec.data.builtin.synthetic_reviews import SyntheticReviewOptions, aspect_words, load_synthetic_reviews


def test_ratings_follow_the_planted_words():
    ds = load_synthetic_reviews(SyntheticReviewOptions(num_reviews=3000, seed=1))
    good, bad = aspect_words(5, 2)
    words = ds.interactions["review"].str.split()
    net = words.map(lambda ws: sum(w in good for w in ws) - sum(w in bad for w in ws))
    correlation = np.corrcoef(net, ds.interactions["rating"])[0, 1]
    assert correlation > 0.5
    assert ds.meta["aspect_words"] == [*good, *bad]
    assert len(ds.interactions) == 3000 and not ds.interactions[["user", "item"]].duplicated().any()
