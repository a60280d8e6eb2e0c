"""Command line: one subcommand = one function that takes a config dataclass.

Flags are generated from the dataclasses by tyro. Modules here import torch inside the functions, so
`textdiffusion --help` answers at once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


def commands() -> dict[str, Callable]:
    from textdiffusion.cli import (
        caption,
        convert,
        denoise,
        denoise_eval,
        evaluate,
        generate,
        particles,
        push,
        serve,
        style,
        train,
    )

    return {
        "train": train.train,
        "search": train.search,
        "generate": generate.generate,
        "infill": generate.infill,
        "eval": evaluate.evaluate,
        "denoise": denoise.denoise,
        "eval-denoise": denoise_eval.eval_denoise,
        "style": style.style,
        "caption": caption.caption,
        "particles": particles.particles,
        "push": push.push,
        "serve": serve.serve,
        "convert": convert.convert,
    }


def main(argv: Sequence[str] | None = None) -> None:
    import tyro

    from textdiffusion.cli.common import CLIError, join_help_lines

    join_help_lines()
    try:
        tyro.extras.subcommand_cli_from_dict(
            commands(),
            prog="textdiffusion",
            description="Train and run diffusion models for text.",
            args=argv,
            config=(tyro.conf.OmitArgPrefixes,),
        )
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
