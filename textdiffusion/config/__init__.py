"""Typed configuration: one dataclass per component, validated at construction and saved beside the weights.

model.py: the network, forward process and sampler defaults; training.py: data, training and search; tasks.py: each
task's settings; base.py: the error, the checks and the JSON round trip. Nothing here imports torch, so the CLI can
build and print configs before paying for the torch import.
"""

from textdiffusion.config.base import FORMAT_VERSION, ConfigError, config_from_dict, config_to_dict
from textdiffusion.config.model import (
    PRESETS,
    ModelConfig,
    Objective,
    ProcessConfig,
    ProcessName,
    RemaskSchedule,
    SampleConfig,
    SamplerName,
    ScheduleName,
    UnmaskOrder,
)
from textdiffusion.config.tasks import (
    TASK_CONFIGS,
    CaptionConfig,
    DenoiseConfig,
    LMConfig,
    StyleConfig,
    TaskName,
)
from textdiffusion.config.training import DataConfig, SearchConfig, TrainConfig

__all__ = [
    "FORMAT_VERSION", "PRESETS", "TASK_CONFIGS", "CaptionConfig", "ConfigError", "DataConfig", "DenoiseConfig",
    "LMConfig", "ModelConfig", "Objective", "ProcessConfig", "ProcessName", "RemaskSchedule", "SampleConfig",
    "SamplerName", "ScheduleName", "SearchConfig", "StyleConfig", "TaskName", "TrainConfig", "UnmaskOrder",
    "config_from_dict", "config_to_dict",
]  # fmt: skip
