"""How much does a corrector's own likelihood know about spelling? It ranks dictionary candidates.

For each misspelling of a word list, the candidates are symspellpy's dictionary words within edit distance 2 (its
`Verbosity.ALL`, at most --candidates of them, in symspell's order). The corrector scores each one by its conditional
ELBO given the misspelling (`DenoisePipeline.conditional_nll`, the same masks for every candidate of an item), and:

- `model`: picks the candidate with the lowest ELBO;
- `model + prior`: subtracts 0.5 ln(count) first. Training drew single words by the square root of their counts, so
  this half power restores the full frequency prior (Bayes' rule with the training prior divided out);
- `symspell`: symspell's own first candidate (smallest distance, then most frequent), the baseline of issue 5.

A misspelling without any candidate counts as a miss for all three, so `covered` caps them. This diagnostic scores
every candidate once, with independent masks; the corrector built on it, `DenoisePipeline.choose_words` (the default
`--lexicon english` of `textdiffusion denoise`), screens the candidates and rescores a shortlist with common random
numbers.

    pip install 'textdiffusion[bench]'
    python -m bench.denoise_rerank --limit 100              # 6 lists x 100 items, about 8 minutes on 2 CPU cores
"""

from __future__ import annotations

import dataclasses
import json
import math
import time

from bench.harness import SHARED_DATA, BenchArgs, Benchmark, Results, log, parse_args, run
from textdiffusion.tasks.denoise.metrics import (
    WORD_LISTS,
    SymSpellCorrector,
    load_word_list,
    spread,
)


@dataclasses.dataclass
class RerankArgs(BenchArgs):
    device: str = "cpu"
    model: str = "typo-fixer"
    data_dir: str = str(SHARED_DATA)
    lists: tuple[str, ...] = tuple(WORD_LISTS)
    limit: int = 100
    """Misspellings per list, evenly spaced."""
    candidates: int = 20
    samples: int = 8
    """ELBO samples per candidate."""


def measure(args: RerankArgs, results: Results, device) -> None:
    from textdiffusion.tasks.denoise.pipeline import DenoisePipeline

    pipe = DenoisePipeline.from_pretrained(args.model, device=str(device))
    speller = SymSpellCorrector()
    rows = results.data.setdefault("lists", {})
    for name in args.lists:
        words = load_word_list(args.data_dir, name)
        pairs = spread(list(zip(words.wrong, words.right)), args.limit)
        start = time.perf_counter()
        sources, cands, owner = [], [], []
        for i, (wrong, _) in enumerate(pairs):
            for term, count in speller.lexicon.neighbours(wrong, args.candidates):
                sources.append(wrong)
                cands.append((term, count))
                owner.append(i)
        nll, _ = pipe.conditional_nll(
            sources, [c[0] for c in cands], samples=args.samples, batch_size=256
        )
        ranked: dict[int, list[tuple[str, float, int]]] = {}
        for i, (term, count), value in zip(owner, cands, nll):
            ranked.setdefault(i, []).append((term, value, count))
        rows[name] = {
            "n": len(pairs),
            "candidates": len(cands),
            **score(ranked, [right.lower() for _, right in pairs]),
            "seconds": time.perf_counter() - start,
        }
        results.save()
        log(f"{name}: {json.dumps(rows[name])}")


def score(ranked: dict[int, list[tuple[str, float, int]]], right: list[str]) -> dict[str, float]:
    """Top-1 accuracy of each way to pick from item i's (candidate, nll, count) list `ranked[i]`, in symspell's
    order."""
    picks = {
        "symspell": lambda c: c[0][0],
        "model": lambda c: min(c, key=lambda x: x[1])[0],
        "model + prior": lambda c: min(c, key=lambda x: x[1] - 0.5 * math.log(x[2]))[0],
    }
    out = {"covered": sum(any(c[0] == r for c in ranked.get(i, [])) for i, r in enumerate(right))}
    for key, pick in picks.items():
        out[key] = sum(i in ranked and pick(ranked[i]) == r for i, r in enumerate(right))
    return {key: hits / len(right) for key, hits in out.items()}


def render(data: dict) -> str:
    rows = data["lists"]
    cols = ["covered", "symspell", "model", "model + prior"]
    lines = ["| list (items) | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, row in rows.items():
        lines.append(f"| {name} ({row['n']}) | " + " | ".join(f"{row[c]:.3f}" for c in cols) + " |")
    return "\n".join(lines)


BENCH = Benchmark(
    "denoise-rerank",
    "Dictionary candidates ranked by a corrector's likelihood",
    render=render,
    summary=render,
    stem=lambda args, device: "denoise-rerank",
)


def main(args: RerankArgs) -> dict:
    return run(BENCH, args, lambda results, device: measure(args, results, device))


if __name__ == "__main__":
    main(parse_args(RerankArgs, {}))
