"""A word lexicon with frequencies: which words are known, and the known words near a misspelling.

Candidates come from symspellpy's symmetric-delete search (Garbe 2012) over a `term count` frequency list, by
default the 82,765-word English dictionary that symspellpy bundles, and from its word pairs (`first second count`
lines, by default symspellpy's 243,342 English bigrams): a glued pair ("alot" -> "a lot") is a candidate too. A known
word written without its apostrophe ("dont") is corrected to it ("don't") without looking further. Lexicon-guided
denoising (`DenoisePipeline(..., lexicon=...)`) lets the diffusion model choose among the candidates; the symspell
baseline of `textdiffusion eval-denoise` takes symspell's first neighbour.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from textdiffusion.data.corpus import DataError
from textdiffusion.tasks.denoise import lexicon_index

WORD = re.compile(r"(?<![\w'’])(?<!\d-)[A-Za-z]+(?:['’][A-Za-z]+)*(?![\w'’]|-\d)")
"""A word that can be checked: ASCII letters, with inner apostrophes, not glued to digits or other letters ("3rd",
"UTF-8", "Zoë" are not words)."""

SENTENCE_START = set(".!?:;\"'“‘([-–—")
"""What may come before the first word of a sentence (or a quotation, or a list item)."""

PREFIX_LENGTH = 7
"""symspell indexes the deletions of each word's first 7 letters (its default)."""

JOIN_MARGIN = 2
"""A known word pair is joined into one known word ("any thing" -> "anything") when the word is at least this many
times as frequent as the pair."""

PRONOUN_I = re.compile(r"(?<![\w'’.-])i(?=$|[\s,;:!?)\"”]|\.(?!\w)|['’](?:m|d|ll|ve)\b)")
"""The pronoun "i" on its own or contracted ("i'm"; not "i.e.", "i-th"): English writes it "I"."""


