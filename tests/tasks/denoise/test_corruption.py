"""Tests for the training noise model: each kind of error occurs at its configured rate and does what it says."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textdiffusion.config import ConfigError
from textdiffusion.tasks.denoise.confusions import (
    PREPOSITION_SWAPS,
    QWERTY_NEIGHBORS,
    REAL_WORD_CONFUSIONS,
    VERB_FORMS,
)
from textdiffusion.tasks.denoise.corruption import (
    CHAR_KINDS,
    GRAMMAR_KINDS,
    SPELLING_KINDS,
    WORD_RE,
    CorruptionConfig,
    Corruptor,
    Edit,
)

ZERO = {field.name: 0.0 for field in dataclasses.fields(CorruptionConfig)}
# Every spelling kind applies to both words (doubles, a homophone, phonetic patterns, >= 4 letters, a next word).
ELIGIBLE = " ".join(["loose accept"] * 10)
SENTENCE = (
    "The quick brown fox jumps over the lazy dog, and then their cat sat on a mat.\nIt's late!"
)
AGGRESSIVE = CorruptionConfig(
    word_error_rate=0.5, extra_edit_rate=0.5, article_rate=0.5, agreement_rate=0.5,
    verb_form_rate=0.5, preposition_rate=0.5, punctuation_rate=0.5, clean_rate=0.0,
)  # fmt: skip


def only(**rates: float) -> Corruptor:
    """A corruptor with every rate and weight zero except `rates`."""
    return Corruptor(CorruptionConfig(**{**ZERO, **rates}))


def assert_rate(hits: int, trials: int, p: float, z: float = 4.5) -> None:
    """`hits / trials` is within `z` binomial standard deviations of `p`."""
    assert trials > 0
    sd = math.sqrt(p * (1 - p) / trials)
    assert abs(hits / trials - p) <= z * sd, f"{hits}/{trials} = {hits / trials:.4f}, expected {p}"


def run(corruptor: Corruptor, text: str, n: int, seed: int = 0) -> list[tuple[str, list[Edit]]]:
    rng = random.Random(seed)
    return [corruptor.corrupt_with_log(text, rng=rng) for _ in range(n)]


def replay(text: str, edits: list[Edit]) -> str:
    """Apply logged edits to the input: must rebuild the output exactly."""
    pieces, pos = [], 0
    for edit in edits:
        assert edit.start >= pos and text[edit.start : edit.end] == edit.source
        pieces += [text[pos : edit.start], edit.target]
        pos = edit.end
    return "".join(pieces) + text[pos:]


def is_valid(kind: str, source: str, target: str) -> bool:
    """Whether a single (un-stacked) edit of `kind` could turn `source` into `target`."""
    s, t = source.lower(), target.lower()
    if kind == "keyboard":
        diff = [i for i in range(len(s)) if len(s) == len(t) and s[i] != t[i]]
        return len(diff) == 1 and t[diff[0]] in QWERTY_NEIGHBORS[s[diff[0]]]
    if kind in ("deletion", "drop_double"):
        ok = any(s[:i] + s[i + 1 :] == t for i in range(len(s)))
        return ok and (kind == "deletion" or any(s[i] == s[i + 1] == t[i] for i in range(len(t))))
    if kind in ("insertion", "double"):
        at = [i for i in range(len(t)) if t[:i] + t[i + 1 :] == s]
        return bool(at) and (kind == "insertion" or any(t[i] == t[i + 1] for i in at))
    if kind == "transposition":
        return (
            len(s) == len(t) and sorted(s) == sorted(t) and sum(a != b for a, b in zip(s, t)) == 2
        )
    if kind == "real_word":
        return t in REAL_WORD_CONFUSIONS[s]
    if kind == "split":
        return t.replace(" ", "", 1) == s and " " in t
    if kind == "join":
        return t == s.replace(" ", "", 1)
    if kind == "case":
        return s == t and source != target
    return kind == "phonetic" and s != t


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ConfigError, match="word_error_rate"):
        CorruptionConfig(word_error_rate=1.5)
    with pytest.raises(ConfigError, match="phonetic"):
        CorruptionConfig(phonetic=-1.0)
    with pytest.raises(ConfigError, match="clean_rate"):
        CorruptionConfig(clean_rate=float("nan"))
    CorruptionConfig(phonetic=5.0)  # weights may exceed 1


@pytest.mark.parametrize("kind", SPELLING_KINDS)
def test_spelling_kind_occurs_at_word_error_rate(kind: str) -> None:
    p = 0.3
    results = run(only(word_error_rate=p, **{kind: 1.0}), ELIGIBLE, 150)
    hits = trials = 0
    for noisy, edits in results:
        assert replay(ELIGIBLE, edits) == noisy
        for edit in edits:
            assert edit.kind == kind and edit.extra == ()
            assert is_valid(kind, edit.source, edit.target), edit
        hits += len(edits)
        # a join consumes the next word (which then gets no decision); the last word cannot join
        words = len(WORD_RE.findall(ELIGIBLE))
        trials += words - len(edits) - 1 if kind == "join" else words
    assert_rate(hits, trials, p)


def test_spelling_kinds_share_errors_by_weight() -> None:
    weights = {k: getattr(CorruptionConfig(), k) for k in SPELLING_KINDS}  # the defaults
    corruptor = only(word_error_rate=0.5, **weights)
    counts = dict.fromkeys(SPELLING_KINDS, 0)
    for _, edits in run(corruptor, ELIGIBLE, 400):
        for edit in edits:
            counts[edit.kind] += 1
    total = sum(counts.values())
    for kind in SPELLING_KINDS:
        assert_rate(counts[kind], total, weights[kind] / sum(weights.values()))


@pytest.mark.parametrize(
    ("kind", "text", "triggers"),
    [
        ("article", "I saw the dog and a cat near an owl.", {"the", "a", "an"}),
        ("agreement", "She is here and they were there so he goes home and we go.", {"is", "were", "goes", "go"}),
        ("verb_form", "She went home and he takes tea.", {"went", "takes"}),
        ("preposition", "A book on the table in a room.", {"on", "in"}),
        ("punctuation", "Well, it's late. Go home; now!", {",", "it's", ".", ";", "!"}),
    ],
)  # fmt: skip
def test_grammar_and_punctuation_kinds_occur_at_their_rate(
    kind: str, text: str, triggers: set
) -> None:
    p = 0.25
    hits = 0
    for noisy, edits in run(only(**{f"{kind}_rate": p}), text, 600):
        assert replay(text, edits) == noisy
        for edit in edits:
            assert edit.kind == kind and edit.source.strip().lower() in triggers, edit
            if kind == "verb_form":
                assert edit.target in VERB_FORMS[edit.source]
            if kind == "preposition":
                assert edit.target in PREPOSITION_SWAPS[edit.source.strip().lower()] + ("",)
        hits += len(edits)
    assert_rate(hits, 600 * len(triggers), p)


def test_article_inserted_after_preposition_before_bare_word() -> None:
    noisy = only(article_rate=1.0)("go to school", rng=random.Random(0))
    assert noisy in ("go to the school", "go to a school")


def test_extra_edits_stack_at_their_rate() -> None:
    p = 0.4
    trials = extras = 0
    for _, edits in run(only(word_error_rate=1.0, deletion=1.0, extra_edit_rate=p), ELIGIBLE, 100):
        for edit in edits:
            trials += 1 + (len(edit.extra) >= 1)  # a second extra is tried only after a first
            extras += len(edit.extra)
    assert_rate(extras, trials, p)


def test_clean_rate_returns_text_unchanged() -> None:
    corruptor = Corruptor(CorruptionConfig(word_error_rate=1.0, clean_rate=0.3))
    results = run(corruptor, ELIGIBLE, 1000)
    assert_rate(sum(noisy == ELIGIBLE for noisy, _ in results), 1000, 0.3)
    assert all(edits == [] for noisy, edits in results if noisy == ELIGIBLE)


@given(st.text(max_size=200))
@settings(max_examples=50, deadline=None)
def test_zero_rates_are_the_identity(text: str) -> None:
    assert Corruptor(CorruptionConfig(**ZERO)).corrupt_with_log(text, rng=random.Random(0)) == (
        text,
        [],
    )


def test_same_seed_same_output_and_no_global_random() -> None:
    corruptor = Corruptor(AGGRESSIVE)
    random.seed(1)
    first = corruptor(SENTENCE * 5, rng=random.Random(7))
    random.seed(2)
    assert corruptor(SENTENCE * 5, rng=random.Random(7)) == first
    assert corruptor(SENTENCE * 5, rng=random.Random(8)) != first


@pytest.mark.parametrize(
    ("word", "allowed"),
    [("Their", {"There", "They're"}), ("THEIR", {"THERE", "THEY'RE"}), ("their", {"there", "they're"}),
     ("Then", {"Than"}), ("It's", {"Its", "It"})],
)  # fmt: skip
def test_case_preserved_on_real_word_swaps(word: str, allowed: set) -> None:
    corruptor = only(word_error_rate=1.0, real_word=1.0)
    rng = random.Random(0)
    seen = {corruptor(word, rng=rng) for _ in range(50)}
    assert seen <= allowed and len(seen) >= 1


def damerau_levenshtein(a: str, b: str) -> int:
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(
                d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def test_corrupt_word_is_mostly_one_edit_sometimes_more() -> None:
    corruptor, rng = Corruptor(), random.Random(0)
    words = "separate necessary beginning government receive because knowledge believe".split()
    distances = [damerau_levenshtein(w, corruptor.corrupt_word(w, rng=rng)) for w in words * 100]
    assert min(distances) >= 1
    share_one = distances.count(1) / len(distances)
    assert 0.5 < share_one < 0.9, (
        share_one
    )  # multi-letter phonetic swaps and stacked edits make the rest


@given(
    st.text(alphabet=st.characters(categories=["Lu", "Ll", "Lo"]), min_size=2, max_size=12),
    st.integers(0, 99),
)
@settings(max_examples=200, deadline=None)
def test_corrupt_word_always_differs(word: str, seed: int) -> None:
    for config in (CorruptionConfig(), CorruptionConfig(**ZERO)):
        assert Corruptor(config).corrupt_word(word, rng=random.Random(seed)) != word
    assert Corruptor().corrupt_word("42", rng=random.Random(seed)) == "42"  # nothing to misspell


LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


@given(
    st.lists(st.one_of(st.text(max_size=8), st.sampled_from(["the", "Their", "in", "it's", " ", ". ", "\n"])), max_size=30),
    st.integers(0, 2**32),
)  # fmt: skip
@settings(max_examples=150, deadline=None)
def test_any_unicode_text_keeps_everything_outside_edits(parts: list[str], seed: int) -> None:
    text = "".join(parts)
    noisy, edits = Corruptor(AGGRESSIVE).corrupt_with_log(text, rng=random.Random(seed))
    assert replay(text, edits) == noisy  # every character outside an edit span survives, in order
    assert [ch for ch in noisy if ch in LINE_BREAKS] == [ch for ch in text if ch in LINE_BREAKS]
    assert len(noisy.splitlines()) == len(text.splitlines())
    if text.strip():
        assert noisy.strip()
    for edit in edits:
        assert all(ch not in LINE_BREAKS for ch in edit.source + edit.target)
        if any(not c.isascii() for c in edit.source) and edit.kind in SPELLING_KINDS:
            assert edit.kind in (
                "deletion",
                "transposition",
                "double",
                "drop_double",
                "split",
                "join",
            )


def test_never_empty_from_non_empty_input() -> None:
    corruptor = Corruptor(
        CorruptionConfig(**{**ZERO, "article_rate": 1.0, "punctuation_rate": 1.0})
    )
    for text in ["the", "a ", " an ", ".", "the."]:
        for seed in range(20):
            assert corruptor(text, rng=random.Random(seed)).strip()


def test_char_kinds_are_spelling_kinds() -> None:
    assert set(CHAR_KINDS) < set(SPELLING_KINDS) and not set(GRAMMAR_KINDS) & set(SPELLING_KINDS)


if __name__ == "__main__":
    # Throughput check (not a test): python tests/data/test_corruption.py [path/to/big.txt.gz]
    import gzip
    import sys
    import time

    path = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/spelling/norvig/big.txt.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        paragraphs = [p for p in f.read().split("\n\n") if p.strip()][:20000]
    corruptor, rng = Corruptor(), random.Random(0)
    n_words = sum(len(WORD_RE.findall(p)) for p in paragraphs)
    began = time.perf_counter()
    for paragraph in paragraphs:
        corruptor(paragraph, rng=rng)
    seconds = time.perf_counter() - began
    print(f"Corruptor: {n_words:,} words in {seconds:.2f} s = {n_words / seconds:,.0f} words/s")
    words = [w for p in paragraphs[:300] for w in WORD_RE.findall(p)]
    began = time.perf_counter()
    for word in words:
        corruptor.corrupt_word(word, rng=rng)
    print(f"corrupt_word: {len(words) / (time.perf_counter() - began):,.0f} words/s")
