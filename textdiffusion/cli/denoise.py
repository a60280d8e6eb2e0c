"""`textdiffusion denoise`: correct typos, misspellings and grammatical slips."""

from __future__ import annotations

import dataclasses
import os
import sys

import tyro

from textdiffusion.cli.generate import SamplingArgs


@dataclasses.dataclass
class DenoiseArgs(SamplingArgs):
    text: tyro.conf.Positional[tuple[str, ...]] = ()
    """Text(s) to correct (or use --file)."""
    model: str = "typo-fixer"
    """Shipped model name, local folder or Hugging Face hub id."""
    file: str | None = None
    """Correct this file line by line (line order and count kept; lines needing no change stay byte-identical), or
    standard input if it is a dash."""
    out: str | None = None
    """Write the corrected --file here (default: standard output)."""
    batch_size: int = 64
    """Lines corrected together."""
    guard: bool = True
    """Keep a change only where the model finds it more likely than the input left as it is (fewer correct words
    changed, at some cost in corrections; about twice the network calls)."""
    lexicon: str = "english"
    """Lexicon-guided correction: only words unknown to this lexicon change, each to the known word (or glued word
    pair) the model finds most likely ('english': symspellpy's bundled 82,765 words and 243,342 word pairs; or a file
    of `word count` and `first second count` lines). Lost apostrophes ("dont"), split words ("any thing") and, in
    English, a lower-case "i" are fixed without the model. 'none': the model generates whole lines (spelling and
    grammar; --steps, --show and --guard apply to this mode). The first use of a lexicon indexes it (about 7 s for
    'english') and keeps the index in ~/.cache/textdiffusion ($TEXTDIFFUSION_CACHE)."""
    edit_distance: int = 3
    """Lexicon candidates lie within this many edits of a word (2 finds fewer; on Birkbeck it ran 1.5 times as fast)."""


def load_lexicon(spec: str, edit_distance: int = 3):
    """The `Lexicon` named by a --lexicon value, or None for 'none'."""
    from textdiffusion.cli.common import CLIError
    from textdiffusion.data.corpus import DataError
    from textdiffusion.tasks.denoise.lexicon import Lexicon

    if spec.lower() == "none":
        return None
    if spec.lower() != "english" and not os.path.isfile(spec):
        raise CLIError(
            f"--lexicon {spec}: no such file (give 'english', 'none' or a 'word count' file)"
        )
    if not 1 <= edit_distance <= 3:
        raise CLIError(f"--edit-distance {edit_distance}: must be 1, 2 or 3")
    from rich.console import Console

    try:
        # a spinner on a terminal (nothing elsewhere): a lexicon's first use indexes it, ~7 s for 'english'
        with Console(stderr=True).status("loading the lexicon (its first use indexes it)"):
            return Lexicon(
                None if spec.lower() == "english" else spec, max_edit_distance=edit_distance
            )
    except DataError as exc:
        raise CLIError(f"--lexicon {spec}: {exc}") from None


def denoise(args: DenoiseArgs) -> None:
    """Correct spelling and grammar: noisy text in, clean text out."""
    import json

    from textdiffusion.cli.common import CLIError, check_output_path, read_input, write_output
    from textdiffusion.cli.generate import _load, _sampling
    from textdiffusion.cli.show import RefinementView
    from textdiffusion.pipelines import InputError
    from textdiffusion.tasks.denoise.pipeline import DenoisePipeline

    if bool(args.text) == bool(args.file):
        raise CLIError("give the text to correct, or --file FILE (not both)")
    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.out is not None:
        check_output_path(args.out)
    raw = None
    if args.file:  # read before the model loads: a wrong path fails at once
        raw = read_input(args.file)
    pipe = _load(DenoisePipeline, args)
    sampling = {k: v for k, v in _sampling(args).items() if k != "top_p"}
    sampling["guard"] = args.guard
    sampling["lexicon"] = load_lexicon(args.lexicon, args.edit_distance)
    if raw is not None:
        # surrogateescape: bytes that are not UTF-8 survive the round trip untouched
        lines = raw.decode("utf-8", errors="surrogateescape").split("\n")
        from rich.console import Console
        from rich.progress import Progress

        # on standard error: standard output carries the corrected bytes and nothing else
        try:
            with Progress(console=Console(stderr=True), transient=True, disable=args.json) as bar:
                task = bar.add_task("correcting", total=None)
                out = pipe(
                    lines,
                    batch_size=args.batch_size,
                    seed=args.seed,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                    **sampling,
                )
        except InputError as exc:
            raise CLIError(str(exc)) from None
        data = "\n".join(out.texts).encode("utf-8", errors="surrogateescape")
        if args.out:
            write_output(args.out, data)  # never a half-written output
        else:
            sys.stdout.buffer.write(data)
        count = len(lines) - (lines[-1] == "")  # no line after a final newline
        changed = sum(out.changed)
        print(f"[{changed} of {count} lines changed in {out.seconds:.1f} s]", file=sys.stderr)
        return
    if args.show and sampling["lexicon"] is not None:
        print(
            "note: --show animates generation; --lexicon chooses words instead (--lexicon none)",
            file=sys.stderr,
        )
    view = RefinementView(pipe.tokenizer, enabled=args.show)
    try:
        with view:
            out = pipe(list(args.text), seed=args.seed, callback=view.callback, **sampling)
    except InputError as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        print(json.dumps({"texts": out.texts, "changed": out.changed, "seconds": out.seconds}))
    else:
        print("\n".join(out.texts))
