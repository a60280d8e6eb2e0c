"""What does the model add to lexicon-guided correction? The same pipeline with symspell's choice in its place.

`textdiffusion denoise` (default `--lexicon english`) rewrites a text in four ways (`Lexicon.correct`): the model
chooses a correction for each unknown word (`DenoisePipeline.choose_words`), and three lexicon rules need no model: a
known word written without its apostrophe ("dont" -> "don't"), a split word joined ("any thing" -> "anything") and the
pronoun "i" written "I". This script keeps the rules and replaces the model's choice by symspell's (its nearest, most
frequent known word within `--edit-distance`), then scores that corrector on the items `eval-denoise --limit N`
scores. The gap to the model's row of `eval-denoise` is the model's own contribution; the gap to the plain `symspell`
baseline is the rules'.

    python bench/denoise_ablation.py --limit 300     # 6 word lists and JFLEG dev and test, about a minute on a CPU
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import tyro

from textdiffusion.tasks.denoise.lexicon import recase
from textdiffusion.tasks.denoise.metrics import (
    WORD_LISTS,
    SymSpellCorrector,
    evaluate_corrector,
    format_table,
)

RESULTS = Path(__file__).parent / "results" / "denoise-ablation-cpu300.json"


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
class AblationArgs:
    data_dir: str = str(Path(__file__).resolve().parents[2] / "shared" / "data")
    lists: tuple[str, ...] = tuple(WORD_LISTS)
    jfleg_split: str = "both"
    limit: int | None = 300
    """Items per set, evenly spaced (as `eval-denoise --limit`)."""
    edit_distance: int = 3
    """As `eval-denoise --edit-distance` (symspell's own baseline keeps 2)."""
    json: str = str(RESULTS)


def main(args: AblationArgs) -> dict:
    corrector = RulesAndSymSpell(args.edit_distance)
    result = evaluate_corrector(
        corrector,
        data_dir=args.data_dir,
        lists=args.lists,
        jfleg_split=args.jfleg_split,
        limit=args.limit,
    )
    record = {
        "args": dataclasses.asdict(args),
        "date": time.strftime("%Y-%m-%d"),
        "results": [result],
    }
    Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    print(format_table([result]))
    return record


if __name__ == "__main__":
    main(tyro.cli(AblationArgs))
