"""Forward processes: the math of q(x_t | x_0), its ELBO and one reverse step."""

from __future__ import annotations

from collections.abc import Iterable

from textdiffusion.config import ProcessConfig
from textdiffusion.processes.base import Process, filter_logits, sample_categorical, uniform
from textdiffusion.processes.gaussian import GaussianProcess, analog_bits
from textdiffusion.processes.masked import MaskedProcess
from textdiffusion.processes.schedules import SCHEDULES, Schedule, build_schedule
from textdiffusion.processes.uniform import UniformProcess

__all__ = [
    "SCHEDULES",
    "GaussianProcess",
    "MaskedProcess",
    "Process",
    "Schedule",
    "UniformProcess",
    "analog_bits",
    "build_process",
    "build_schedule",
    "filter_logits",
    "sample_categorical",
    "uniform",
]


def build_process(
    config: ProcessConfig,
    *,
    mask_id: int,
    vocab_size: int | None = None,
    special_ids: Iterable[int] = (),
) -> MaskedProcess | UniformProcess | GaussianProcess:
    """The forward process named by `config`: masked (absorbing into `mask_id`), uniform (noise drawn from the
    `vocab_size` ids other than `special_ids`) or gaussian (the analog-bit codes of those ids, with Gaussian noise)."""
    common = dict(t_min=config.t_min, antithetic=config.antithetic)
    if config.name == "masked":
        return MaskedProcess(build_schedule(config.schedule), mask_id=mask_id, **common)
    if config.name in ("uniform", "gaussian"):
        if vocab_size is None:
            raise ValueError(f"the {config.name} process needs the vocabulary size")
        cls = UniformProcess if config.name == "uniform" else GaussianProcess
        return cls(
            build_schedule(config.schedule),
            vocab_size=vocab_size,
            special_ids=special_ids,
            **common,
        )
    raise ValueError(
        f"unknown process {config.name!r}; choose from ['masked', 'uniform', 'gaussian']"
    )
