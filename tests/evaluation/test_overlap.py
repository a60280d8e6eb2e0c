"""Sentence chrF (no extra needed) and the consensus (minimum Bayes risk) choice the captioner uses."""

from __future__ import annotations

import pytest

from textdiffusion.evaluation.overlap import consensus, sentence_chrf

PAIRS = [
    ("a man riding a horse", "a man rides a horse on the beach"),
    ("a cat", "a dog sitting on a couch"),
    ("two red circles on the left", "two red circles on the left"),
    ("x", "a pizza on a table"),
    ("A Man.", "a man"),
]


def test_sentence_chrf_is_sacrebleus():
    sacrebleu = pytest.importorskip("sacrebleu")
    for hypothesis, reference in PAIRS:
        assert sentence_chrf(hypothesis, reference) == pytest.approx(
            sacrebleu.sentence_chrf(hypothesis, [reference]).score, abs=1e-6
        ), (hypothesis, reference)


def test_sentence_chrf_bounds():
    assert sentence_chrf("a dog on a couch", "a dog on a couch") == 100.0
    assert sentence_chrf("zzz", "a dog") == 0.0
    assert sentence_chrf("", "") == 100.0 and sentence_chrf("", "a dog") == 0.0
    assert sentence_chrf("a dog on a sofa", "a dog on a couch") > sentence_chrf(
        "a cat", "a dog on a couch"
    )


def test_consensus_picks_the_candidate_closest_to_the_others():
    candidates = ["pizza on a plate", "a dog on a couch", "a dog on the couch", "a cat on a couch"]
    assert consensus(candidates) in (1, 2)
    assert candidates[consensus(candidates)] != "pizza on a plate"
    assert consensus(["only"]) == 0 and consensus(["a", "b"]) == 0
    assert consensus(["same", "same", "same"]) == 0  # the first of equals
