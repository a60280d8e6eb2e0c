"""Remasking sampling of masked diffusion: ReMDM (Wang, Schiff, Sahoo & Kuleshov 2025, "Remasking Discrete Diffusion
Models with Inference-Time Scaling", sec. 3-4).

MDLM's reverse step never changes a token once it is revealed, so an early mistake stays. ReMDM's posterior lets a
revealed token go back to the mask with probability sigma_t, and keeps the marginals of the forward process by
revealing a little more (eq. 6):

    z_t revealed:  q(z_s | z_t, x) = Cat((1 - sigma_t) [z_s = z_t] + sigma_t [z_s = mask])
    z_t masked:    q(z_s | z_t, x) = Cat((alpha_s - (1 - sigma_t) alpha_t) / (1 - alpha_t) [z_s = x]
                                          + (1 - alpha_s - sigma_t alpha_t) / (1 - alpha_t) [z_s = mask])

with x drawn from the denoiser and 0 <= sigma_t <= sigma_max = min(1, (1 - alpha_s) / alpha_t) (eq. 7). sigma = 0
is MDLM. The schedules of sec. 4.1:

    cap:      sigma_t = min(eta, sigma_max)
    rescale:  sigma_t = eta * sigma_max
    loop:     three phases over the sampler's clock: alpha rises linearly to alpha_on by t_on with sigma = 0 (MDLM),
              stays at alpha_on with sigma_t = eta until t_off (the tokens are re-predicted at a fixed noise level,
              an MCMC-like corrector), then rises to 1 with sigma = 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from textdiffusion.processes.base import categorical_from_uniform, uniform
from textdiffusion.samplers.common import initial_state, keep_fixed, time_grid

REMASK_SCHEDULES = ("cap", "rescale", "loop")


def sigma_max(alpha_t: torch.Tensor, alpha_s: torch.Tensor) -> torch.Tensor:
    """The largest remasking probability that keeps the marginals, min(1, (1 - alpha_s) / alpha_t) (ReMDM eq. 7);
    1 where alpha_t = 0 (nothing is revealed yet)."""
    ratio = (1.0 - alpha_s) / alpha_t.clamp(min=1e-12)
    return torch.where(alpha_t > 0, ratio.clamp(0.0, 1.0), torch.ones_like(ratio))


def remask_sigma(
    remask_schedule: str, alpha_t: torch.Tensor, alpha_s: torch.Tensor, *, eta: float
) -> torch.Tensor:
    """sigma_t of the cap or rescale schedule (ReMDM sec. 4.1); the loop's plateau uses `cap` at alpha_t = alpha_s."""
    bound = sigma_max(alpha_t, alpha_s)
    if remask_schedule in ("cap", "loop"):
        return torch.minimum(torch.full_like(bound, eta), bound)
    if remask_schedule == "rescale":
        return eta * bound
    raise ValueError(
        f"unknown remask schedule {remask_schedule!r}; choose from {', '.join(REMASK_SCHEDULES)}"
    )