class Lexicon:
    """`known(word)`, `count(word)` and `candidates(word, limit)` over a frequency list (lower-case terms)."""

    def __init__(
        self, path: str | Path | None = None, *, max_edit_distance: int = 3, cache: bool = True
    ) -> None:
        """`path`: a file of `term count` lines (words) and `first second count` lines (word pairs); None:
        symspellpy's bundled English dictionary and bigrams. `cache`: keep the built index on disk for the next
        start (`textdiffusion.tasks.denoise.lexicon_index`)."""
        try:
            from importlib.resources import files

            from symspellpy import SymSpell, Verbosity
        except ImportError as exc:  # a core dependency; only a broken install lacks it
            raise ImportError("the lexicon needs symspellpy: pip install symspellpy") from exc
        bundled = files("symspellpy")
        sources = (
            [Path(path)]
            if path
            else [
                bundled / "frequency_dictionary_en_82_765.txt",
                bundled / "frequency_bigramdictionary_en_243_342.txt",
            ]
        )
        self.max_edit_distance = max_edit_distance
        self.english = path is None
        self._top, self._all = Verbosity.TOP, Verbosity.ALL
        self._symspell = SymSpell(
            max_dictionary_edit_distance=max_edit_distance, prefix_length=PREFIX_LENGTH
        )
        index = None
        # the cache fills symspellpy's own tables (6.x names; another version builds without it)
        if cache and all(hasattr(self._symspell, a) for a in ("_words", "_deletes", "_max_length")):
            try:
                index = lexicon_index.index_path(
                    sources, max_edit_distance=max_edit_distance, prefix_length=PREFIX_LENGTH
                )
            except OSError as exc:
                raise DataError(
                    f"cannot read the lexicon {', '.join(map(str, sources))}: {exc}"
                ) from None
        cached = lexicon_index.load(index) if index else None
        if cached is not None:
            words, deletes, self._pairs = cached
            # symspellpy has no public way to take a built index but a pickle
            self._symspell._words, self._symspell._deletes = words, deletes
            self._symspell._max_length = max(map(len, words))
        else:
            self._build(sources)
            if index:
                lexicon_index.save(
                    index, self._symspell.words, self._symspell._deletes, self._pairs
                )
        self._apostrophes = {  # "dont": "don't"
            term.replace("'", ""): term for term in self._symspell.words if "'" in term
        }

    def _build(self, sources: list) -> None:
        """Read the words into symspell (which indexes their deletions) and the pairs into `_pairs`."""
        pairs: dict[str, int] = {}
        for source in sources:
            try:
                with source.open(encoding="utf-8") as handle:
                    for line in handle:
                        *terms, count = line.split() or ["", ""]
                        if count.isdigit() and len(terms) == 1:
                            self._symspell.create_dictionary_entry(terms[0].lower(), int(count))
                        elif count.isdigit() and len(terms) == 2:
                            pairs[" ".join(terms).lower()] = int(count)
            except (OSError, UnicodeDecodeError) as exc:
                raise DataError(f"cannot read the lexicon {source}: {exc}") from None
        if not self._symspell.words:
            raise DataError(f"the lexicon {', '.join(map(str, sources))} has no 'term count' lines")
        # pairs are counted in a larger corpus: scale them to the words' total, and no pair beats its rarer word
        scale = sum(self._symspell.words.values()) / max(1, sum(pairs.values()))
        self._pairs = {
            pair: min(round(count * scale), *(self.count(w) for w in pair.split()))
            for pair, count in pairs.items()
            if all(self.known(w) for w in pair.split())
        }

    def __len__(self) -> int:
        return len(self._symspell.words)

    def count(self, word: str) -> int:
        """Frequency of `word` (case-insensitive); 0 when unknown."""
        return self._symspell.words.get(word.lower(), 0)

    def known(self, word: str) -> bool:
        return self.count(word) > 0

    def checks(self, word: str) -> bool:
        """Whether a correction should look at `word`: an unknown word of letters, longer than one letter ("e" of
        "i.e.", "R." of a name), not an acronym ("TV") and without apostrophes ("didn't", "Jane's": their parts are
        not all dictionary words)."""
        return (
            WORD.fullmatch(word) is not None
            and len(word) > 1
            and not word.isupper()
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

    def glued(self, text: str) -> list[tuple[int, int, str]]:
        """The word pairs of `text` that are one word split in two: `(start, end, word)` for each pair of known words
        one space apart, the second lower-case, that the lexicon counts as a pair and counts `JOIN_MARGIN` times
        more often written as one word ("any thing" -> "anything"; "a long" stays, "along" is no more frequent)."""
        found, words = [], list(WORD.finditer(text))
        for first, second in zip(words, words[1:]):
            pair = f"{first.group()} {second.group()}".lower()
            if (
                (found and found[-1][1] > first.start())  # that word is joined already
                or text[first.end() : second.start()] != " "
                or not second.group().islower()
                or not all(len(w) > 1 or w == "a" for w in pair.split())
                or pair not in self._pairs
            ):
                continue
            word = pair.replace(" ", "")
            if self.count(word) >= JOIN_MARGIN * self._pairs[pair]:
                found.append((first.start(), second.end(), recase(first.group(), word)))
        return found

    def correct(self, texts: list[str], choose: Callable[[list[str]], list[str]]) -> list[str]:
        """`texts` with their `unknown_words` replaced by what `choose` makes of them (it gets each distinct word
        once, and returns one word or words for each), their `glued` words joined and their `lowercase_pronouns`
        written "I"; everything else byte-identical."""
        found = [self.unknown_words(text) for text in texts]
        unique = list(dict.fromkeys(m.group() for matches in found for m in matches))
        table = dict(zip(unique, choose(unique))) if unique else {}
        outputs = []
        for text, matches in zip(texts, found):
            fixes = [(m.start(), m.end(), table[m.group()]) for m in matches]
            fixes += [(m.start(), m.end(), "I") for m in self.lowercase_pronouns(text)]
            fixes += self.glued(text)  # known words only: no overlap with the others
            parts, end = [], 0
            for start, stop, fix in sorted(fixes):
                parts += [text[end:start], fix]
                end = stop
            outputs.append("".join(parts) + text[end:])
        return outputs

    def lowercase_pronouns(self, text: str) -> list[re.Match]:
        """Each "i" of `text` that English writes "I" ("i think", "i'm"); none for a lexicon of a user's file."""
        return list(PRONOUN_I.finditer(text)) if self.english else []

    def neighbours(self, word: str, limit: int) -> list[tuple[str, int]]:
        """Up to `limit` known words within the edit distance of `word`, with their counts: nearest first, then most
        frequent (symspell's order). A known word comes first itself, at distance 0."""
        verbosity = self._top if limit == 1 else self._all  # the same first word, found faster
        found = self._symspell.lookup(word.lower(), verbosity, self.max_edit_distance)
        return [(s.term, s.count) for s in found[:limit]]

    def splits(self, word: str) -> list[tuple[str, int]]:
        """The known word pairs that `word` runs together ("alot" -> "a lot"), with their counts, most frequent
        first."""
        word = word.lower()
        found = []
        for cut in range(1, len(word)):
            pair = f"{word[:cut]} {word[cut:]}"
            if pair in self._pairs and all(len(w) > 1 or w in "ai" for w in pair.split()):
                found.append((pair, self._pairs[pair]))
        return sorted(found, key=lambda found: -found[1])

    def apostrophe(self, word: str) -> str | None:
        """The known word that `word` spells without its apostrophe ("dont" -> "don't"), or None."""
        return self._apostrophes.get(word.lower())

    def candidates(self, word: str, limit: int) -> list[tuple[str, int]]:
        """Up to `limit` corrections of `word` with their counts: the known word it spells without its apostrophe
        alone ("dont" -> "don't": nothing else is that near), else its `splits`, then its `neighbours`."""
        if term := self.apostrophe(word):
            return [(term, self.count(term))][:limit]
        found = self.splits(word)[:limit]
        seen = {term for term, _ in found}
        more = [n for n in self.neighbours(word, limit) if n[0] not in seen]
        return found + more[: limit - len(found)]


def recase(word: str, found: str) -> str:
    """The lower-case correction `found` of `word`, cased like it (its own casing if unchanged: "iPhone"); the
    pronoun "i" in it is written "I" ("im" -> "I'm")."""
    if found == word.lower():
        return word
    if word.isupper() and len(word) > 1:
        return found.upper()
    found = PRONOUN_I.sub("I", found)
    return found[:1].upper() + found[1:] if word[:1].isupper() else found
