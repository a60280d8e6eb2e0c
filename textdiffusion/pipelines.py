"""Tasks, text in -> text out. A pipeline decides x_init, fixed positions, t_start and cond, then calls a sampler.

The shared machinery is in tasks/pipeline.py; each task's pipeline lives with the rest of its task in
`textdiffusion.tasks` and is exported here, with `pipeline(model)`, which picks the right one for a model.
"""

from __future__ import annotations

import os

from textdiffusion.tasks.caption import CaptionOutput, CaptionPipeline
from textdiffusion.tasks.denoise import DenoiseOutput, DenoisePipeline
from textdiffusion.tasks.lm import (
    GenerationOutput,
    GenerationPipeline,
    InfillOutput,
    InfillPipeline,
)
from textdiffusion.tasks.pipeline import DiffusionPipeline, InputError, SampleOutput
from textdiffusion.tasks.style import StyleOutput, StylePipeline


def pipeline(model: str | os.PathLike, *, device: str = "cpu") -> DiffusionPipeline:
    """The pipeline of the task a model was trained for (config.json's `task`): a GenerationPipeline for a language
    model, a DenoisePipeline for a corrector, and so on. `model`: a shipped name, a local folder or a hub id."""
    from textdiffusion.checkpoint import load_pretrained
    from textdiffusion.tasks import get_task

    pretrained = load_pretrained(model, device=device)
    return get_task(pretrained.config.task).pipeline(pretrained)


__all__ = [
    "pipeline",
    "CaptionOutput",
    "CaptionPipeline",
    "DenoiseOutput",
    "DenoisePipeline",
    "DiffusionPipeline",
    "GenerationOutput",
    "GenerationPipeline",
    "InfillOutput",
    "InfillPipeline",
    "InputError",
    "SampleOutput",
    "StyleOutput",
    "StylePipeline",
]