def loop_alphas(
    grid: torch.Tensor,
    t_start: float,
    alpha_start: float,
    *,
    t_on: float,
    t_off: float,
    alpha_on: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """alpha at each time of the sampler's clock `grid` (steps + 1,) for ReMDM-loop, and which steps loop.

    With progress u = (t_start - t) / t_start (u = 1 - t from t_start = 1, as in the paper), alpha is piecewise
    linear: from alpha(t_start) to a = max(alpha_on, alpha(t_start)) for u <= 1 - t_on, a until u = 1 - t_off, then
    up to 1 at u = 1. A step loops (sigma = eta) when both its ends lie on the plateau.

    Returns:
        alphas float64 (steps + 1,), looping bool (steps,).
    """
    u = (t_start - grid.double()) / t_start  # (steps + 1,) in [0, 1]
    u_on, u_off = 1.0 - t_on, 1.0 - t_off
    top = max(alpha_on, alpha_start)
    rise = alpha_start + (top - alpha_start) * (u / u_on if u_on > 0 else torch.ones_like(u))
    fall = top + (1.0 - top) * ((u - u_off) / (1.0 - u_off) if u_off < 1 else torch.zeros_like(u))
    alphas = torch.where(u <= u_on, rise, torch.where(u <= u_off, torch.full_like(u, top), fall))
    eps = 1e-6  # the clock is float32
    looping = (u[:-1] >= u_on - eps) & (u[1:] <= u_off + eps)
    return alphas.clamp(0.0, 1.0), looping


def _time_at(process, alphas: torch.Tensor) -> torch.Tensor:
    """The times t with alpha(t) = `alphas` (bisection; alpha decreases in t), for time-conditioned denoisers."""
    lo, hi = torch.zeros_like(alphas), torch.ones_like(alphas)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        above = process.alpha(mid) > alphas  # still too clean: the time is later
        lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
    return 0.5 * (lo + hi)


@torch.no_grad()
def sample_remask(
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
    remask_schedule: str = "cap",
    eta: float = 0.02,
    t_on: float = 0.55,
    t_off: float = 0.05,
    alpha_on: float = 0.9,
) -> torch.Tensor:
    """ReMDM sampling: MDLM's ancestral steps, where revealed tokens may go back to the mask (module docstring).

    Fixed positions, and positions outside `attention_mask`, are never remasked. Where a step changed no token and
    the denoiser ignores t, its prediction is reused (MDLM's caching).

    Args: as `sample_ancestral`, plus
        remask_schedule: cap, rescale or loop (ReMDM sec. 4.1).
        eta: the schedule's remasking strength in [0, 1] (paper defaults: cap 0.008, rescale 0.015, loop 0.02).
        t_on, t_off, alpha_on: loop: the clock times where the loop starts and ends, and alpha during it
            (paper: 0.55, 0.05, 0.9).

    Returns:
        int64 ids (B, L).
    """
    mask_id = getattr(process, "mask_id", None)
    if mask_id is None:
        raise ValueError(
            f"the remask sampler needs a masked process, not {process!r}; use 'ancestral'"
        )
    if remask_schedule not in REMASK_SCHEDULES:
        raise ValueError(
            f"unknown remask schedule {remask_schedule!r}; choose from {', '.join(REMASK_SCHEDULES)}"
        )
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    if remask_schedule == "loop" and not (0.0 <= t_off < t_on <= 1.0 and 0.0 < alpha_on < 1.0):
        raise ValueError(
            f"the remask loop needs 0 <= t_off < t_on <= 1 and 0 < alpha_on < 1, got t_on={t_on}, "
            f"t_off={t_off}, alpha_on={alpha_on}"
        )
    device = next(model.parameters()).device
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
    clock = grid.tolist()  # host copies: no device sync per step
    if remask_schedule == "loop":
        alpha_start = float(process.alpha(torch.tensor([t_start], dtype=torch.float64)))
        alphas, looping = loop_alphas(
            grid.cpu(), t_start, alpha_start, t_on=t_on, t_off=t_off, alpha_on=alpha_on
        )
        sigmas = torch.where(looping, remask_sigma("cap", alphas[:-1], alphas[1:], eta=eta), 0.0)
        model_times = _time_at(process, alphas).float().to(device)
    else:
        alphas = process.alpha(grid.double().cpu())
        sigmas = remask_sigma(remask_schedule, alphas[:-1], alphas[1:], eta=eta)
        model_times = grid
    # reveal probability of a masked token, (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t) (ReMDM eq. 6)
    reveals = (
        (alphas[1:] - (1.0 - sigmas) * alphas[:-1]) / (1.0 - alphas[:-1]).clamp(min=1e-12)
    ).clamp(0.0, 1.0)
    reveals[-1], sigmas[-1] = 1.0, 0.0  # the last step leaves no mask
    reveal_p, sigma_p = reveals.tolist(), sigmas.tolist()
    can_remask = torch.ones(shape, dtype=torch.bool, device=device)
    if fixed is not None:
        can_remask &= ~fixed
    if attention_mask is not None:
        can_remask &= attention_mask.to(device).bool()
    reuse = not getattr(model.config, "time_conditioning", False)
    logits = None
    for step in range(steps):
        if logits is None or not reuse:
            t = model_times[step].expand(shape[0])
            logits = model(xt, t, cond=cond, attention_mask=attention_mask)
        masked = xt == mask_id  # (B, L)
        # one uniform per position decides its move (reveal if masked, remask if revealed), one draws its token;
        # both are drawn for every position so the random stream does not depend on the state
        u_move = uniform(shape, device=device, generator=generator, dtype=torch.float64)
        u_token = uniform(shape + (1,), device=device, generator=generator, dtype=torch.float64)
        reveal = masked & (u_move < reveal_p[step])
        remask = ~masked & can_remask & (u_move < sigma_p[step])
        xs = xt.masked_fill(remask, mask_id)
        rows = reveal.nonzero(as_tuple=True)  # (n,) each; the one host-device sync of a step
        if rows[0].numel():
            probs = process.probs(logits[rows], temperature=temperature, top_p=top_p)  # (n, V)
            xs[rows] = categorical_from_uniform(probs, u_token[rows])
        xs = keep_fixed(xs, x_init, fixed)
        if callback is not None:
            callback(step, clock[step + 1], xs, logits)
        if not torch.equal(xs, xt):
            logits = None
        xt = xs
    return xt
