"""textdiffusion: diffusion models for natural language.

Public names are imported lazily so that `import textdiffusion` (and the CLI's `--help`) stays fast;
torch is imported the first time a model-related name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # configs
    "ModelConfig": "textdiffusion.config",
    "ProcessConfig": "textdiffusion.config",
    "SampleConfig": "textdiffusion.config",
    "DataConfig": "textdiffusion.config",
    "TrainConfig": "textdiffusion.config",
    "ConfigError": "textdiffusion.config",
    # building blocks
    "DiffusionTransformer": "textdiffusion.networks.transformer",
    "MaskedProcess": "textdiffusion.processes.masked",
    "build_process": "textdiffusion.processes",
    "Corruptor": "textdiffusion.tasks.denoise.corruption",
    "CorruptionConfig": "textdiffusion.tasks.denoise.corruption",
    "SAMPLERS": "textdiffusion.samplers",
    "Tokenizer": "textdiffusion.data.tokenizers",
    # checkpoints
    "save_pretrained": "textdiffusion.checkpoint",
    "load_pretrained": "textdiffusion.checkpoint",
    "CheckpointError": "textdiffusion.checkpoint",
    # tasks
    "pipeline": "textdiffusion.pipelines",
    "TASKS": "textdiffusion.tasks",
    "DiffusionPipeline": "textdiffusion.pipelines",
    "DenoisePipeline": "textdiffusion.pipelines",
    "GenerationPipeline": "textdiffusion.pipelines",
    "InfillPipeline": "textdiffusion.pipelines",
    "StylePipeline": "textdiffusion.pipelines",
    "CaptionPipeline": "textdiffusion.pipelines",
    # training
    "train": "textdiffusion.training",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'textdiffusion' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
