"""Reverse processes as plain functions over token ids, all with one signature:

`sample_<name>(model, process, shape, steps, *, generator=None, x_init=None, fixed=None, t_start=1.0, cond=None,
temperature=1.0, top_p=1.0, attention_mask=None, callback=None) -> ids (B, L)`.
"""

from __future__ import annotations

from collections.abc import Callable

from textdiffusion.samplers.ancestral import sample_ancestral, sample_cached
from textdiffusion.samplers.block import sample_block
from textdiffusion.samplers.confidence import sample_confidence
from textdiffusion.samplers.remask import sample_remask

SAMPLERS: dict[str, Callable] = {
    "ancestral": sample_ancestral,
    "cached": sample_cached,
    "confidence": sample_confidence,
    "remask": sample_remask,
    "block": sample_block,
}

SAMPLER_OPTIONS: dict[str, tuple[str, ...]] = {
    "confidence": ("threshold", "order_temperature", "order"),
    "remask": ("remask_schedule", "eta", "t_on", "t_off", "alpha_on"),
}
"""The knobs each sampler takes beyond the shared signature; each is also a `SampleConfig` field of that name."""


def get_sampler(name: str) -> Callable:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; choose from {sorted(SAMPLERS)}") from None


__all__ = [
    "SAMPLERS",
    "SAMPLER_OPTIONS",
    "get_sampler",
    "sample_ancestral",
    "sample_block",
    "sample_cached",
    "sample_confidence",
    "sample_remask",
]
