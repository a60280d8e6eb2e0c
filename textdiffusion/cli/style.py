"""`textdiffusion style`: rewrite text in the style a model learnt from aligned pairs (`train --task style`)."""

from __future__ import annotations

import dataclasses
import sys

import tyro

from textdiffusion.cli.generate import SamplingArgs


@dataclasses.dataclass
class StyleArgs(SamplingArgs):
    text: tyro.conf.Positional[tuple[str, ...]] = ()
    """Text(s) to rewrite, a line at a time (or use --file)."""
    model: str = "shakespeare-style"
    """A model trained with `textdiffusion train --task style`: shipped name (default: modern English ->
    Shakespeare), local folder or Hugging Face hub id."""
    file: str | None = None
    """Rewrite this file line by line (line count kept; empty lines stay empty), or standard input if it is a dash."""
    out: str | None = None
    """Write the rewritten --file here (default: standard output)."""
    batch_size: int = 64
    """Lines rewritten together."""
    to: str | None = None
    """Attribute models (trained with --labels): the label to move the text to."""
    strength: float | None = None
    """How much may change. Source-start models (trained with --edit-gap): a token is rewritten where the model
    prefers another with probability above 1 - strength (0: the output is the input; default 0.9). Attribute
    models: the largest share of a line's words regenerated, those the label disfavours most by over 0.5 nats
    (default 0.3)."""
    rounds: int = 1
    """Source-start models: detect-and-rewrite rounds (each reads the whole line again)."""
    deletions: bool = False
    """Source-start models: let a rewrite drop source tokens (by default they are only replaced, and words inserted)."""
    guidance: float = 2.0
    """Attribute models: classifier-free guidance scale (1: none; higher: the label weighs more)."""


def style(args: StyleArgs) -> None:
    """Style transfer: text in, the same content in the learnt style out."""
    import json

    from rich.console import Console
    from rich.progress import Progress

    from textdiffusion.cli.common import CLIError, check_output_path, read_input, write_output
    from textdiffusion.cli.generate import _load, _sampling
    from textdiffusion.cli.show import RefinementView
    from textdiffusion.pipelines import InputError
    from textdiffusion.tasks.style.pipeline import StylePipeline

    if bool(args.text) == bool(args.file):
        raise CLIError("give the text to rewrite, or --file FILE (not both)")
    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.out is not None:
        check_output_path(args.out)
    lines = list(args.text)
    if args.file:  # read before the model loads: a wrong path fails at once
        try:
            lines = read_input(args.file).decode("utf-8").split("\n")
        except UnicodeDecodeError as exc:
            raise CLIError(f"--file {args.file} is not UTF-8 text ({exc.reason})") from None
    pipe = _load(StylePipeline, args)
    attribute = (
        dict(to=args.to, strength=args.strength, guidance=args.guidance) if pipe.labels else {}
    )
    if pipe.gap:
        attribute = dict(strength=args.strength, rounds=args.rounds, deletions=args.deletions)
    elif args.strength is not None and not pipe.labels:
        raise CLIError(
            f"--strength: {args.model} generates its rewrite from masks (trained without --edit-gap)"
        )
    if args.to is not None and not pipe.labels:
        raise CLIError(f"--to: {args.model} was trained on aligned pairs and has no attributes")
    if pipe.labels and args.to not in pipe.labels:
        raise CLIError(
            f"--to: {args.model} moves text between the attributes {list(pipe.labels)}: give --to one of them"
            + ("" if args.to is None else f", not {args.to!r}")
        )
    view = RefinementView(pipe.tokenizer, enabled=args.show and not args.file)
    try:
        # progress on standard error, only for files: standard output carries the rewritten text
        with (
            view,
            Progress(console=Console(stderr=True), transient=True, disable=not args.file) as bar,
        ):
            task = bar.add_task("rewriting", total=None)
            out = pipe(
                lines,
                batch_size=args.batch_size,
                seed=args.seed,
                callback=view.callback,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                **attribute,
                **_sampling(args),
            )
    except InputError as exc:
        raise CLIError(str(exc)) from None
    for message in out.warnings:
        print(f"warning: {message}", file=sys.stderr)
    if args.file:
        data = "\n".join(out.texts)
        if args.out:
            write_output(args.out, data.encode("utf-8"))  # never a half-written output
        else:
            sys.stdout.write(data)
        count = len(lines) - (lines[-1] == "")  # no line after a final newline
        print(f"[{count} lines rewritten in {out.seconds:.1f} s]", file=sys.stderr)
    elif args.json:
        print(
            json.dumps(
                {"texts": out.texts, "seconds": out.seconds, "network_calls": out.network_calls}
            )
        )
    else:
        print("\n".join(out.texts))
