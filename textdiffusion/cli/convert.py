"""`textdiffusion convert`: a published diffusion checkpoint (MDLM, BD3LM, DUO, SEDD, LLaDA, Dream) -> a folder this
package loads (`--model OUT`), samples and fine-tunes (`--init-from OUT`)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

import tyro


@dataclasses.dataclass
class ConvertArgs:
    src: tyro.conf.Positional[str]
    """The checkpoint folder (config.json and safetensors weights, as published)."""
    out: tyro.conf.Positional[str]
    """The folder to write."""
    source: Annotated[
        Literal["mdlm", "bd3lm", "duo", "sedd", "llada", "dream"], tyro.conf.arg(name="from")
    ] = "mdlm"
    """The layout of SRC."""
    tokenizer: str | None = None
    """tokenizer.json for checkpoints that ship none (MDLM, BD3LM, DUO and SEDD use GPT-2's)."""


def convert(args: ConvertArgs) -> None:
    """Convert a published diffusion LM checkpoint into this package's layout (no network, no remote code)."""
    import logging

    from textdiffusion.cli.common import CLIError
    from textdiffusion.convert import convert as run

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        out = run(args.src, args.out, source=args.source, tokenizer=args.tokenizer)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    print(
        f"converted {args.src} ({args.source}) into {out} (use --model {out} or --init-from {out})"
    )
