"""Spelling and grammar correction on real human errors: word lists, JFLEG, metrics and baseline correctors.

Word lists (Norvig's test sets; Mitton's Wikipedia, Aspell, Birkbeck, Holbrook) give *top-1 accuracy*: the share of
misspellings whose correction equals the intended word, compared case-insensitively (`str.casefold`; Mitton's `_` is
read as a space). The *unchanged rate* feeds each list's distinct single-word targets and counts those returned equal
under the same rule. JFLEG (Napoles et al., EACL 2017) gives GLEU against its four references, BLEU and chrF
(sacrebleu, when installed) and the share of sentences changed. Any `Corrector` is scored, `DenoisePipeline` included.
"""

from __future__ import annotations

import dataclasses
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from textdiffusion.data.corpus import DataError
from textdiffusion.evaluation.overlap import bleu_chrf
from textdiffusion.tasks.denoise.lexicon import Lexicon, recase

WORD_LISTS: dict[str, tuple[str, str, str]] = {  # name: (folder under spelling/, upstream file stem, ext)
    "norvig1": ("norvig", "spell-testset1", ".txt"), "norvig2": ("norvig", "spell-testset2", ".txt"),
    "wikipedia": ("mitton", "wikipedia", ".dat"), "aspell": ("mitton", "aspell", ".dat"),
    "birkbeck": ("mitton", "birkbeck_missp", ".dat"), "holbrook": ("mitton", "holbrook-missp", ".dat"),
}  # fmt: skip
"""The word lists under `<data_dir>/spelling`, by name."""

_is_word = re.compile(r"[A-Za-z]+").fullmatch
_BENCH_HINT = "pip install 'textdiffusion[bench]'"


@dataclasses.dataclass
class WordPairs:
    """One word list: `wrong[i]` is a real misspelling of `right[i]`."""

    name: str
    wrong: list[str]
    right: list[str]


@dataclasses.dataclass
class SentenceSet:
    """Sentences to correct, each with its human references: `references[i]` holds all references of `sources[i]`."""

    name: str
    sources: list[str]
    references: list[list[str]]


def read_norvig(path: str | Path, *, name: str = "norvig") -> WordPairs:
    """Norvig's test sets: one line per intended word, `right: wrong1 wrong2 ...`."""
    wrong, right = [], []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        target, sep, misspellings = line.partition(":")
        if not sep or not target.strip():
            raise DataError(f"{path}:{number}: expected 'right: wrong ...', got {line!r}")
        wrong.extend(misspellings.split())
        right.extend([target.strip()] * (len(wrong) - len(right)))
    return WordPairs(name, wrong, right)


def read_mitton(path: str | Path, *, name: str = "mitton") -> WordPairs:
    """Mitton's lists: a `$correct` line, then one misspelling per line; `_` stands for a space. Holbrook's lines
    are `misspelling count` (the count is dropped: one item per line); its `$?` group (unknown targets) is skipped."""
    wrong, right = [], []
    target: str | None = None
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("$"):
            target = line[1:].replace("_", " ")
            continue
        if target is None:
            raise DataError(f"{path}:{number}: a misspelling before any '$correct' line")
        if target == "?":
            continue
        wrong.append(line.split()[0].replace("_", " "))
        right.append(target)
    return WordPairs(name, wrong, right)


def _find(folder: Path, stem: str, ext: str) -> Path:
    """The upstream file if present, else its `.visible` part, else the one file `stem.*ext` (not spell-checked)."""
    preferred = [folder / f"{stem}{ext}", folder / f"{stem}.visible{ext}"]
    found = [p for p in preferred if p.is_file()][:1] or sorted(folder.glob(f"{stem}.*{ext}"))
    found = [p for p in found if "spellchecked" not in p.name]
    if len(found) != 1:
        raise DataError(f"expected one {stem}{ext} in {folder}, found {len(found)}")
    return found[0]


def load_word_list(data_dir: str | Path, name: str) -> WordPairs:
    """Read the word list `name` (a key of WORD_LISTS) from `<data_dir>/spelling`."""
    if name not in WORD_LISTS:
        raise ValueError(f"unknown word list {name!r}; choose from {sorted(WORD_LISTS)}")
    folder, stem, ext = WORD_LISTS[name]
    path = _find(Path(data_dir) / "spelling" / folder, stem, ext)
    return (read_norvig if folder == "norvig" else read_mitton)(path, name=name)


