"""The word-swap baseline (Li et al. 2018 salience markers, one replacement word each) and the TF-IDF judge of
bench/attribute_style.py, on hand-made review lines."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest

from textdiffusion.tasks.style.wordswap import TfidfJudge, WordCounts, fit_word_swap

# the adjective and the verb carry the sentiment; "loved" is the most frequent positive word
NEGATIVE = ["the waiter was rude ."] * 4 + ["we hated the food ."] * 4
POSITIVE = ["the waiter was friendly ."] * 3 + ["we loved the food ."] * 6


@pytest.fixture(scope="module")
def counts() -> WordCounts:
    return WordCounts.from_lines([NEGATIVE, POSITIVE])


def test_salience_is_li_et_al_eq_1(counts):
    index = {w: i for i, w in enumerate(counts.vocabulary)}
    negative, positive = counts.salience(0), counts.salience(1)
    assert negative[index["rude"]] == (4 + 1) / (0 + 1)
    assert positive[index["loved"]] == (6 + 1) / (0 + 1)
    assert positive[index["food"]] == (6 + 1) / (4 + 1)
    assert counts.salience(0, smoothing=0.5)[index["the"]] == pytest.approx((8.5) / (9.5))
    # markers: salience >= gamma, most frequent in the class first, equal counts alphabetically
    words = lambda ids: [counts.vocabulary[i] for i in ids]  # noqa: E731
    assert words(counts.markers(0, gamma=3)) == ["hated", "rude"]
    assert words(counts.markers(1, gamma=3)) == ["loved", "friendly"]
    assert words(counts.markers(1, gamma=4.5)) == ["loved"]


def test_context_rule_keeps_the_role_and_frequent_rule_takes_the_top_word(counts):
    context = fit_word_swap(counts, gamma=3, rule="context")
    assert context.replacements == (
        {"rude": "friendly", "hated": "loved"},
        {"friendly": "rude", "loved": "hated"},
    )
    assert context.transfer(["the waiter was rude .", "no marker here"], source=0) == [
        "the waiter was friendly .",
        "no marker here",
    ]
    frequent = fit_word_swap(counts, gamma=3, rule="frequent")
    assert frequent.transfer(["the waiter was rude ."], source=0) == ["the waiter was loved ."]
    # rude and hated are both seen 4 times: the alphabetically first wins
    assert frequent.transfer(["we loved the food ."], source=1) == ["we hated the food ."]
    # a threshold above every salience leaves the lines as they are
    assert fit_word_swap(counts, gamma=100).transfer(NEGATIVE, source=0) == NEGATIVE


def slow_context_swap(lines: list[list[str]], gamma: float) -> list[dict[str, str]]:
    """The context rule with Counters and loops: cosine of left/right neighbour counts, frequency, then word."""
    counts = [Counter(w for line in group for w in line.split()) for group in lines]
    neighbours: dict[str, Counter] = {}
    for group in lines:
        for line in group:
            tokens = ["<s>", *line.split(), "</s>"]
            for left, word, right in zip(tokens, tokens[1:], tokens[2:]):
                neighbours.setdefault(word, Counter()).update([("L", left), ("R", right)])

    def cosine(a: Counter, b: Counter) -> float:
        dot = sum(a[k] * b[k] for k in a)
        return dot / math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))

    def markers(c: int) -> list[str]:
        words = set(counts[0]) | set(counts[1])
        return [w for w in words if (counts[c][w] + 1) / (counts[1 - c][w] + 1) >= gamma]

    swaps: list[dict[str, str]] = [{}, {}]
    for c in (0, 1):
        targets = markers(1 - c)
        for word in markers(c):
            swaps[c][word] = min(
                targets,
                key=lambda t: (
                    -round(cosine(neighbours[word], neighbours[t]), 12),
                    -counts[1 - c][t],
                    t,
                ),
            )
    return swaps


def test_context_rule_matches_a_slow_reference():
    rng = random.Random(0)
    shared = [f"w{i}" for i in range(12)]
    own = [[f"n{i}" for i in range(8)], [f"p{i}" for i in range(8)]]
    lines = [
        [
            " ".join(rng.choice(shared + own[c] * (1 + i % 3)) for i in range(rng.randint(1, 7)))
            for _ in range(150)
        ]
        for c in (0, 1)
    ]
    counts = WordCounts.from_lines(lines)
    for gamma in (1.5, 3.0):
        fitted = fit_word_swap(counts, gamma=gamma, rule="context", chunk=3)  # several chunks
        reference = slow_context_swap(lines, gamma)
        assert fitted.replacements[0] and fitted.replacements[1]
        assert list(fitted.replacements) == reference


def test_bad_input_fails_naming_the_value(counts):
    with pytest.raises(ValueError, match="gamma"):
        fit_word_swap(counts, gamma=1.0)
    with pytest.raises(ValueError, match="'nearest'"):
        fit_word_swap(counts, rule="nearest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="two classes"):
        WordCounts.from_lines([NEGATIVE])
    with pytest.raises(ValueError, match="source"):
        fit_word_swap(counts).transfer(["a"], source=2)


def test_tfidf_judge_reads_negation_and_punctuation():
    pytest.importorskip("sklearn")
    negative = ["it was n't good .", "they were n't nice .", "not good at all"] * 4
    positive = ["it was good !", "they were nice !", "good at all times !"] * 4
    judge = TfidfJudge.fit([negative, positive])
    assert judge.accuracy([negative, positive]) == 1.0
    # unseen lines: only "n't" and "!" (dropped by scikit-learn's default token pattern) tell them apart
    assert judge.predict(["the soup was n't good .", "the soup was good !"]).tolist() == [0, 1]
    assert judge.predict([]).shape == (0,)
    assert np.issubdtype(judge.predict(["good"]).dtype, np.integer)
