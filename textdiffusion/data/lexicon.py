"""A word lexicon with frequencies: which words are known, and the known words near a misspelling.

Candidates come from symspellpy's symmetric-delete search (Garbe 2012) over a `term count` frequency list, by
default the 82,765-word English dictionary that symspellpy bundles. Lexicon-guided denoising
(`DenoisePipeline(..., lexicon=...)`) lets the diffusion model choose among these candidates; the symspell baseline
of `textdiffusion eval-denoise` takes the first one.
"""

from __future__ import annotations

import re
from pathlib import Path

from textdiffusion.data.corpus import DataError

WORD = re.compile(r"(?<![\w'’])(?<!\d-)[A-Za-z]+(?:['’][A-Za-z]+)*(?![\w'’]|-\d)")
"""A word that can be checked: ASCII letters, with inner apostrophes, not glued to digits or other letters ("3rd",
"UTF-8", "Zoë" are not words)."""

SENTENCE_START = set(".!?:;\"'“‘([-–—")
"""What may come before the first word of a sentence (or a quotation, or a list item)."""


class Lexicon:
    """`known(word)`, `count(word)` and `candidates(word, limit)` over a frequency list (lower-case terms)."""

    def __init__(self, path: str | Path | None = None, *, max_edit_distance: int = 2) -> None:
        """`path`: a `term count` file (one pair per line); None: symspellpy's bundled English dictionary."""
        try:
            from importlib.resources import files

            from symspellpy import SymSpell, Verbosity
        except ImportError as exc:  # a core dependency; only a broken install lacks it
            raise ImportError("the lexicon needs symspellpy: pip install symspellpy") from exc
        source = Path(path) if path else files("symspellpy") / "frequency_dictionary_en_82_765.txt"
        self.max_edit_distance = max_edit_distance
        self._top, self._all = Verbosity.TOP, Verbosity.ALL
        self._symspell = SymSpell(max_dictionary_edit_distance=max_edit_distance, prefix_length=7)
        try:
            with source.open(encoding="utf-8") as handle:
                self._symspell.load_dictionary(handle, term_index=0, count_index=1)
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read the lexicon {source}: {exc}") from None
        if not self._symspell.words:
            raise DataError(f"the lexicon {source} has no 'term count' lines")

    def __len__(self) -> int:
        return len(self._symspell.words)

    def count(self, word: str) -> int:
        """Frequency of `word` (case-insensitive); 0 when unknown."""
        return self._symspell.words.get(word.lower(), 0)

    def known(self, word: str) -> bool:
        return self.count(word) > 0

    def checks(self, word: str) -> bool:
        """Whether a correction should look at `word`: an unknown word of letters, not an acronym ("TV") and
        without apostrophes ("didn't", "Jane's": their parts are not all dictionary words)."""
        return (
            WORD.fullmatch(word) is not None
            and not (len(word) > 1 and word.isupper())
            and "'" not in word
            and "’" not in word
            and not self.known(word)
        )

    def unknown_words(self, text: str) -> list[re.Match]:
        """The words of `text` that a correction should look at (`checks`), but a capitalised word inside a sentence:
        that is a name ("Diana Krall"). The first word of the text and of each sentence is looked at."""
        found = []
        for match in WORD.finditer(text):
            i = match.start() - 1
            while i >= 0 and text[i].isspace():
                i -= 1
            inside = i >= 0 and text[i] not in SENTENCE_START
            if not (inside and match.group()[0].isupper()) and self.checks(match.group()):
                found.append(match)
        return found

    def candidates(self, word: str, limit: int) -> list[tuple[str, int]]:
        """Up to `limit` known words within the edit distance of `word`, with their counts: nearest first, then most
        frequent (symspell's order). A known word comes first itself, at distance 0."""
        verbosity = self._top if limit == 1 else self._all  # the same first word, found faster
        found = self._symspell.lookup(word.lower(), verbosity, self.max_edit_distance)
        return [(s.term, s.count) for s in found[:limit]]


def recase(word: str, found: str) -> str:
    """The lower-case correction `found` of `word`, cased like it (its own casing if unchanged: "iPhone")."""
    if found == word.lower():
        return word
    if word.isupper() and len(word) > 1:
        return found.upper()
    return found[:1].upper() + found[1:] if word[:1].isupper() else found
