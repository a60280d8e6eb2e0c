"""A character n-gram judge of sample quality, and word-level diversity and validity figures.

The judge is an interpolated Kneser-Ney character n-gram model (Kneser & Ney 1995; the interpolated form of Chen &
Goodman 1998, "An empirical study of smoothing techniques for language modeling", eq. 17-18), order 6 by default,
trained on a text file. Its bits per character on a sample say how much the sample reads like the training text at the
scale of a few characters (spelling, word shapes, punctuation); it is cheap (pure Python, trained on 1 MB in seconds),
deterministic, and independent of the models it judges. Low bits/char alone rewards repetition, so it is reported
beside distinct-n over words (Li et al. 2016) and the share of words found in the judge's training text.

    P_N(w | h) = max(c(hw) - D_N, 0) / c(h.) + D_N N1+(h.) / c(h.) * P_{N-1}(w | h')        (highest order: counts)
    P_k(w | h) = max(N1+(.hw) - D_k, 0) / N1+(.h.) + D_k N1+(h.) / N1+(.h.) * P_{k-1}(w | h')  (lower: continuation)
    P_0(w) = 1 / V,   D_k = n1 / (n1 + 2 n2)

where h' drops the first character of h, N1+(.hw) counts the distinct characters seen before hw, and a context never
seen gives all its weight to the lower order. V counts the training characters plus one unknown character.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import re
from collections.abc import Iterable, Sequence

UNKNOWN = "\uffff"
"""Stands for every character the judge never saw in training (probability from the uniform base only)."""

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


class JudgeError(ValueError):
    """The judge cannot be trained or used as asked; the message names the file or value."""


@dataclasses.dataclass
class _Order:
    """The statistics of one order k: (continuation) counts of k-grams and, per (k-1)-character context, their
    total and the number of distinct next characters."""

    counts: dict[str, int]
    totals: dict[str, int]
    types: dict[str, int]
    discount: float


class CharNgramJudge:
    """Interpolated Kneser-Ney character n-gram model (see the module docstring for the equations).

    Args:
        text: the training text.
        order: N, the longest n-gram (contexts of N - 1 characters).
    """

    def __init__(self, text: str, *, order: int = 6) -> None:
        if order < 1:
            raise JudgeError(f"the judge's order must be at least 1, got {order}")
        if len(text) <= order:
            raise JudgeError(f"the judge needs more than {order} characters of training text")
        self.order = order
        self.vocab = sorted(set(text)) + [UNKNOWN]
        self._known = frozenset(text)
        self.words = frozenset(words(text))
        """The judge's training vocabulary: every word of its training text (lower case, as `words`)."""
        raw = collections.Counter(text[i : i + order] for i in range(len(text) - order + 1))
        self._orders: list[_Order] = [None] * (order + 1)  # type: ignore[list-item]
        self._orders[order] = _statistics(raw)
        # every shorter n-gram counts the distinct characters seen just before it (its continuation count); the
        # n-grams of the first characters of the text, which have none, are left out
        higher = raw
        for k in range(order - 1, 0, -1):
            continuation: collections.Counter[str] = collections.Counter()
            for gram in higher:
                continuation[gram[1:]] += 1
            self._orders[k] = _statistics(continuation)
            higher = continuation
        self._base = 1.0 / len(self.vocab)

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, order: int = 6) -> CharNgramJudge:
        """Train on a UTF-8 text file."""
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise JudgeError(
                f"cannot read the judge's training text {os.fspath(path)!r}: {exc}"
            ) from None
        return cls(text, order=order)

    def prob(self, context: str, char: str) -> float:
        """P(char | the last order - 1 characters of context); unknown characters share the unknown's mass."""
        if char not in self._known:
            char = UNKNOWN
        context = context[len(context) - self.order + 1 :] if self.order > 1 else ""
        p = self._base
        for k in range(1, self.order + 1):
            if k - 1 > len(context):
                break
            h = context[len(context) - (k - 1) :] if k > 1 else ""
            stats = self._orders[k]
            total = stats.totals.get(h)
            if (
                not total
            ):  # an unseen context: the lower order carries all the weight, as for longer ones
                break
            count = stats.counts.get(h + char, 0)
            p = (max(count - stats.discount, 0.0) + stats.discount * stats.types[h] * p) / total
        return p

    def distribution(self, context: str) -> dict[str, float]:
        """P(. | context) over the judge's vocabulary (training characters and UNKNOWN); sums to 1."""
        return {c: self.prob(context, c) for c in self.vocab}

    def bits(self, text: str) -> float:
        """-log2 P(text): each character scored given the characters before it in `text` (fewer at the start)."""
        return -sum(
            math.log2(self.prob(text[max(0, i - self.order + 1) : i], c))
            for i, c in enumerate(text)
        )

    def bits_per_char(self, texts: Iterable[str]) -> float:
        """Total bits over total characters of `texts`, each scored on its own."""
        texts = list(texts)
        n = sum(len(t) for t in texts)
        if n == 0:
            raise JudgeError("the judge was given no characters to score")
        return sum(self.bits(t) for t in texts) / n


def _statistics(counts: dict[str, int]) -> _Order:
    totals: collections.Counter[str] = collections.Counter()
    types: collections.Counter[str] = collections.Counter()
    for gram, c in counts.items():
        totals[gram[:-1]] += c
        types[gram[:-1]] += 1
    n1 = sum(1 for c in counts.values() if c == 1)
    n2 = sum(1 for c in counts.values() if c == 2)
    discount = n1 / (n1 + 2 * n2) if n1 + n2 else 0.5
    return _Order(dict(counts), dict(totals), dict(types), discount)


def words(text: str) -> list[str]:
    """The words of `text` for the real-word rate: lower-case letter runs, inner apostrophes kept."""
    return _WORD.findall(text.lower())


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct word n-grams over all word n-grams, pooled over `texts` (Li et al. 2016, "A diversity-promoting
    objective function for neural conversation models"); words are whitespace-separated, as in bench/quality.py."""
    grams = []
    for text in texts:
        tokens = text.split()
        grams.extend(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def real_word_rate(texts: Sequence[str], vocabulary: frozenset[str] | set[str]) -> float:
    """Share of the `words` of `texts` found in `vocabulary` (e.g. `CharNgramJudge.words`)."""
    found = [w in vocabulary for text in texts for w in words(text)]
    return sum(found) / len(found) if found else 0.0


@dataclasses.dataclass
class JudgeScore:
    bits_per_char: float
    """The judge's cross-entropy on the texts (bits per character; lower reads more like its training text)."""
    distinct_1: float
    distinct_2: float
    real_word_rate: float
    """Share of words that occur in the judge's training text."""
    n_texts: int
    n_chars: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def judge_texts(judge: CharNgramJudge, texts: Sequence[str]) -> JudgeScore:
    """Every figure of `JudgeScore` for `texts`."""
    return JudgeScore(
        bits_per_char=judge.bits_per_char(texts),
        distinct_1=distinct_n(texts, 1),
        distinct_2=distinct_n(texts, 2),
        real_word_rate=real_word_rate(texts, judge.words),
        n_texts=len(texts),
        n_chars=sum(len(t) for t in texts),
    )
