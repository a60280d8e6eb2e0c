"""Reverse processes as plain functions over token ids, all with one signature:

`sample_<name>(model, process, shape, steps, *, generator=None, x_init=None, fixed=None, t_start=1.0, cond=None,
temperature=1.0, top_p=1.0, attention_mask=None, callback=None) -> ids (B, L)`.
"""

from __future__ import annotations

from collections.abc import Callable

from textdiffusion.samplers.ancestral import sample_ancestral, sample_cached
from textdiffusion.samplers.block import sample_block
from textdiffusion.samplers.confidence import sample_confidence

SAMPLERS: dict[str, Callable] = {
    "ancestral": sample_ancestral,
    "cached": sample_cached,
    "confidence": sample_confidence,
    "block": sample_block,
}


def get_sampler(name: str) -> Callable:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; choose from {sorted(SAMPLERS)}") from None


__all__ = [
    "SAMPLERS",
    "get_sampler",
    "sample_ancestral",
    "sample_block",
    "sample_cached",
    "sample_confidence",
]
