"""Hyperparameter search: short training trials over a grid of learning rates and batch sizes, ranked by the
validation ELBO in bits per character (the measure every tokenizer and task shares)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

from textdiffusion.config import DataConfig, TrainConfig
from textdiffusion.training.builder import train
from textdiffusion.training.state import TrainingDiverged

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Trial:
    lr: float
    batch_size: int
    out: str
    steps: int = 0
    valid_bits_per_char: float = math.inf
    """inf when the trial diverged or had no validation data."""
    tokens_per_second: float = 0.0
    error: str | None = None


def search(
    data: DataConfig,
    config: TrainConfig,
    *,
    out: str | Path,
    lrs: Sequence[float],
    batch_sizes: Sequence[int],
    **kwargs,
) -> list[Trial]:
    """Train one trial per (lr, batch size) with `config` otherwise unchanged, best first.

    Each trial is a full run in `out/lr=LR,bs=B` (a loadable model) and is evaluated once at its end, so give
    `config` a short budget (`steps` or `max_minutes`: equal minutes compare batch sizes at equal cost). A trial
    that diverges is recorded and the search goes on. `out/search.json` holds the table, rewritten after each trial.
    `kwargs` go to `train` (model, process, task, ...).
    """
    if not lrs or not batch_sizes:
        raise ValueError("give at least one learning rate and one batch size")
    if config.max_minutes is None and config.warmup_steps * 2 > config.steps:
        logger.warning(
            "each trial warms the learning rate up for %d of its %d steps, so the peak rates are barely used: "
            "lower --warmup-steps",
            config.warmup_steps,
            config.steps,
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trials: list[Trial] = []
    grid = list(itertools.product(lrs, batch_sizes))
    for number, (lr, batch_size) in enumerate(grid, 1):
        folder = out / f"lr={lr:g},bs={batch_size}"
        trial = Trial(lr=lr, batch_size=batch_size, out=str(folder))
        logger.info("trial %d/%d: lr %g, batch size %d", number, len(grid), lr, batch_size)
        trial_config = dataclasses.replace(
            config, lr=lr, batch_size=batch_size, eval_every=0, save_every=max(1, config.steps)
        )
        try:
            result = train(data, trial_config, out=folder, **kwargs)
        except TrainingDiverged as exc:
            trial.error = str(exc)
        else:
            trial.steps = result.step
            trial.tokens_per_second = result.tokens_per_second
            if result.valid_bits_per_char is not None:
                trial.valid_bits_per_char = result.valid_bits_per_char
        trials.append(trial)
        trials.sort(key=lambda t: t.valid_bits_per_char)
        table = [dataclasses.asdict(t) for t in trials]
        (out / "search.json").write_text(json.dumps(table, indent=1, default=str) + "\n")
    return trials


def format_trials(trials: Sequence[Trial]) -> str:
    """The trials as a markdown table, best first."""
    lines = [
        "| lr | batch | steps | valid bits/char | tok/s | note |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for t in trials:
        note = "diverged" if t.error else ""
        lines.append(
            f"| {t.lr:g} | {t.batch_size} | {t.steps} | {t.valid_bits_per_char:.4f} | "
            f"{t.tokens_per_second:,.0f} | {note} |"
        )
    return "\n".join(lines)