def read_jfleg(data_dir: str | Path, split: str) -> SentenceSet:
    """JFLEG `split` ('dev' or 'test') from `<data_dir>/jfleg/<split>`: `.src` plus its `.ref0`..`.ref3`."""
    folder = Path(data_dir) / "jfleg" / split
    source = _find(folder, split, ".src")
    stem = source.name[: -len(".src")]
    ref_paths = sorted(folder.glob(f"{stem}.ref[0-9]"))
    if not ref_paths:
        raise DataError(f"no references {stem}.ref0.. beside {source}")
    sources = [line.strip() for line in source.read_text().splitlines()]
    columns = [[line.strip() for line in p.read_text().splitlines()] for p in ref_paths]
    if any(len(column) != len(sources) for column in columns):
        raise DataError(f"{source} and its references {stem}.ref* differ in length")
    return SentenceSet(f"jfleg-{split}", sources, [list(refs) for refs in zip(*columns)])


def word_accuracy(predicted: Sequence[str], right: Sequence[str]) -> float:
    """Top-1 accuracy: the share of predictions equal to the intended word, case-insensitively."""
    if len(predicted) != len(right):
        raise ValueError(f"{len(predicted)} predictions for {len(right)} words")
    same = sum(p.strip().casefold() == r.strip().casefold() for p, r in zip(predicted, right))
    return same / max(len(right), 1)


def correct_words_of(pairs: WordPairs) -> list[str]:
    """The distinct single-word targets of a list, the inputs of the unchanged rate (sorted, first spelling kept)."""
    seen = {word.casefold(): word for word in reversed(pairs.right) if " " not in word}
    return sorted(seen.values())


def unchanged_rate(outputs: Sequence[str], words: Sequence[str]) -> float:
    """Share of correct `words` returned unchanged (case-insensitively) in `outputs`: 1 - the false-alarm rate."""
    return word_accuracy(outputs, words)


def changed_share(hypotheses: Sequence[str], sources: Sequence[str]) -> float:
    """Share of sentences whose whitespace tokens differ from the source's."""
    return sum(h.split() != s.split() for h, s in zip(hypotheses, sources)) / max(len(sources), 1)


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) + 1 - n))


def gleu_statistics(hypothesis: str, source: str, reference: str, *, order: int = 4) -> list[int]:
    """GLEU sufficient statistics of one sentence against one reference (whitespace tokens, case-sensitive).

    Returns `[len(h), len(r), m_1, d_1, ..., m_order, d_order]`, for each n-gram order n m_n = max(0, |H ∩ R| -
    |H ∩ (S \\ R)|), the hypothesis n-grams in the reference minus those kept from the source where the reference
    changed them (S \\ R: source n-gram types absent from R, with all their counts), and d_n = len(h) - n + 1
    (Napoles et al. 2015, updated 2016; `gleu_stats` of JFLEG's eval/gleu.py).
    """
    h, s, r = hypothesis.split(), source.split(), reference.split()
    stats = [len(h), len(r)]
    for n in range(1, order + 1):
        h_ngrams, s_ngrams, r_ngrams = _ngrams(h, n), _ngrams(s, n), _ngrams(r, n)
        source_only = Counter({g: c for g, c in s_ngrams.items() if g not in r_ngrams})
        matched = sum((h_ngrams & r_ngrams).values()) - sum((h_ngrams & source_only).values())
        stats += [max(matched, 0), max(len(h) + 1 - n, 0)]
    return stats


