"""`textdiffusion eval-denoise`: score the typo-fixer and spelling baselines on real human errors.

Word lists (Norvig, Mitton's Wikipedia/Aspell/Birkbeck/Holbrook) give top-1 accuracy and the share of correct words
left unchanged; JFLEG gives GLEU, BLEU, chrF and the share of sentences changed. See
`textdiffusion.tasks.denoise.metrics` for the exact protocol.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Literal

WordListName = Literal["norvig1", "norvig2", "wikipedia", "aspell", "birkbeck", "holbrook"]


@dataclasses.dataclass
class EvalDenoiseArgs:
    model: str = "typo-fixer"
    """Correction model: shipped name, local folder or Hugging Face hub id; 'none' scores the baselines only."""
    data_dir: str = "../shared/data"
    """Folder holding spelling/ (the word lists) and jfleg/."""
    lists: tuple[WordListName, ...] = typing.get_args(WordListName)
    """Word lists to score."""
    jfleg_split: Literal["dev", "test", "both", "none"] = "test"
    """JFLEG split(s) to score; none skips JFLEG."""
    limit: int | None = None
    """Score at most this many items per set (misspellings, correct words, sentences), evenly spaced: quick runs."""
    baselines: bool = True
    """Also score symspellpy, pyspellchecker and copying the source (needs `pip install 'textdiffusion[bench]'`)."""
    pyspell_limit: int | None = 2000
    """pyspellchecker corrects only ~5 misspellings/s, so it scores at most this many items per set (None: all)."""
    steps: int | None = None
    """Refinement steps of the model (default: its saved setting)."""
    batch_size: int = 64
    """Texts corrected per model batch."""
    guard: bool = True
    """Keep a change only where the model finds it more likely than the input left as it is."""
    seed: int = 0
    """Random seed of the model's sampler."""
    lexicon: str = "english"
    """The model's lexicon, as `textdiffusion denoise --lexicon` takes it ('none': generate whole lines)."""
    edit_distance: int = 3
    """Lexicon candidates lie within this many edits of a word (the baselines keep symspell's 2)."""
    device: str = "auto"
    """cpu, cuda or auto."""
    json: bool = False
    """Print one JSON object instead of the markdown table."""
    out: str | None = None
    """Folder to write results.json, results.md and the resolved config into."""


class _Configured:
    """A pipeline seen as a `Corrector` whose sampling options are fixed and whose name is the model's."""

    def __init__(self, pipeline, name: str, **options) -> None:
        self.pipeline, self.name, self.options = pipeline, name, options

    def correct_words(self, words: list[str]) -> list[str]:
        return self.pipeline.correct_words(words, **self.options)

    def correct_sentences(self, lines: list[str]) -> list[str]:
        return self.pipeline.correct_sentences(lines, **self.options)


def _load_model(args: EvalDenoiseArgs):
    """The model as a corrector, or None (with a note) when it cannot be loaded."""
    import sys

    from textdiffusion.checkpoint import CheckpointError
    from textdiffusion.cli.common import resolve_device

    if args.model.lower() in ("", "none"):
        return None
    device = resolve_device(args.device)
    try:
        from textdiffusion.tasks.denoise.pipeline import DenoisePipeline

        pipeline = DenoisePipeline.from_pretrained(args.model, device=device)
    except (CheckpointError, ImportError, OSError, ValueError) as exc:
        print(
            f"note: model {args.model!r} not loaded ({exc}); scoring the baselines only",
            file=sys.stderr,
        )
        return None
    from textdiffusion.cli.denoise import load_lexicon

    options = dict(steps=args.steps, batch_size=args.batch_size, seed=args.seed, guard=args.guard)
    options["lexicon"] = load_lexicon(args.lexicon, args.edit_distance)
    name = args.model.rstrip("/").rsplit("/", 1)[-1]  # a folder or hub id: its last part
    return _Configured(pipeline, name, **options)


