"""Tasks, text in -> text out. A pipeline decides x_init, fixed positions, t_start and cond, then calls a sampler.

The shared machinery is in base.py; each task's pipeline lives with the rest of its task in `textdiffusion.tasks`
and is exported here.
"""

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

__all__ = [
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
