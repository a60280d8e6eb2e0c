from __future__ import annotations

import math
import random

import pytest

from textdiffusion.evaluation.judge import (
    UNKNOWN,
    CharNgramJudge,
    JudgeError,
    distinct_n,
    judge_texts,
    real_word_rate,
    words,
)


@pytest.fixture(scope="module")
def judge(corpus_text):
    return CharNgramJudge(corpus_text, order=6)


@pytest.mark.parametrize("context", ["", "t", "the c", "xq zz", "sat on the m", "\n"])
def test_probabilities_sum_to_one_over_the_vocabulary(judge, context):
    dist = judge.distribution(context)
    assert UNKNOWN in dist and all(p > 0 for p in dist.values())
    assert sum(dist.values()) == pytest.approx(1.0, abs=1e-9)


def test_unknown_characters_share_the_unknown_mass(judge):
    assert judge.prob("the ", "\u00e9") == judge.prob("the ", UNKNOWN) > 0


def test_in_domain_text_scores_lower_than_shuffled_text(judge):
    text = "The dog ran in the park while a bird sang in the tall green tree."
    shuffled = "".join(random.Random(0).sample(text, len(text)))
    assert judge.bits_per_char([text]) < 0.5 * judge.bits_per_char([shuffled])
    # bits are -log2 of the chain of conditionals
    manual = -sum(math.log2(judge.prob(text[max(0, i - 5) : i], c)) for i, c in enumerate(text))
    assert judge.bits(text) == pytest.approx(manual)


def test_interpolated_kneser_ney_by_hand():
    # order 2 on "abab": bigrams ab x2, ba x1 (D2 = 1 / (1 + 2) from one singleton and one doubleton);
    # continuation counts of unigrams: a 1 (after b), b 1 (after a); D1 = 1 (two singletons); V = 3 (a, b, unknown)
    judge = CharNgramJudge("abab", order=2)
    p1_b = (max(1 - 1, 0) + 1 * 2 * (1 / 3)) / 2  # 1/3: the unigram level is all base
    d2 = 1 / 3
    expected = (max(2 - d2, 0) + d2 * 1 * p1_b) / 2  # context "a": seen twice, one type
    assert judge.prob("a", "b") == pytest.approx(expected)
    assert judge.prob("zz", "b") == pytest.approx(p1_b)  # an unseen context backs off completely


def test_word_figures():
    assert words("Where's the KING? o'er-thrown!") == ["where's", "the", "king", "o'er", "thrown"]
    assert distinct_n(["a b a b"], 1) == 0.5
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["a b", "c d"], 2) == 1.0  # n-grams never cross texts
    assert real_word_rate(["the cat zzq"], {"the", "cat"}) == pytest.approx(2 / 3)


def test_judge_texts_reports_every_figure(judge, corpus_text):
    lines = corpus_text.splitlines()
    real = judge_texts(judge, lines[:2])
    babble = judge_texts(judge, ["qxv zzkw pplo " * 10])
    assert real.bits_per_char < babble.bits_per_char
    assert real.real_word_rate == 1.0 and babble.real_word_rate == 0.0
    assert real.n_texts == 2 and real.n_chars == len(lines[0]) + len(lines[1])


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(JudgeError, match="more than 6 characters"):
        CharNgramJudge("abc")
    with pytest.raises(JudgeError, match="cannot read the judge's training text"):
        CharNgramJudge.from_file(tmp_path / "missing.txt")
    with pytest.raises(JudgeError, match="no characters"):
        CharNgramJudge("abcdefgh" * 3).bits_per_char([""])
