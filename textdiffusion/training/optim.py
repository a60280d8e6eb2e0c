"""AdamW with decoupled weight decay on matrices only, and a warm-up + cosine learning-rate schedule."""

from __future__ import annotations

import math

import torch

from textdiffusion.config import TrainConfig


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW (Loshchilov & Hutter 2019); norms, biases and embeddings are not decayed (as in nanoGPT)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.dim() < 2 or "embed" in name or "segment" in name:
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = all(p.is_cuda for p in decay + no_decay)
    return torch.optim.AdamW(
        groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=fused or None
    )


WARMUP_CAP = 200
"""The default warm-up is at most this many steps..."""
WARMUP_SHARE = 0.1
"""...and at most this share of the run (of --steps, and of the --max-minutes budget when one is set)."""


def default_warmup_steps(steps: int) -> int:
    """The warm-up a run of `steps` steps gets by default: min(200, 10% of the steps)."""
    return min(WARMUP_CAP, int(WARMUP_SHARE * steps))


def warmup_steps(config: TrainConfig) -> int:
    """The run's warm-up in steps: `--warmup-steps` when set, else `default_warmup_steps(--steps)`. The one place
    the default is resolved (with a time budget the default warm-up may also end earlier, see `learning_rate`)."""
    if config.warmup_steps is None:
        return default_warmup_steps(config.steps)
    return config.warmup_steps


def warmup_warning(config: TrainConfig) -> str | None:
    """A warning when a set `--warmup-steps` is longer than the default for the run's steps, else None.

    (A warm-up of 1 step is none: the first step already runs at the peak rate.)"""
    default = default_warmup_steps(config.steps)
    if config.warmup_steps is None or config.warmup_steps <= max(1, default):
        return None
    return (
        f"--warmup-steps {config.warmup_steps} is longer than the default min({WARMUP_CAP}, "
        f"{WARMUP_SHARE:.0%} of --steps {config.steps}) = {default}; leave it unset for the default"
    )


def learning_rate(step: int, config: TrainConfig, *, time_fraction: float = 0.0) -> float:
    """Linear warm-up to `lr`, then cosine decay to `lr * min_lr_ratio` at the last step (Loshchilov & Hutter 2017,
    SGDR, without restarts; the warm-up as in Goyal et al. 2017).

    With a time budget (`--max-minutes`), `time_fraction` is the share of it used so far, and the decay follows
    whichever of steps and time runs out first, so a run cut by the clock still ends at the low learning rate. The
    default warm-up (`--warmup-steps` unset) then ends at whichever comes first of its steps and 10% of the time
    budget, and the decay by time is measured from there.
    """
    warmup = warmup_steps(config)
    time_warmup = WARMUP_SHARE if config.warmup_steps is None and config.max_minutes else 0.0
    ramp = (step + 1) / warmup if warmup else 1.0
    if time_warmup:
        ramp = max(ramp, time_fraction / time_warmup)
    if ramp < 1.0:
        return config.lr * ramp
    step_progress = (step - warmup) / max(1, config.steps - warmup)
    time_progress = (time_fraction - time_warmup) / (1.0 - time_warmup)
    progress = min(1.0, max(step_progress, time_progress, 0.0))
    floor = config.lr * config.min_lr_ratio
    return floor + 0.5 * (config.lr - floor) * (1.0 + math.cos(math.pi * progress))
