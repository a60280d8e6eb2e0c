"""Training noise for text denoising: turn clean text into realistic noisy text, on the fly.

Each word may receive at most one error. Grammar slips (articles, agreement, verb forms, prepositions) fire at a
per-opportunity rate on the words that trigger them; other words are misspelled with probability
`word_error_rate`, the kind of misspelling drawn by relative weight among the kinds that apply to that word;
punctuation marks (and apostrophes of contractions) slip at `punctuation_rate`. The recipe follows synthetic-noise
pipelines for spelling and grammar correction: character edits plus confusion-set word swaps (Grundkiewicz,
Junczys-Dowmunt & Heafield 2019, "Neural GEC systems with unsupervised pre-training on synthetic data", §3;
NeuSpell, Jayanthi, Pruthi & Neubig 2020, §3), with hand-written phonetic and learner-error tables
(`textdiffusion.tasks.denoise.confusions`) for the errors of poor spellers and language learners.

Everything random goes through an explicit `random.Random`; the same seed gives the same output.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re

from textdiffusion.config import ConfigError
from textdiffusion.tasks.denoise.confusions import (
    AGREEMENT_SWAPS,
    ARTICLE_INSERTS,
    ARTICLE_SWAPS,
    DETERMINERS,
    PREPOSITION_SWAPS,
    PUNCTUATION_SLIPS,
    QWERTY_NEIGHBORS,
    SUBJECTS_3SG,
    SUBJECTS_PLURAL,
    VERB_BASE_TO_THIRD,
    VERB_FORMS,
    VERB_THIRD_TO_BASE,
)
from textdiffusion.tasks.denoise.misspellings import EDITS, applies, case_slip

CHAR_KINDS = ("keyboard", "deletion", "insertion", "transposition", "double", "drop_double")
CHAR_KINDS += ("phonetic",)
"""Letter-level misspellings (these may stack on one word, see `extra_edit_rate`)."""
SPELLING_KINDS = CHAR_KINDS + ("real_word", "split", "join", "case")
"""Kinds drawn by weight for a word chosen at `word_error_rate`."""
GRAMMAR_KINDS = ("article", "agreement", "verb_form", "preposition")
"""Kinds that fire at `<kind>_rate` on the words that trigger them."""
KINDS = SPELLING_KINDS + GRAMMAR_KINDS + ("punctuation",)

WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
"""A word: a run of letters in any script, with inner apostrophes (don't, O'Brien)."""
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
"""What `str.splitlines` splits on; no edit touches these."""


@dataclasses.dataclass(frozen=True)
class CorruptionConfig:
    """Rates and relative weights of every kind of error made by `Corruptor`."""

    word_error_rate: float = 0.15
    """Probability that a word (not hit by a grammar slip) gets a spelling error; its kind is drawn by the weights
    below among the kinds that apply to the word."""
    keyboard: float = 1.0
    """Weight: a letter replaced by a QWERTY neighbour (form -> fprm)."""
    deletion: float = 1.0
    """Weight: a letter left out (which -> wich)."""
    insertion: float = 1.0
    """Weight: a stray letter, a neighbouring key or a vowel (hundred -> hundered)."""
    transposition: float = 0.8
    """Weight: two adjacent letters swapped (their -> thier)."""
    double: float = 0.5
    """Weight: a single letter doubled (until -> untill)."""
    drop_double: float = 0.8
    """Weight: a double letter written once (beginning -> begining)."""
    phonetic: float = 2.0
    """Weight: a sound-alike spelling (phone -> fone, nation -> nashun, vowel swaps, silent letters dropped)."""
    real_word: float = 1.0
    """Weight: a homophone or near-homophone (their -> there, then -> than); case pattern kept."""
    split: float = 0.2
    """Weight: a space inside a word (together -> to gether)."""
    join: float = 0.3
    """Weight: the space to the next word left out (a lot -> alot)."""
    case: float = 0.3
    """Weight: a casing slip (London -> london, The -> THe, the -> The)."""
    extra_edit_rate: float = 0.25
    """Probability of one more letter-level edit on a word misspelled letter-wise (at most two more):
    poor spellers make several errors in one word."""
    article_rate: float = 0.05
    """Probability that an article is dropped or swapped (a/an/the), or that one is inserted after a
    preposition followed by a bare word ("to school" -> "to the school")."""
    agreement_rate: float = 0.05
    """Probability of an agreement slip: is/are, was/were, has/have, this/these, and "he goes" <-> "he go"."""
    verb_form_rate: float = 0.05
    """Probability that a known verb takes another form of itself (went -> gone, develop -> developed, goed)."""
    preposition_rate: float = 0.05
    """Probability that a preposition is swapped for a confusable one (in/on/at/to/for/of...) or dropped."""
    punctuation_rate: float = 0.05
    """Probability that a punctuation mark is dropped or replaced, or a contraction loses its apostrophe."""
    clean_rate: float = 0.1
    """Probability that a text is returned unchanged (the model must learn to copy clean text)."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
                raise ConfigError(f"CorruptionConfig.{field.name} must be a number, got {value!r}")
            if field.name in SPELLING_KINDS:
                if not (0.0 <= value < math.inf):
                    raise ConfigError(
                        f"CorruptionConfig.{field.name} (a weight) must be >= 0, got {value}"
                    )
            elif not 0.0 <= value <= 1.0:
                raise ConfigError(f"CorruptionConfig.{field.name} must be in [0, 1], got {value}")