def _baselines(args: EvalDenoiseArgs) -> list[tuple[object, int | None]]:
    """(corrector, limit) for each baseline that is installed; a note for each that is not."""
    import sys

    from textdiffusion.tasks.denoise.metrics import (
        IdentityCorrector,
        PySpellCorrector,
        SymSpellCorrector,
    )

    found: list[tuple[object, int | None]] = []
    limits = [v for v in (args.limit, args.pyspell_limit) if v is not None]
    slow_limit = min(limits) if limits else None
    for make, limit in ((SymSpellCorrector, args.limit), (PySpellCorrector, slow_limit)):
        try:
            found.append((make(), limit))
        except ImportError as exc:
            print(f"note: {exc}", file=sys.stderr)
    return found + [(IdentityCorrector(), args.limit)]


def _targets(results: list[dict]) -> list[str]:
    """The issue's targets for the model (first column) against symspell and copying, one line each."""
    by_name = {r["name"]: r for r in results}
    model, symspell, copy = results[0], by_name.get("symspell"), by_name.get("copy")
    if symspell is None or model["name"] in ("symspell", "copy"):
        return []
    lines = []
    for key, got in model["words"].items():
        base = symspell["words"].get(key)
        if base:
            ok = got["accuracy"] > base["accuracy"] and got["unchanged"] >= 0.98
            lines.append(
                f"{'PASS' if ok else 'FAIL'} {key}: top-1 {got['accuracy']:.3f} vs symspell "
                f"{base['accuracy']:.3f}, unchanged {100 * got['unchanged']:.1f}% (>= 98% needed)"
            )
    for key, got in model["sentences"].items():
        rivals = [
            r["sentences"][key]["gleu"] for r in (symspell, copy) if r and key in r["sentences"]
        ]
        ok = all(got["gleu"] > g for g in rivals)
        lines.append(
            f"{'PASS' if ok else 'FAIL'} {key}: GLEU {got['gleu']:.1f} vs symspell/copy "
            + "/".join(f"{g:.1f}" for g in rivals)
        )
    return lines


def eval_denoise(args: EvalDenoiseArgs) -> None:
    """Score a correction model and spelling baselines on real misspellings and JFLEG."""
    import json
    import sys
    from pathlib import Path

    from textdiffusion.cli.common import CLIError, print_config, save_config
    from textdiffusion.data.corpus import DataError
    from textdiffusion.tasks.denoise.metrics import evaluate_corrector, format_table

    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        raise CLIError(
            f"--data-dir {args.data_dir}: no such folder (it holds spelling/ and jfleg/)"
        )
    if args.limit is not None and args.limit < 1:
        raise CLIError(f"--limit {args.limit}: must be at least 1")
    print_config(args)
    model = _load_model(args)
    correctors = ([(model, args.limit)] if model is not None else []) + (
        _baselines(args) if args.baselines else []
    )
    if not correctors:
        raise CLIError("nothing to score: the model did not load and --no-baselines was given")
    splits = {"both": ("dev", "test"), "none": ()}.get(args.jfleg_split, (args.jfleg_split,))
    results = []
    for corrector, limit in correctors:
        result = {"name": corrector.name, "words": {}, "sentences": {}}
        for task in [("list", name) for name in args.lists] + [("jfleg", s) for s in splits]:
            print(f"{corrector.name}: {task[1]} ...", file=sys.stderr, flush=True)
            lists, split = ([task[1]], None) if task[0] == "list" else ([], task[1])
            try:
                part = evaluate_corrector(
                    corrector, data_dir=data_dir, lists=lists, jfleg_split=split, limit=limit
                )
            except (DataError, FileNotFoundError) as exc:
                raise CLIError(f"--data-dir {args.data_dir}: {exc}") from None
            except ValueError as exc:  # e.g. a text the model cannot take
                raise CLIError(f"{corrector.name} on {task[1]}: {exc}") from None
            result["words"].update(part["words"])
            result["sentences"].update(part["sentences"])
        results.append(result)

    table = format_table(results)
    targets = _targets(results)
    report = {"config": dataclasses.asdict(args), "results": results, "targets": targets}
    if args.out is not None:
        out = Path(args.out)
        save_config(args, out / "config.json")
        (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "results.md").write_text(table + "\n\n" + "\n".join(targets) + "\n")
    if args.json:
        print(json.dumps(report))
        return
    print(table)
    if targets:
        print()
        print("\n".join(targets))
