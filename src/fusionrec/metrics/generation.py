"""Scores of generated text against references: corpus and sentence BLEU, ROUGE-L.

Every family that generates text (VECF's reviews, NOR's comments) scores it here, on the same word
tokens (:func:`words`), so that their figures are comparable.

- **BLEU** (Papineni et al., ACL 2002): clipped n-gram precisions for n = 1..N pooled over the corpus,
  their geometric mean, times the brevity penalty ``exp(1 - r / c)`` when the candidate length ``c`` is
  shorter than the reference length ``r`` (for each hypothesis, the reference length closest to it).
  :func:`sentence_bleu` adds one to the numerator and denominator of every n > 1 precision (Lin & Och,
  COLING 2004), so that one missing 4-gram does not zero a sentence.
- **ROUGE-L** (Lin, 2004): the longest common subsequence ``L`` of hypothesis and reference gives
  precision ``L / |hyp|`` and recall ``L / |ref|``; we report their F1 (beta = 1), the maximum over the
  references. Some toolkits weight recall (beta = 1.2); the figures here are F1.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

Tokens = Sequence[str]

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    """Lower-case word tokens: runs of letters and digits, an apostrophe suffix kept (``don't``)."""
    return _WORD.findall(text.lower())


def _ngrams(tokens: Tokens, n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _clipped_matches(hypothesis: Tokens, references: Sequence[Tokens], n: int) -> tuple[int, int]:
    """(clipped matches, candidate n-grams) of one hypothesis at order ``n``."""
    candidate = _ngrams(hypothesis, n)
    most: Counter[tuple[str, ...]] = Counter()
    for reference in references:
        most |= _ngrams(reference, n)
    matched = sum(min(count, most[gram]) for gram, count in candidate.items())
    return matched, max(len(hypothesis) - n + 1, 0)


def _closest_length(hypothesis: Tokens, references: Sequence[Tokens]) -> int:
    return min((abs(len(r) - len(hypothesis)), len(r)) for r in references)[1]


def _check(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists; pair them one to one")
    if any(len(refs) == 0 for refs in references):
        raise ValueError("every hypothesis needs at least one reference")
    if any(isinstance(h, str) for h in hypotheses):
        raise ValueError("hypotheses must be token lists (use words(text)), not strings")


def _bleu(matched: list[int], total: list[int], hyp_len: int, ref_len: int, smooth: bool) -> float:
    if hyp_len == 0:
        return 0.0
    logs = []
    for n, (m, t) in enumerate(zip(matched, total, strict=True), start=1):
        if smooth and n > 1:
            m, t = m + 1, t + 1
        if m == 0 or t == 0:
            return 0.0
        logs.append(math.log(m / t))
    brevity = 1.0 if hyp_len > ref_len else math.exp(1.0 - ref_len / hyp_len)
    return brevity * math.exp(sum(logs) / len(logs))


def corpus_bleu(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]], max_n: int = 4) -> float:
    """Corpus BLEU-``max_n`` in [0, 1]; ``references[i]`` lists the references of ``hypotheses[i]``."""
    _check(hypotheses, references)
    matched, total = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hypothesis, refs in zip(hypotheses, references, strict=True):
        for n in range(1, max_n + 1):
            m, t = _clipped_matches(hypothesis, refs, n)
            matched[n - 1] += m
            total[n - 1] += t
        hyp_len += len(hypothesis)
        ref_len += _closest_length(hypothesis, refs)
    return _bleu(matched, total, hyp_len, ref_len, smooth=False)


def sentence_bleu(hypothesis: Tokens, references: Sequence[Tokens], max_n: int = 4) -> float:
    """BLEU-``max_n`` of one sentence, add-one smoothed for n > 1."""
    _check([hypothesis], [references])
    counts = [_clipped_matches(hypothesis, references, n) for n in range(1, max_n + 1)]
    return _bleu(
        [m for m, _ in counts],
        [t for _, t in counts],
        len(hypothesis),
        _closest_length(hypothesis, references),
        smooth=True,
    )


def _lcs_length(a: Tokens, b: Tokens) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token == other else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(hypothesis: Tokens, references: Sequence[Tokens]) -> float:
    """ROUGE-L F1 of one hypothesis, the best over its references; 0 for an empty side."""
    _check([hypothesis], [references])
    best = 0.0
    for reference in references:
        lcs = _lcs_length(hypothesis, reference)
        if lcs:
            precision, recall = lcs / len(hypothesis), lcs / len(reference)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def corpus_rouge_l(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]]) -> float:
    """Mean ROUGE-L F1 over hypothesis/references pairs."""
    _check(hypotheses, references)
    if not hypotheses:
        return 0.0
    return sum(rouge_l(h, refs) for h, refs in zip(hypotheses, references, strict=True)) / len(hypotheses)
