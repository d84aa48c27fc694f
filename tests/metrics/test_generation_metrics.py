"""BLEU and ROUGE-L against hand-computed values."""

from __future__ import annotations

import math

import pytest

from fusionrec.metrics.generation import corpus_bleu, corpus_rouge_l, rouge_l, sentence_bleu, words

HYP = words("The cat sat on the mat.")
REF = words("the cat is on the mat")


def test_words_lower_cases_and_drops_punctuation():
    assert words("The cat's HAT, isn't it?") == ["the", "cat's", "hat", "isn't", "it"]


def test_corpus_bleu_matches_the_hand_count():
    # precisions: unigrams 5/6, bigrams 3/5, trigrams 1/4, 4-grams 0/3; equal lengths, no brevity penalty
    assert corpus_bleu([HYP], [[REF]], max_n=3) == pytest.approx((5 / 6 * 3 / 5 * 1 / 4) ** (1 / 3))
    assert corpus_bleu([HYP], [[REF]], max_n=4) == 0.0
    assert corpus_bleu([REF], [[REF]]) == pytest.approx(1.0)


def test_brevity_penalty_and_clipping():
    short = ["the", "cat"]
    assert corpus_bleu([short], [[REF]], max_n=2) == pytest.approx(math.exp(1 - 6 / 2))
    # "the the the": clipped to the reference's two "the"
    assert corpus_bleu([["the", "the", "the"]], [[REF]], max_n=1) == pytest.approx(2 / 3 * math.exp(1 - 6 / 3))


def test_sentence_bleu_is_add_one_smoothed_above_unigrams():
    expected = (5 / 6 * 4 / 6 * 2 / 5 * 1 / 4) ** (1 / 4)
    assert sentence_bleu(HYP, [REF]) == pytest.approx(expected)


def test_rouge_l_is_the_lcs_f1_best_over_references():
    assert rouge_l(HYP, [REF]) == pytest.approx(5 / 6)  # LCS "the cat on the mat"
    assert rouge_l(HYP, [["dog"], REF]) == pytest.approx(5 / 6)
    assert rouge_l([], [REF]) == 0.0
    assert corpus_rouge_l([HYP, REF], [[REF], [REF]]) == pytest.approx((5 / 6 + 1) / 2)


def test_bad_pairing_is_refused():
    with pytest.raises(ValueError, match="pair them"):
        corpus_bleu([HYP], [])
    with pytest.raises(ValueError, match="token lists"):
        corpus_bleu(["the cat"], [[REF]])
