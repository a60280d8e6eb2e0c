"""Two non-neural references for attribute (sentiment) transfer: a word-swap baseline and a TF-IDF judge.

The word swap follows the marker step of Li et al. (2018), "Delete, Retrieve, Generate" (Sec. 3.1): the salience
of word w for class c is

    s(w, c) = (count(w, c) + lambda) / (count(w, c') + lambda),                                   (Li et al. eq. 1)

with raw counts over the training lines of each class and lambda = 1, and w is an attribute marker of c when
s(w, c) >= gamma. Where Li et al. delete the markers and let a model (DeleteOnly) or a retrieved sentence
(DeleteAndRetrieve) fill the gap, the baseline here puts one fixed word of the target class in each marker's place:

- rule "context": the target-class marker whose neighbours in the training lines (counts of the word to its left
  and of the word to its right, sentence boundaries included) have the highest cosine similarity to the source
  marker's, a stand-in for "the same part of speech" without a tagger ("rude" -> "friendly", "worst" -> "best");
- rule "frequent": the single most frequent target-class marker for every source marker.

Ties go to the target marker seen more often in its class, then to the alphabetically first, so a fit is
deterministic. Words are the whitespace tokens of the (already tokenised, lower-cased) lines.

bench/attribute_style.py chooses gamma and the rule on the Yelp dev sentences in every run (they have no human
rewrites, so by sqrt(judge accuracy x BLEU to the source)); there "frequent" at gamma 6 won (83.5% moved, self-BLEU
67.5, 75.1) over "frequent" at 5 (74.1) and the best "context" fit (gamma 5: 74.3%, 61.4, 67.6): one strong word
("great", "not") convinces the judge more often than the context-matched ones ("rude" -> "tasty", "worst" ->
"best"), at the same content kept. Those are the defaults of `fit_word_swap`.

The judge is the usual transfer-accuracy classifier of this literature (a fastText/CNN classifier in Li et al.; a
linear model here): TF-IDF of word unigrams and bigrams (sublinear tf, min_df 2, whitespace tokens so that "n't" and
"!" count) and a logistic regression (scikit-learn, imported when a judge is fitted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

import numpy as np

Rule = Literal["context", "frequent"]
RULES: tuple[str, ...] = ("context", "frequent")


def _check_two_classes(lines: Sequence[Sequence[str]], what: str) -> None:
    if len(lines) != 2 or not all(len(group) for group in lines):
        raise ValueError(
            f"{what} needs the lines of two classes, each non-empty (got {len(lines)})"
        )


@dataclasses.dataclass(frozen=True)
class WordCounts:
    """Word statistics of two classes of lines, fitted once and shared by every (gamma, rule) fit.

    Attributes:
        vocabulary: V words, sorted.
        counts: (2, V) int64, occurrences of each word in the lines of class 0 and class 1.
        context: (V, 2V + 2) float64 scipy CSR, the neighbour counts of each word over both classes: column j < V+1
            counts word j (V: the sentence start) just left of it, column V + 1 + j word j (V: the end) just right.
    """

    vocabulary: tuple[str, ...]
    counts: np.ndarray
    context: object

    @classmethod
    def from_lines(cls, lines: Sequence[Sequence[str]]) -> WordCounts:
        """Count the words of `lines[0]` (class 0) and `lines[1]` (class 1) and their neighbours."""
        from scipy import sparse

        _check_two_classes(lines, "WordCounts.from_lines")
        tokenised = [[line.split() for line in group] for group in lines]
        vocabulary = tuple(sorted({w for group in tokenised for line in group for w in line}))
        if not vocabulary:
            raise ValueError("WordCounts.from_lines: the lines hold no word")
        index = {w: i for i, w in enumerate(vocabulary)}
        n = len(vocabulary)
        counts = np.zeros((2, n), dtype=np.int64)
        rows, left, right = [], [], []
        for label, group in enumerate(tokenised):
            for line in group:
                ids = [index[w] for w in line]
                if not ids:
                    continue
                rows += ids
                left += [n, *ids[:-1]]  # n: the sentence start
                right += [*ids[1:], n]  # n: the sentence end
            np.add.at(counts[label], [index[w] for line in group for w in line], 1)
        rows_ = np.asarray(rows, dtype=np.int64)
        cols = np.concatenate([np.asarray(left), n + 1 + np.asarray(right)])
        # duplicates are summed by the COO -> CSR conversion: (V, 2V + 2) neighbour counts
        context = sparse.coo_matrix(
            (np.ones(2 * len(rows_)), (np.concatenate([rows_, rows_]), cols)),
            shape=(n, 2 * n + 2),
        ).tocsr()
        return cls(vocabulary=vocabulary, counts=counts, context=context)

    def salience(self, label: int, *, smoothing: float = 1.0) -> np.ndarray:
        """(V,) float64 salience of every word for class `label` (Li et al. 2018 eq. 1, lambda = `smoothing`)."""
        if label not in (0, 1):
            raise ValueError(f"label must be 0 or 1, not {label!r}")
        if smoothing <= 0:
            raise ValueError(f"smoothing (lambda) must be > 0, not {smoothing}")
        return (self.counts[label] + smoothing) / (self.counts[1 - label] + smoothing)

    def markers(self, label: int, *, gamma: float, smoothing: float = 1.0) -> np.ndarray:
        """Indices of the attribute markers of class `label`, most frequent in that class first (then by word)."""
        found = np.flatnonzero(self.salience(label, smoothing=smoothing) >= gamma)
        # vocabulary is sorted, so a stable sort on -count keeps alphabetical order among equal counts
        return found[np.argsort(-self.counts[label][found], kind="stable")]


@dataclasses.dataclass(frozen=True)
class WordSwap:
    """The fitted baseline: `replacements[c]` maps each marker of class c to the word of class 1 - c put in its
    place."""

    replacements: tuple[dict[str, str], dict[str, str]]
    gamma: float
    rule: str

    def transfer(self, lines: Sequence[str], *, source: int) -> list[str]:
        """Move lines of class `source` to the other class, word by word; a line without markers is kept."""
        if source not in (0, 1):
            raise ValueError(f"source must be 0 or 1, not {source!r}")
        table = self.replacements[source]
        return [" ".join(table.get(w, w) for w in line.split()) for line in lines]


def fit_word_swap(
    counts: WordCounts,
    *,
    gamma: float = 6.0,
    rule: Rule = "frequent",
    smoothing: float = 1.0,
    chunk: int = 1024,
) -> WordSwap:
    """The word-swap baseline of the module docstring for one marker threshold `gamma` (> 1, so that no word is a
    marker of both classes) and one replacement `rule`; markers of a class without a marker on the other side are
    kept as they are."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, not {rule!r}")
    if not gamma > 1:
        raise ValueError(
            f"gamma must be > 1 (a word would be a marker of both classes), not {gamma}"
        )
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, not {chunk}")
    words = counts.vocabulary
    markers = [counts.markers(c, gamma=gamma, smoothing=smoothing) for c in (0, 1)]
    replacements: list[dict[str, str]] = [{}, {}]
    for source in (0, 1):
        src, tgt = markers[source], markers[1 - source]
        if not len(src) or not len(tgt):
            continue
        if rule == "frequent":
            replacements[source] = {words[i]: words[tgt[0]] for i in src}
            continue
        unit_src, unit_tgt = _unit_rows(counts.context[src]), _unit_rows(counts.context[tgt])
        for start in range(0, len(src), chunk):
            # (chunk, T) cosines, rounded so that equal cosines compare equal whatever the summation order;
            # tgt is ordered by frequency, and argmax takes the first of equal maxima
            cosine = np.round((unit_src[start : start + chunk] @ unit_tgt.T).toarray(), 12)
            best = cosine.argmax(axis=1)
            for i, j in zip(src[start : start + chunk], best):
                replacements[source][words[i]] = words[tgt[j]]
    return WordSwap(replacements=(replacements[0], replacements[1]), gamma=gamma, rule=rule)


