"""`textdiffusion push DIR REPO_ID`: upload a trained model folder to the Hugging Face hub."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import tyro


@dataclasses.dataclass
class PushArgs:
    model: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="DIR")]
    """The model folder (a `train --out` folder or a `save_pretrained` one)."""
    repo_id: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="REPO_ID")]
    """The hub repo to upload to, USER/NAME; created when missing."""
    private: bool = False
    """Create the repo private."""
    message: str = "Upload a textdiffusion model"
    """Commit message."""


def push(args: PushArgs) -> None:
    """Upload a model's files (config.json, model.safetensors, tokenizer.json, README.md) to the Hugging Face hub;
    `--model USER/NAME` then loads it anywhere. Needs the network and a token (`hf auth login` or HF_TOKEN)."""
    from textdiffusion.checkpoint import CheckpointError
    from textdiffusion.cli.common import CLIError
    from textdiffusion.config import ConfigError
    from textdiffusion.hub import HubError, push_folder

    try:
        url = push_folder(
            args.model, args.repo_id, private=args.private, commit_message=args.message
        )
    except (HubError, CheckpointError, ConfigError, OSError) as exc:
        raise CLIError(str(exc)) from None
    print(f"pushed {args.model} to {args.repo_id}: {url}")