def gleu(
    hypotheses: Sequence[str],
    sources: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    iterations: int = 500,
) -> float:
    """Corpus GLEU in [0, 1] against several references, as JFLEG's official scorer (eval/gleu.py) computes it.

    Draw one reference per sentence, sum the statistics of `gleu_statistics` over the corpus, score the sums like
    BLEU (brevity penalty exp(min(0, 1 - r/c)) times the geometric mean of the 1..4-gram precisions), and average
    over `iterations` draws seeded j*101 (Napoles et al. 2015; 2016 "GLEU without tuning"). The draws are the
    Python 2 scorer's: an int seed gives the same `random()` stream in Python 2 and 3, and its `randint(0, R - 1)`
    was `int(random() * R)`. `references[i]` holds all references of the tokenised `hypotheses[i]`, `sources[i]`.
    """
    if not hypotheses or not len(hypotheses) == len(sources) == len(references):
        raise ValueError("gleu needs one source and one reference list per hypothesis, and some")
    counts = [len(refs) for refs in references]
    stats = np.zeros(
        (len(hypotheses), max(counts), 10)
    )  # (N, R, 10): sentence i against reference k
    for i, (h, s, refs) in enumerate(zip(hypotheses, sources, references)):
        stats[i, : len(refs)] = [gleu_statistics(h, s, ref) for ref in refs]
    totals = np.zeros(
        (iterations, 10)
    )  # (iterations, 10): corpus sums, one reference drawn per sentence
    for j in range(iterations):
        rng = random.Random(j * 101)
        totals[j] = stats[np.arange(len(stats)), [int(rng.random() * c) for c in counts]].sum(0)
    c, r, matched, total = totals[:, 0], totals[:, 1], totals[:, 2::2], totals[:, 3::2]
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero statistic scores 0, as in gleu.py
        score = np.exp(np.minimum(0.0, 1.0 - r / c) + np.log(matched / total).mean(-1))
    return float(np.where((totals == 0).any(-1), 0.0, score).mean())


class Corrector(Protocol):
    """Anything that corrects words and sentences; `DenoisePipeline` is one."""

    name: str

    def correct_words(self, words: list[str]) -> list[str]: ...

    def correct_sentences(self, lines: list[str]) -> list[str]: ...


class IdentityCorrector:
    """Copy the source: the floor every corrector must beat. Its subclasses, word correctors, override `fix` and
    correct sentences word by word: whitespace tokens made of letters only (punctuation, numbers, "n't" are kept).
    """

    name = "copy"

    def fix(self, word: str) -> str:
        return word

    def correct_words(self, words: list[str]) -> list[str]:
        return [self.fix(w) for w in words]

    def correct_sentences(self, lines: list[str]) -> list[str]:
        return [" ".join(self.fix(t) if _is_word(t) else t for t in x.split()) for x in lines]


class SymSpellCorrector(IdentityCorrector):
    """symspellpy (Garbe's symmetric-delete search), its bundled 82,765-word English frequency dictionary: a word
    becomes its most frequent neighbour at the smallest edit distance <= 2 (`Verbosity.TOP`), recased like it;
    a word without neighbour is kept."""

    name = "symspell"

    def __init__(self, *, max_edit_distance: int = 2, dictionary: str | Path | None = None) -> None:
        """`dictionary`: a `term count` file to use instead of the bundled one."""
        self.lexicon = Lexicon(dictionary, max_edit_distance=max_edit_distance)

    def fix(self, word: str) -> str:
        found = self.lexicon.neighbours(word, 1)
        return recase(word, found[0][0]) if found else word


class PySpellCorrector(IdentityCorrector):
    """pyspellchecker (Norvig's corrector, its English word-frequency list, edit distance <= 2): a known word is
    kept; an unknown one becomes the most frequent candidate at the smallest distance, capitalisation restored."""

    name = "pyspellchecker"

    def __init__(self, *, distance: int = 2) -> None:
        try:
            from spellchecker import SpellChecker
        except ImportError as exc:
            raise ImportError(f"PySpellCorrector needs pyspellchecker: {_BENCH_HINT}") from exc
        self._checker = SpellChecker(language="en", distance=distance)

    def fix(self, word: str) -> str:
        if " " in word or word.lower() in self._checker:
            return word
        return recase(word, self._checker.correction(word.lower()) or word)


def _timed(fn, items: list[str]) -> tuple[list[str], float]:
    start = time.perf_counter()
    output = fn(items)
    if len(output) != len(items):
        raise ValueError(f"the corrector returned {len(output)} outputs for {len(items)} inputs")
    return output, time.perf_counter() - start


def spread(items: list, limit: int | None) -> list:
    """`limit` items spread evenly over the list (the lists are sorted by target, so a prefix would be biased)."""
    if limit is None or limit >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, max(limit, 0)).round().astype(int)]