@dataclasses.dataclass(frozen=True)
class Edit:
    """One corruption: the input's `text[start:end]` (== `source`) became `target`."""

    kind: str
    start: int
    end: int
    source: str
    target: str
    extra: tuple[str, ...] = ()
    """Further letter-level kinds stacked on the same word (see `CorruptionConfig.extra_edit_rate`)."""


class Corruptor:
    """Turn clean text into realistic noisy text (spelling, real-word, grammar, casing and punctuation errors).

    Args:
        config: rates and weights of each kind of error.
    """

    def __init__(self, config: CorruptionConfig = CorruptionConfig()) -> None:
        self.config = config
        self._spelling = [
            (k, float(getattr(config, k))) for k in SPELLING_KINDS if getattr(config, k) > 0
        ]
        self._char = [(k, w) for k, w in self._spelling if k in CHAR_KINDS]
        self._word_kinds = [(k, w) for k, w in self._spelling if k not in ("case", "join")]
        rates = [(k, getattr(config, f"{k}_rate")) for k in GRAMMAR_KINDS]
        self._grammar = [(k, rate) for k, rate in rates if rate > 0]

    def __call__(self, text: str, *, rng: random.Random) -> str:
        """Corrupt one text; see `corrupt_with_log`."""
        return self.corrupt_with_log(text, rng=rng)[0]

    def corrupt_with_log(self, text: str, *, rng: random.Random) -> tuple[str, list[Edit]]:
        """Corrupt one text and say which kinds were applied where.

        Args:
            text: any Unicode text; line breaks and every character outside the edited words are kept.
            rng: the source of randomness (the same seed gives the same output).

        Returns:
            The noisy text and its edits, in input order, with spans into the input.
        """
        cfg = self.config
        if not text or rng.random() < cfg.clean_rate:
            return text, []
        spans = [m.span() for m in WORD_RE.finditer(text)]
        out: list[str] = []
        edits: list[Edit] = []
        pos, prev, n, i = 0, "", len(spans), 0
        while i < n:
            start, end = spans[i]
            if start > pos:
                if text[pos:start] != " ":
                    prev = ""  # agreement looks at the previous word only across a plain space
                    self._punctuate(text, pos, start, out, edits, rng)
                else:
                    out.append(" ")
            word = text[start:end]
            lw = word.lower() if word.isascii() else word
            adjoining = i + 1 < n and spans[i + 1][0] == end + 1 and text[end] == " "
            kind, target, extra = "", word, ()
            if self._grammar:
                nxt = text[end + 1 : spans[i + 1][1]].lower() if adjoining else None
                got = self._grammar_slip(lw, prev, nxt, rng, can_drop=adjoining)
                if got is not None:
                    kind, target = got[0], _recase(word, got[1])
            if not kind and rng.random() < cfg.word_error_rate:
                got = self._misspell(word, self._spelling, rng, can_join=adjoining)
                if got is not None:
                    kind, target, extra = got
                    if kind == "join":
                        end = spans[i + 1][1]
                        target = text[start:end].replace(" ", "", 1)
                        i += 1
            if not kind and cfg.punctuation_rate and ("'" in word or "’" in word):
                if rng.random() < cfg.punctuation_rate:
                    kind, target = "punctuation", word.replace("'", "", 1).replace("’", "", 1)
            if kind:
                if not target and text[end : end + 1] == " ":
                    end += 1  # a dropped word takes its following space with it
                edits.append(Edit(kind, start, end, text[start:end], target, extra))
            out.append(target)
            pos, prev = end, lw
            i += 1
        if pos < len(text):
            self._punctuate(text, pos, len(text), out, edits, rng)
        noisy = "".join(out)
        if text.strip() and not noisy.strip():
            return text, []  # never turn a non-empty text into nothing
        return noisy, edits

    def corrupt_word(self, word: str, *, rng: random.Random) -> str:
        """Misspell one isolated word the way people do: mostly one edit, sometimes two or three.

        Args:
            word: a word; one with at least one letter always comes back different.
            rng: the source of randomness.

        Returns:
            The misspelling (case pattern kept); `word` itself when it has no letter.
        """
        if not any(c.isalpha() for c in word):
            return word
        for _ in range(4):
            got = self._misspell(word, self._word_kinds, rng, can_join=False)
            if got is not None and got[1] != word:
                return got[1]
        if len(word) >= 2:
            return _recase(word, EDITS["deletion"](word.lower() if word.isascii() else word, rng))
        if word.lower() in QWERTY_NEIGHBORS:
            return _recase(word, EDITS["keyboard"](word.lower(), rng))
        return word + word

    def _grammar_slip(
        self, lw: str, prev: str, nxt: str | None, rng: random.Random, *, can_drop: bool
    ) -> tuple[str, str] | None:
        """(kind, replacement in lowercase; "" drops the word) or None; `nxt` is the next word after one space.

        Only a word followed by another on its line may be dropped, so no line is ever emptied.
        """
        for kind, rate in self._grammar:
            options: tuple[str, ...] | None = None
            if kind == "article":
                if lw in ARTICLE_SWAPS:
                    options = ARTICLE_SWAPS[lw]
                elif lw in PREPOSITION_SWAPS and nxt is not None and nxt not in DETERMINERS:
                    options = tuple(f"{lw} {a}" for a in ARTICLE_INSERTS)
            elif kind == "agreement":
                options = AGREEMENT_SWAPS.get(lw)
                if options is None and prev in SUBJECTS_3SG and lw in VERB_THIRD_TO_BASE:
                    options = (VERB_THIRD_TO_BASE[lw],)
                elif options is None and prev in SUBJECTS_PLURAL and lw in VERB_BASE_TO_THIRD:
                    options = (VERB_BASE_TO_THIRD[lw],)
            elif kind == "verb_form":
                options = VERB_FORMS.get(lw)
            elif lw in PREPOSITION_SWAPS:
                options = PREPOSITION_SWAPS[lw] + ("",)  # "" drops it ("listen music")
            if options and not can_drop:
                options = tuple(o for o in options if o)
            if options and rng.random() < rate:
                return kind, rng.choice(options)
        return None

    def _misspell(
        self, word: str, kinds: list[tuple[str, float]], rng: random.Random, *, can_join: bool
    ) -> tuple[str, str, tuple[str, ...]] | None:
        """(kind, misspelt word, extra kinds) drawn among the `kinds` that apply, or None if none applies."""
        is_ascii = word.isascii()
        w = word.lower() if is_ascii else word
        kind = _weighted([(k, wt) for k, wt in kinds if applies(k, w, is_ascii, can_join)], rng)
        if kind is None or kind == "join":
            return None if kind is None else ("join", "", ())
        if kind == "case":
            return kind, case_slip(word, rng), ()
        new = EDITS[kind](w, rng)
        extra: list[str] = []
        for _ in range(2 if kind in CHAR_KINDS else 0):
            if rng.random() >= self.config.extra_edit_rate:
                break
            more = _weighted(
                [(k, wt) for k, wt in self._char if applies(k, new, is_ascii, False)], rng
            )
            if more is None:
                break
            stacked = EDITS[more](new, rng)
            if stacked != w:  # a second edit must not undo the first
                new = stacked
                extra.append(more)
        return kind, (_recase(word, new) if is_ascii else new), tuple(extra)

    def _punctuate(
        self, text: str, start: int, end: int, out: list[str], edits: list[Edit], rng: random.Random
    ) -> None:
        """Copy `text[start:end]` (no words in it) to `out`, with punctuation slips."""
        rate, last = self.config.punctuation_rate, start
        if rate:
            for j in range(start, end):
                slips = PUNCTUATION_SLIPS.get(text[j])
                if slips is not None and rng.random() < rate:
                    target = rng.choice(slips)
                    if not target.strip() and not _line_keeps_content(text, j):
                        continue  # the mark is all its line has: removing it would erase the line
                    out.append(text[last:j])
                    out.append(target)
                    edits.append(Edit("punctuation", j, j + 1, text[j], target))
                    last = j + 1
        out.append(text[last:end])


def _line_keeps_content(text: str, j: int) -> bool:
    """Whether the line around position `j` has a character that no slip ever removes."""
    for k in (range(j - 1, -1, -1), range(j + 1, len(text))):
        for i in k:
            if text[i] in LINE_BREAKS:
                break
            if not text[i].isspace() and text[i] not in PUNCTUATION_SLIPS:
                return True
    return False


def _weighted(pairs: list[tuple[str, float]], rng: random.Random) -> str | None:
    if not pairs:
        return None
    r = rng.random() * sum(w for _, w in pairs)
    for kind, weight in pairs:
        r -= weight
        if r < 0:
            return kind
    return pairs[-1][0]


def _recase(template: str, new: str) -> str:
    """Give `new` the case pattern of `template` (lower, UPPER or Title): Their -> There."""
    if not new or template.islower() or not template.isascii():
        return new
    if template.isupper() and len(template) > 1:
        return new.upper()
    if template[0].isupper():
        return new[0].upper() + new[1:]
    return new
