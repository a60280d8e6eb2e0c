"""What does the model add to lexicon-guided correction? The same pipeline with symspell's choice in its place.

`textdiffusion denoise` (default `--lexicon english`) rewrites a text in four ways (`Lexicon.correct`): the model
chooses a correction for each unknown word (`DenoisePipeline.choose_words`), and three lexicon rules need no model: a
known word written without its apostrophe ("dont" -> "don't"), a split word joined ("any thing" -> "anything") and the
pronoun "i" written "I". This script keeps the rules and replaces the model's choice by symspell's (its nearest, most
frequent known word within `--edit-distance`), then scores that corrector on the items `eval-denoise --limit N`
scores. The gap to the model's row of `eval-denoise` is the model's own contribution; the gap to the plain `symspell`
baseline is the rules'.

    python -m bench.denoise_ablation --limit 300     # 6 word lists and JFLEG dev and test, about a minute on a CPU
"""

from __future__ import annotations

import dataclasses

from bench.harness import (
    SHARED_DATA,
    BenchArgs,
    Benchmark,
    Results,
    markdown_table,
    parse_args,
    run,
)
from textdiffusion.tasks.denoise.lexicon import recase
from textdiffusion.tasks.denoise.metrics import (
    WORD_LISTS,
    SymSpellCorrector,
    evaluate_corrector,
    format_table,
)


class RulesAndSymSpell(SymSpellCorrector):
    """Lexicon-guided correction with symspell's first candidate (`SymSpellCorrector.fix`) where the model would
    choose, and the known word a word spells without its apostrophe before that, as `Lexicon.candidates` has it."""

    name = "rules + symspell"

    def __init__(self, edit_distance: int) -> None:
        super().__init__(max_edit_distance=edit_distance)

    def _choose(self, words: list[str]) -> list[str]:
        return [recase(w, a) if (a := self.lexicon.apostrophe(w)) else self.fix(w) for w in words]

    def correct_words(self, words: list[str]) -> list[str]:
        return self.lexicon.correct(words, self._choose)

    correct_sentences = correct_words


@dataclasses.dataclass
class AblationArgs(BenchArgs):
    data_dir: str = str(SHARED_DATA)
    lists: tuple[str, ...] = tuple(WORD_LISTS)
    jfleg_split: str = "both"
    limit: int | None = 300
    """Items per set, evenly spaced (as `eval-denoise --limit`)."""
    edit_distance: int = 3
    """As `eval-denoise --edit-distance` (symspell's own baseline keeps 2)."""


def measure(args: AblationArgs, results: Results, device) -> None:
    corrector = RulesAndSymSpell(args.edit_distance)
    result = evaluate_corrector(
        corrector,
        data_dir=args.data_dir,
        lists=args.lists,
        jfleg_split=args.jfleg_split,
        limit=args.limit,
    )
    results.set("results", [result])
    print(format_table([result]))


def render(data: dict) -> str:
    return format_table(data["results"])


def summary(data: dict) -> str:
    """Top-1 accuracy on each word list, GLEU on JFLEG."""
    (result,) = data["results"]
    rows = [
        {"set": name, "n": r["n"], "metric": "top-1", "value": r["accuracy"]}
        for name, r in result["words"].items()
    ]
    rows += [
        {"set": name, "n": r["n"], "metric": "GLEU", "value": r["gleu"]}
        for name, r in result["sentences"].items()
    ]
    columns = [
        ("set", "set", ""),
        ("n", "items", ""),
        ("metric", "metric", ""),
        ("value", result["name"], ".3g"),
    ]
    return markdown_table(rows, columns)


BENCH = Benchmark(
    "denoise-ablation",
    "Lexicon-guided correction with symspell's choice",
    render=render,
    summary=summary,
    stem=lambda args, device: f"denoise-ablation-cpu{args.limit or ''}",  # symspell runs on the CPU
)


def main(args: AblationArgs) -> dict:
    return run(BENCH, dataclasses.replace(args, device="cpu"), lambda r, d: measure(args, r, d))


if __name__ == "__main__":
    main(parse_args(AblationArgs, {}))
