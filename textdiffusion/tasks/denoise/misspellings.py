"""Word-level misspellings, one kind per function: keyboard slips, deletions, insertions, transpositions, doubled
and dropped letters, phonetic spellings, real-word confusions, split words and casing slips (the letter tables are
in confusions.py). `applies(kind, word, ...)` says whether a kind can apply; `EDITS[kind](word, rng)` applies it."""

from __future__ import annotations

import random

from textdiffusion.tasks.denoise.confusions import (
    QWERTY_NEIGHBORS,
    REAL_WORD_CONFUSIONS,
    VOWELS,
    phonetic_options,
)


def _position(rng: random.Random, positions: list[int]) -> int:
    """A random position; the first letter is edited 5x less often (people rarely get it wrong)."""
    i = rng.choice(positions)
    if i == 0 and len(positions) > 1 and rng.random() < 0.8:
        i = rng.choice(positions[1:])
    return i


def applies(kind: str, w: str, is_ascii: bool, can_join: bool) -> bool:
    n = len(w)
    if kind == "join":
        return can_join
    if kind == "case":
        return is_ascii
    if n < 2:
        return False
    if kind == "deletion":
        return True
    if kind == "transposition":
        return any(w[i] != w[i + 1] for i in range(n - 1))
    if kind == "double":
        return bool(_double_positions(w))
    if kind == "drop_double":
        return any(w[i] == w[i + 1] and w[i].isalpha() for i in range(n - 1))
    if kind == "split":
        return n >= 4
    if not is_ascii:
        return False  # the letter tables below are for English
    if kind == "phonetic":
        return bool(phonetic_options(w)) or any(c in VOWELS for c in w[1:])
    if kind == "real_word":
        return w in REAL_WORD_CONFUSIONS
    return kind in ("keyboard", "insertion")


def _keyboard(w: str, rng: random.Random) -> str:
    i = _position(rng, [i for i, c in enumerate(w) if c in QWERTY_NEIGHBORS])
    return w[:i] + rng.choice(QWERTY_NEIGHBORS[w[i]]) + w[i + 1 :]


def _deletion(w: str, rng: random.Random) -> str:
    i = _position(rng, list(range(len(w))))
    return w[:i] + w[i + 1 :]


def _insertion(w: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(w) + 1)  # never before the first letter
    left = w[i - 1]
    if left in QWERTY_NEIGHBORS and rng.random() < 0.6:
        c = rng.choice(QWERTY_NEIGHBORS[left])  # a fat-finger slip
    else:
        right = w[i] if i < len(w) else ""
        c = rng.choice([v for v in VOWELS if v != left and v != right])  # a spelled-out vowel
    return w[:i] + c + w[i:]


def _transposition(w: str, rng: random.Random) -> str:
    i = _position(rng, [i for i in range(len(w) - 1) if w[i] != w[i + 1]])
    return w[:i] + w[i + 1] + w[i] + w[i + 2 :]


def _double_positions(w: str) -> list[int]:
    singles = [
        i
        for i, c in enumerate(w)
        if c.isalpha() and (i == 0 or w[i - 1] != c) and (i + 1 == len(w) or w[i + 1] != c)
    ]
    consonants = [i for i in singles if w[i] not in VOWELS]  # doubled consonants are the usual slip
    return consonants or singles


def _double(w: str, rng: random.Random) -> str:
    i = _position(rng, _double_positions(w))
    return w[:i] + w[i] + w[i:]


def _drop_double(w: str, rng: random.Random) -> str:
    i = rng.choice([i for i in range(len(w) - 1) if w[i] == w[i + 1] and w[i].isalpha()])
    return w[:i] + w[i + 1 :]


def _phonetic(w: str, rng: random.Random) -> str:
    options = phonetic_options(w)
    vowels = [i for i in range(1, len(w)) if w[i] in VOWELS]
    if vowels and (not options or rng.random() < 0.35):
        # an unstressed vowel spelled as it sounds (separate -> seperate)
        i = rng.choice(vowels)
        return w[:i] + rng.choice([v for v in VOWELS if v != w[i]]) + w[i + 1 :]
    start, size, replacements = rng.choice(options)
    return w[:start] + rng.choice(replacements) + w[start + size :]


def _real_word(w: str, rng: random.Random) -> str:
    return rng.choice(REAL_WORD_CONFUSIONS[w])


def _split(w: str, rng: random.Random) -> str:
    i = rng.randrange(2, len(w) - 1)  # both parts keep at least two letters
    return w[:i] + " " + w[i:]


def case_slip(word: str, rng: random.Random) -> str:
    if word.islower():
        return word[0].upper() + word[1:]  # a stray capital
    if word.isupper() and len(word) > 1:
        return word.lower() if rng.random() < 0.5 else word[0] + word[1:].lower()
    if len(word) > 2 and word[1:].islower() and rng.random() < 0.3:
        return word[:2].upper() + word[2:]  # shift held too long: THe
    return word[0].lower() + word[1:]


EDITS = {
    "keyboard": _keyboard, "deletion": _deletion, "insertion": _insertion, "transposition": _transposition,
    "double": _double, "drop_double": _drop_double, "phonetic": _phonetic, "real_word": _real_word, "split": _split,
}  # fmt: skip
