"""Forward processes: the math of q(x_t | x_0), its ELBO and one reverse step."""

from __future__ import annotations

from textdiffusion.config import ProcessConfig
from textdiffusion.processes.base import Process, filter_logits, sample_categorical, uniform
from textdiffusion.processes.masked import MaskedProcess
from textdiffusion.processes.schedules import SCHEDULES, Schedule, build_schedule

__all__ = [
    "SCHEDULES",
    "MaskedProcess",
    "Process",
    "Schedule",
    "build_process",
    "build_schedule",
    "filter_logits",
    "sample_categorical",
    "uniform",
]


def build_process(config: ProcessConfig, *, mask_id: int) -> MaskedProcess:
    """The forward process named by `config` over a vocabulary whose absorbing token is `mask_id`."""
    if config.name == "masked":
        return MaskedProcess(
            build_schedule(config.schedule),
            mask_id=mask_id,
            t_min=config.t_min,
            antithetic=config.antithetic,
        )
    raise ValueError(f"unknown process {config.name!r}; choose from ['masked']")
