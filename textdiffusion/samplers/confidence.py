"""Confidence-based parallel decoding: MaskGIT (Chang et al. 2022, sec. 3.2) / LLaDA's low-confidence remasking
(Nie et al. 2025, Alg. 5). Every step predicts all masked tokens, keeps the most confident ones and leaves the rest
masked for the next step.

Revealing strictly the most confident tokens first collapses on small models: frequent, easy continuations win every
step and the text repeats a few words. With `order_temperature` tau > 0 the order is sampled instead: the tokens
revealed are the top ones by log c + tau * g, g ~ Gumbel(0, 1) per position, which is drawing positions without
replacement with probability proportional to c^(1/tau) (the Gumbel-top-k trick, Kool et al. 2019; MaskGIT's
"choice temperature" adds the same noise). tau = 0 is the greedy order, tau -> infinity a uniformly random one.

With `order="left"` every step reveals the first masked position of each run of masks instead: a blank (or a
rewrite) is written left to right, reading the text on both sides, as an autoregressive model would write it but
with the right context seen. With a `terminator` (PAD, which ends a variable-length blank or a seq2seq target), a
run whose revealed token is the terminator is ended: its masked positions after it take the terminator too, so a
blank of K positions that holds a 5-letter word costs 6 network calls, not K.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from textdiffusion.processes.base import categorical_from_uniform, uniform
from textdiffusion.samplers.common import initial_state, keep_fixed, time_grid


@torch.no_grad()
def sample_confidence(
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
    threshold: float | None = None,
    order_temperature: float = 0.0,
    order: str = "confidence",
    terminator: int | None = None,
) -> torch.Tensor:
    """Unmask the most confident predictions each step.

    By count (default): the masked tokens of each row are revealed on a linear schedule, so that all are revealed
    after `steps` steps (ceil(n / steps) or so per step). By threshold: every prediction whose probability exceeds
    `threshold` is revealed (at least the most confident one per row), which stops early on easy text; `steps`
    then caps the number of network calls and the last step reveals everything left.

    Args: as `sample_ancestral`, plus `threshold`, and
        order_temperature: tau >= 0 of the sampled order (module docstring); 0, the default, reveals the most
            confident first. Applies to the count schedule, not to `threshold`.
        order: "confidence" (the count schedule or `threshold`), or "left": the first masked position of each run
            of masks every step (`steps` then caps the calls: the last step reveals everything left).
        terminator: a token id that ends its run of masks when revealed (module docstring); None: none.

    Returns:
        int64 ids (B, L).
    """
    if order_temperature < 0:
        raise ValueError(f"order_temperature must be >= 0, got {order_temperature}")
    if order not in ("confidence", "left"):
        raise ValueError(f"order must be confidence or left, got {order!r}")
    if order == "left" and threshold is not None:
        raise ValueError(
            "order left reveals one position per run of masks; it cannot go with threshold"
        )
    if order_temperature > 0 and threshold is not None:
        raise ValueError(
            "order_temperature samples the count schedule's order; it cannot go with threshold"
        )
    device = next(model.parameters()).device
    mask_id = getattr(process, "mask_id", None)
    if mask_id is None:
        raise ValueError(
            f"the confidence sampler unmasks tokens and needs a masked process, not {process!r}; "
            "use 'ancestral'"
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
    n_start = (xt == mask_id).sum(dim=1)  # (B,) masked tokens to reveal
    for step in range(steps):
        masked = xt == mask_id  # (B, L)
        rows = masked.nonzero(as_tuple=True)  # (n,) each; the one host-device sync of a step
        if rows[0].numel() == 0:
            break
        t = grid[step].expand(shape[0])
        logits = model(xt, t, cond=cond, attention_mask=attention_mask)
        # Tokens and confidences are needed at the masked positions only; the uniforms are drawn for all of them
        # (as sample_categorical over (B, L, V) would) so the random stream does not depend on which are masked.
        u = uniform(xt.shape + (1,), device=device, generator=generator, dtype=torch.float64)
        probs = process.probs(logits[rows], temperature=temperature, top_p=top_p)  # (n, V)
        drawn = categorical_from_uniform(probs, u[rows])  # (n,)
        tokens = xt.clone()
        tokens[rows] = drawn  # (B, L)
        confidence = torch.full(xt.shape, -1.0, device=device)
        confidence[rows] = probs.gather(-1, drawn[:, None]).squeeze(
            -1
        )  # (B, L), -1 where not masked
        n_masked = masked.sum(dim=1)  # (B,)
        if step == steps - 1:
            reveal = masked
        elif order == "left":  # the first position of each run of masks
            reveal = masked & ~torch.nn.functional.pad(masked[:, :-1], (1, 0), value=False)
        elif threshold is not None:
            best = confidence.amax(dim=1, keepdim=True)  # (B, 1)
            reveal = masked & ((confidence > threshold) | (confidence >= best))
        else:
            # remaining after this step on the linear schedule n_start * (1 - (step + 1) / steps)
            remaining = (n_start * (steps - step - 1)) // steps  # (B,)
            count = (n_masked - remaining).clamp(min=0)  # (B,)
            score = confidence
            if order_temperature > 0:
                g = uniform(xt.shape, device=device, generator=generator, dtype=torch.float64)
                g = -torch.log(-torch.log(g.clamp(min=1e-300)))  # (B, L) Gumbel(0, 1)
                score = torch.where(
                    masked,
                    confidence.double().clamp(min=1e-300).log() + order_temperature * g,
                    -torch.inf,
                )
            ranks = score.argsort(dim=1, descending=True).argsort(
                dim=1
            )  # (B, L) 0 = first to reveal
            reveal = masked & (ranks < count[:, None])
        xs = keep_fixed(torch.where(reveal, tokens, xt), x_init, fixed)
        if terminator is not None:
            xs = _end_runs(xs, reveal & (xs == terminator), mask_id, terminator)
        if callback is not None:
            callback(step, times[step + 1], xs, logits)
        xt = xs
    return xt


def _end_runs(x: torch.Tensor, ended: torch.Tensor, mask_id: int, terminator: int) -> torch.Tensor:
    """x (B, L) with the masked positions that follow an `ended` position (B, L) in the same run of masks set to
    `terminator`."""
    while True:
        follow = torch.nn.functional.pad(ended[:, :-1], (1, 0), value=False) & (x == mask_id)
        if not follow.any():
            return x
        x = torch.where(follow, terminator, x)
        ended = follow
