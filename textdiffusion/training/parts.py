"""What goes into a Trainer and what comes out: its parts (made by training/builder.py), the result of a run, and
what a per-evaluation callback receives."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from textdiffusion.checkpoint import CheckpointConfig
from textdiffusion.data import Tokenizer
from textdiffusion.tasks import ValidationSet


@dataclasses.dataclass
class TrainingParts:
    """What a Trainer trains: handed to it whole."""

    net: torch.nn.Module
    """The network, on the run's device, initialised (or loaded from the model being fine-tuned)."""
    tokenizer: Tokenizer
    process: Any
    objective: Any
    """DiffusionObjective or AutoregressiveObjective (training/objectives.py)."""
    stream: Any
    """The task's resumable training stream."""
    valid: ValidationSet
    checkpoint: CheckpointConfig
    """config.json of the model the run writes."""


@dataclasses.dataclass
class TrainResult:
    out: Path
    step: int
    loss: float
    valid_nll: float | None
    """Validation ELBO (or AR NLL) in nats per token, from the last evaluation."""
    valid_bits_per_char: float | None
    tokens_per_second: float
    parameters: int


@dataclasses.dataclass
class Evaluation:
    """What a per-evaluation callback of `Trainer.run` receives: the same values on every rank."""

    step: int
    valid_nll: float
    """Validation ELBO (or AR NLL), nats per token."""
    valid_bits_per_char: float


EvalCallback = Callable[[Evaluation], None]
"""Called after each evaluation (every --eval-every steps and at the last step) on every rank. It may raise to stop
the run: the run then cleans up and re-raises (KeyboardInterrupt saves a checkpoint first)."""
