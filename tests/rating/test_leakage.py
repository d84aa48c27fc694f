"""Leakage rules of the rating family: no validation or test review text reaches a document, the
vocabulary, or a training batch; a training pair's own review is hidden; constants come from training."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data.dataset import TRAIN
from fusionrec.data.reviews import NO_REVIEW, DocumentSpec, build_corpus
from fusionrec.models.rating.global_mean import GlobalMean, GlobalMeanConfig
from fusionrec.models.rating.nrpa import NRPAConfig
from fusionrec.tasks.rating import RatingTask, RatingTaskConfig
from fusionrec.tasks.rating.task import VerbatimRepeats
from fusionrec.training.config import TrainConfig

SPEC = DocumentSpec(max_reviews=50, max_words=40, min_word_count=1)


def held_out_marks(dataset):
    split = dataset.interactions["split"].to_numpy()
    return {f"{'valid' if s == 1 else 'test'}row{row}" for row, s in enumerate(split) if s != TRAIN}


def document_words(corpus, docs):
    reviews = docs[docs != NO_REVIEW]
    return {corpus.words[w] for w in np.unique(corpus.tokens[reviews]) if w}


def test_no_held_out_review_reaches_a_document_or_the_vocabulary(marked_reviews):
    corpus = build_corpus(marked_reviews, SPEC)
    held_out = held_out_marks(marked_reviews)
    assert len(held_out) > 50
    assert not held_out & set(corpus.words)  # the vocabulary is fitted on training text only
    reached = document_words(corpus, corpus.user_docs) | document_words(corpus, corpus.item_docs)
    assert not held_out & reached
    # and every document review is a training row, of that user / item
    split = marked_reviews.interactions["split"].to_numpy()
    assert (split[corpus.review_row] == TRAIN).all()
    users = marked_reviews.interactions["user"].to_numpy()
    for user in range(marked_reviews.num_users):
        slots = corpus.user_docs[user][corpus.user_docs[user] != NO_REVIEW]
        assert (users[corpus.review_row[slots]] == user).all()
    # the training marks do reach documents (the check can see a mark when it is there)
    assert any(word.startswith("trainrow") for word in reached)


def test_no_held_out_text_in_any_batch_the_task_builds(marked_reviews):
    task = RatingTask.build(
        RatingTaskConfig(),
        TrainConfig(batch_size=64, seed=0),
        marked_reviews,
        NRPAConfig(min_word_count=1, max_reviews=50),
    )
    held_out_ids = {task.corpus.words.index(w) for w in held_out_marks(marked_reviews) if w in task.corpus.words}
    assert not held_out_ids
    # evaluation batches: every valid/test pair's documents, in words
    inter = marked_reviews.interactions
    rows = np.flatnonzero(inter["split"].to_numpy() != TRAIN)
    batch = task.batch(inter["user"].to_numpy()[rows], inter["item"].to_numpy()[rows], np.zeros(len(rows), np.float32))
    seen = {
        task.corpus.words[w] for w in np.unique(np.concatenate([batch.user_words.ravel(), batch.item_words.ravel()]))
    }
    assert not held_out_marks(marked_reviews) & seen


def test_a_training_pair_never_reads_its_own_review(marked_reviews):
    task = RatingTask.build(
        RatingTaskConfig(),
        TrainConfig(batch_size=32, seed=0),
        marked_reviews,
        NRPAConfig(min_word_count=1, max_reviews=50),
    )
    own = {task.corpus.words.index(f"trainrow{row}"): row for row in task.train_rows}
    for batch in task.train_batches(1):
        for b in range(len(batch)):
            words = set(np.unique(batch.user_words[b]).tolist()) | set(np.unique(batch.item_words[b]).tolist())
            mine = [w for w in words if w in own]
            user, item = int(batch.users[b]), int(batch.items[b])
            for w in mine:  # marks of other training rows are fine; this pair's own is not
                row = own[w]
                assert not (task.users[row] == user and task.items[row] == item)
    # with the rule off, the own review is there (so the check above can fail)
    loose = RatingTask.build(
        RatingTaskConfig(hide_target_review=False),
        TrainConfig(batch_size=512, seed=0),
        marked_reviews,
        NRPAConfig(min_word_count=1, max_reviews=50),
    )
    batch = next(iter(loose.train_batches(1)))
    found = 0
    for b in range(len(batch)):
        row = loose.train_rows[
            (loose.users[loose.train_rows] == int(batch.users[b]))
            & (loose.items[loose.train_rows] == int(batch.items[b]))
        ]
        word = loose.corpus.words.index(f"trainrow{int(row[0])}")
        found += int((batch.user_words[b] == word).any())
    assert found > 0


def test_global_mean_is_the_training_mean_whatever_the_held_out_ratings(reviews):
    inter = reviews.interactions
    train = inter["split"].to_numpy() == TRAIN
    before = GlobalMean.from_dataset(GlobalMeanConfig(), reviews).mean.item()
    inter.loc[~train, "rating"] = 5.0
    after = GlobalMean.from_dataset(GlobalMeanConfig(), reviews).mean.item()
    assert before == pytest.approx(after) == pytest.approx(inter["rating"][train].mean())


def test_a_data_set_that_copies_reviews_across_items_is_flagged(make_frame):
    reviews = ["same words here", "same words here", "other text", "more text", "fine", "text"]
    dataset = make_frame(
        [5.0, 5.0, 3.0, 2.0, 4.0, 1.0], reviews, [0, 2, 0, 1, 0, 0], users=[0, 0, 1, 1, 2, 2], items=[0, 1, 0, 1, 1, 0]
    )
    with pytest.warns(VerbatimRepeats, match="1 held-out reviews repeat, word for word"):
        task = RatingTask.build(RatingTaskConfig(), TrainConfig(), dataset, NRPAConfig(min_word_count=1))
    assert task.verbatim_repeats == 1 and "WARNING: 1 held-out reviews" in task.protocol
    # the documents still hold training reviews only: the held-out copy (row 1) is in none
    assert 1 not in set(task.corpus.review_row.tolist())
