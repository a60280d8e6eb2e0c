"""Ancestral sampling of masked diffusion (MDLM, Sahoo et al. 2024, Alg. 2), with and without caching."""

from __future__ import annotations

from collections.abc import Callable

import torch

from textdiffusion.samplers.common import as_ids, initial_state, keep_fixed, time_grid


@torch.no_grad()
def sample_ancestral(
    model: torch.nn.Module,
    process,
    shape: tuple[int, int],
    steps: int,
    *,
    generator: torch.Generator | None = None,
    x_init: torch.Tensor | None = None,
    fixed: torch.Tensor | None = None,
    t_start: float = 1.0,
    cond=None,
    temperature: float = 1.0,
    top_p: float = 1.0,
    attention_mask: torch.Tensor | None = None,
    callback: Callable | None = None,
    cache: bool = False,
) -> torch.Tensor:
    """Run the reverse process from `t_start` to 0 in `steps` equal time steps, one network call per step.

    Args:
        model: the denoiser, `model(xt, t, cond=..., attention_mask=...) -> logits (B, L, V)`.
        process: the forward process (its `reverse_step` does the math of one step).
        shape: (B, L) of the ids to generate.
        steps: refinement steps.
        generator: source of every random draw (same seed, same ids).
        x_init: int64 (B, L) starting ids; with `t_start` < 1 they are noised to `t_start` first.
        fixed: bool (B, L), positions copied from `x_init` at every step.
        t_start: starting time in (0, 1].
        cond: conditioning passed to the model.
        temperature, top_p: applied to the denoiser's predictions.
        attention_mask: bool (B, L), True at real target positions.
        callback: `callback(step, t, xt, logits)` after each step, with the new state as token ids.
        cache: reuse the last prediction when no token changed (MDLM's caching; valid because the model does not
            depend on t). Then a step where nothing is revealed costs no network call.

    Returns:
        int64 ids (B, L).
    """
    device = next(model.parameters()).device
    if cache and getattr(model.config, "time_conditioning", False):
        raise ValueError(
            "the cached sampler needs a model that is not time-conditioned; use 'ancestral'"
        )
    xt, x_init, fixed = initial_state(
        process,
        shape,
        device=device,
        generator=generator,
        x_init=x_init,
        fixed=fixed,
        t_start=t_start,
    )
    grid = time_grid(steps, t_start, device=device)
    times = (
        grid.tolist() if callback is not None else None
    )  # host copies: no device sync per callback
    logits = None
    for step in range(steps):
        t = grid[step].expand(shape[0])
        s = grid[step + 1].expand(shape[0])
        if logits is None or not cache:
            logits = model(xt, t, cond=cond, attention_mask=attention_mask)
        xs = process.reverse_step(
            logits, xt, t, s, generator=generator, temperature=temperature, top_p=top_p
        )
        xs = keep_fixed(xs, x_init, fixed)
        if cache and not torch.equal(xs, xt):
            logits_for_callback, logits = logits, None
        else:
            logits_for_callback = logits
        if callback is not None:
            callback(step, times[step + 1], as_ids(process, xs), logits_for_callback)
        xt = xs
    return as_ids(process, xt)


def sample_cached(model, process, shape, steps, **kwargs) -> torch.Tensor:
    """Ancestral sampling that calls the network only after a step changed some token (MDLM sec. 4.2)."""
    return sample_ancestral(model, process, shape, steps, cache=True, **kwargs)