def _unit_rows(matrix):
    """A CSR matrix with every non-zero row scaled to unit L2 norm."""
    from scipy import sparse

    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ matrix


class TfidfJudge:
    """Transfer-accuracy classifier: TF-IDF word unigrams and bigrams + logistic regression (module docstring)."""

    def __init__(self, model) -> None:
        self.model = model

    @classmethod
    def fit(
        cls,
        lines: Sequence[Sequence[str]],
        *,
        min_df: int = 2,
        c: float = 1.0,
        max_iter: int = 1000,
    ) -> TfidfJudge:
        """Train on `lines[0]` (class 0) and `lines[1]` (class 1); `c` is the inverse L2 penalty."""
        try:
            from sklearn.feature_extraction.text import TfidfVectorizer
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
        except ImportError as exc:
            raise ImportError(
                "the TF-IDF judge needs scikit-learn: pip install scikit-learn"
            ) from exc

        _check_two_classes(lines, "TfidfJudge.fit")
        texts = [*lines[0], *lines[1]]
        labels = np.array([0] * len(lines[0]) + [1] * len(lines[1]))
        model = make_pipeline(
            TfidfVectorizer(
                ngram_range=(1, 2),
                sublinear_tf=True,
                min_df=min_df,
                token_pattern=r"\S+",  # the lines are tokenised: keep "n't", "!" and one-letter words
                lowercase=True,
            ),
            LogisticRegression(C=c, max_iter=max_iter),
        )
        model.fit(texts, labels)
        return cls(model)

    def predict(self, lines: Sequence[str]) -> np.ndarray:
        """(N,) int64 predicted class of each line."""
        if not len(lines):
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self.model.predict(list(lines)), dtype=np.int64)

    def accuracy(self, lines: Sequence[Sequence[str]]) -> float:
        """Share of `lines[0]` predicted 0 and `lines[1]` predicted 1, over all lines."""
        _check_two_classes(lines, "TfidfJudge.accuracy")
        right = sum(int((self.predict(group) == label).sum()) for label, group in enumerate(lines))
        return right / (len(lines[0]) + len(lines[1]))
