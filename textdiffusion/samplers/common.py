"""Pieces shared by the samplers: the start state, the time grid and the fixed-position rule."""

from __future__ import annotations

import torch


def time_grid(steps: int, t_start: float, *, device: torch.device | str) -> torch.Tensor:
    """`steps + 1` times from `t_start` down to 0, evenly spaced (float32)."""
    if steps <= 0:
        raise ValueError(f"steps must be positive, got {steps}")
    if not 0.0 < t_start <= 1.0:
        raise ValueError(f"t_start must be in (0, 1], got {t_start}")
    return torch.linspace(t_start, 0.0, steps + 1, device=device)


def initial_state(
    process,
    shape: tuple[int, int],
    *,
    device: torch.device | str,
    generator: torch.Generator | None,
    x_init: torch.Tensor | None,
    fixed: torch.Tensor | None,
    t_start: float,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """x_t at `t_start`: the prior (t_start = 1) or `x_init` noised to `t_start`; `fixed` positions keep `x_init`.

    Returns:
        (xt, x_init, fixed) on `device`; for a continuous process (one with `encode`) x_init comes back as codes.
    """
    if fixed is not None and x_init is None:
        raise ValueError("`fixed` positions need `x_init` to say what they hold")
    if x_init is not None:
        x_init = x_init.to(device)
        if tuple(x_init.shape) != tuple(shape):
            raise ValueError(f"x_init has shape {tuple(x_init.shape)}, expected {tuple(shape)}")
    if fixed is not None:
        fixed = fixed.to(device).bool()
    if x_init is None or t_start >= 1.0:
        xt = process.prior(shape, device=device, generator=generator)
    else:
        t = torch.full((shape[0],), t_start, device=device)
        xt = process.q_sample(x_init, t, generator=generator)
    if x_init is not None and process.continuous:
        x_init = process.encode(x_init)  # a continuous state: fixed positions hold codes
    return keep_fixed(xt, x_init, fixed), x_init, fixed


def keep_fixed(
    xs: torch.Tensor, x_init: torch.Tensor | None, fixed: torch.Tensor | None
) -> torch.Tensor:
    """`xs` with the `fixed` (B, L) positions taken from `x_init` (ids (B, L), or codes (B, L, K))."""
    if fixed is None:
        return xs
    return torch.where(fixed if xs.dim() == 2 else fixed[..., None], x_init, xs)


def as_ids(process, xt: torch.Tensor) -> torch.Tensor:
    """Token ids of a sampler state: itself, or the nearest codes' ids for a continuous state."""
    return process.decode(xt) if process.continuous else xt
