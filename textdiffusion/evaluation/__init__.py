"""Evaluation: likelihood bounds, and (for the tasks) correction and sample-quality metrics."""

from textdiffusion.evaluation.elbo import (
    NLLResult,
    autoregressive_nll,
    diffusion_nll,
    discrete_time_nll,
    evaluate_text,
    windows,
)

__all__ = [
    "NLLResult",
    "autoregressive_nll",
    "diffusion_nll",
    "discrete_time_nll",
    "evaluate_text",
    "windows",
]
