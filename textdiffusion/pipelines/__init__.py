"""Tasks, text in -> text out. A pipeline decides x_init, fixed positions, t_start and cond, then calls a sampler."""

from textdiffusion.pipelines.base import DiffusionPipeline, InputError, SampleOutput
from textdiffusion.pipelines.caption import CaptionOutput, CaptionPipeline
from textdiffusion.pipelines.denoise import DenoiseOutput, DenoisePipeline
from textdiffusion.pipelines.generate import GenerationOutput, GenerationPipeline
from textdiffusion.pipelines.infill import InfillOutput, InfillPipeline
from textdiffusion.pipelines.style import StyleOutput, StylePipeline

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