def evaluate_corrector(
    corrector: Corrector,
    *,
    data_dir: str | Path,
    lists: Sequence[str] = tuple(WORD_LISTS),
    jfleg_split: str | None = "test",
    limit: int | None = None,
) -> dict:
    """Score a corrector on the word lists and JFLEG, timing it.

    Args:
        data_dir: the folder that holds `spelling/` and `jfleg/`; lists: names, keys of WORD_LISTS.
        jfleg_split: 'dev', 'test', 'both', or None (or 'none') to skip JFLEG.
        limit: score at most `limit` items of each set (misspellings, correct words, sentences), evenly spaced.

    Returns:
        `{"name", "words": {list: {n, accuracy, n_correct_words, unchanged, words_per_s}}, "sentences":
        {"jfleg-<split>": {n, gleu (0..100), bleu, chrf, changed, sentences_per_s, words_per_s}}}`; words/s: inputs
        of `correct_words` per second, and for JFLEG the source's whitespace tokens per `correct_sentences` second.
    """
    splits = {"both": ("dev", "test"), "none": (), None: ()}.get(jfleg_split, (jfleg_split,))
    if any(split not in ("dev", "test") for split in splits):
        raise ValueError(f"unknown JFLEG split {jfleg_split!r}; choose dev, test, both or none")
    result: dict = {"name": getattr(corrector, "name", "corrector"), "words": {}, "sentences": {}}
    for list_name in lists:
        pairs = load_word_list(data_dir, list_name)
        wrong, right = spread(pairs.wrong, limit), spread(pairs.right, limit)
        correct = spread(correct_words_of(pairs), limit)
        outputs, seconds = _timed(
            corrector.correct_words, wrong + correct
        )  # one call: batching models
        predicted, kept = outputs[: len(wrong)], outputs[len(wrong) :]
        result["words"][list_name] = {
            "n": len(wrong),
            "accuracy": word_accuracy(predicted, right),
            "n_correct_words": len(correct),
            "unchanged": unchanged_rate(kept, correct),
            "words_per_s": (len(wrong) + len(correct)) / max(seconds, 1e-9),
        }
    for split in splits:
        data = read_jfleg(data_dir, split)
        sources, references = spread(data.sources, limit), spread(data.references, limit)
        hypotheses, seconds = _timed(corrector.correct_sentences, sources)
        hypotheses = [" ".join(h.split()) for h in hypotheses]  # the scorers read whitespace tokens
        result["sentences"][data.name] = {
            "n": len(sources),
            "gleu": 100 * gleu(hypotheses, sources, references),
            **bleu_chrf(hypotheses, references),
            "changed": changed_share(hypotheses, sources),
            "sentences_per_s": len(sources) / max(seconds, 1e-9),
            "words_per_s": sum(len(s.split()) for s in sources) / max(seconds, 1e-9),
        }
    return result


_TABLE_ROWS = {  # kind: [(row name, result field, format)]
    "words": [("top-1 accuracy", "accuracy", "{:.3f}"), ("unchanged", "unchanged", "{:.1%}"),
              ("words/s", "words_per_s", "{:,.1f}")],
    "sentences": [("GLEU", "gleu", "{:.1f}"), ("BLEU", "bleu", "{:.1f}"), ("chrF", "chrf", "{:.1f}"),
                  ("changed", "changed", "{:.0%}"), ("sentences/s", "sentences_per_s", "{:,.1f}"),
                  ("words/s", "words_per_s", "{:,.1f}")],
}  # fmt: skip


def _cell(got: dict | None, field: str, fmt: str, n: int) -> str:
    if got is None or field not in got:
        return "–"
    return fmt.format(got[field]) + (f" (n={got['n']:,})" if got["n"] != n else "")


def format_table(results: list[dict]) -> str:
    """A markdown table, a row per set and metric, a column per corrector (baselines beside the model); the label
    gives the set's size (misspellings / correct words, or sentences); a cell on fewer items says `(n=...)`."""
    names = [r["name"] for r in results]
    lines = ["| set | metric | " + " | ".join(names) + " |", "|---|---|" + "---:|" * len(names)]
    for kind, rows in _TABLE_ROWS.items():
        for key in dict.fromkeys(k for r in results for k in r[kind]):
            got = [r[kind].get(key) for r in results]
            first = next(g for g in got if g)
            extra = f" / {first['n_correct_words']:,}" if kind == "words" else ""
            label = f"{key} ({first['n']:,}{extra})"
            for metric, field, fmt in rows:
                if all(g is None or field not in g for g in got):
                    continue
                cells = [_cell(g, field, fmt, first["n"]) for g in got]
                lines.append(f"| {label} | {metric} | " + " | ".join(cells) + " |")
                label = ""
    return "\n".join(lines)
