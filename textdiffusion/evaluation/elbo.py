"""Likelihood evaluation: the diffusion ELBO (an upper bound on the NLL) and the exact NLL of the AR baseline.

Text is cut into windows of the model's context; each window is scored on its own, and the total is reported per
token and per character (bits per character compares models with different tokenizers).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import torch
import torch.nn.functional as F

from textdiffusion.evaluation.block_elbo import block_diffusion_nll
from textdiffusion.evaluation.strata import collapsed_strata, stratified
from textdiffusion.processes.base import uniform

LN2 = math.log(2.0)


@dataclasses.dataclass
class NLLResult:
    """Negative log-likelihood (or its ELBO bound) of a text."""

    nll_per_token: float
    """nats per token."""
    perplexity_bound: float
    """exp(nll_per_token); an upper bound for diffusion models, exact for AR."""
    bits_per_char: float
    n_tokens: int
    n_chars: int
    stderr_bits_per_char: float
    """Monte Carlo standard error of bits_per_char (0 for exact AR scores)."""
    samples: int
    """Monte Carlo samples per window (diffusion)."""
    exact: bool
    """True for the AR NLL, False for the diffusion bound."""
    steps: int | None = None
    """Refinement steps of the sampler the bound is for (None: the continuous-time bound)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def windows(ids: list[int], length: int, *, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a token list into windows (N, length) padded with `pad_id`, and their validity mask (N, length)."""
    if not ids:
        raise ValueError("nothing to evaluate: the text is empty")
    n = math.ceil(len(ids) / length)
    x = torch.full((n, length), pad_id, dtype=torch.long)
    valid = torch.zeros(n, length, dtype=torch.bool)
    for i in range(n):
        chunk = ids[i * length : (i + 1) * length]
        x[i, : len(chunk)] = torch.tensor(chunk)
        valid[i, : len(chunk)] = True
    return x, valid


@torch.no_grad()
def diffusion_nll(
    model: torch.nn.Module,
    process,
    x0: torch.Tensor,
    valid: torch.Tensor,
    *,
    samples: int = 32,
    batch_size: int = 32,
    generator: torch.Generator | None = None,
    cond=None,
    noise: tuple[torch.Tensor, torch.Tensor] | None = None,
    visible: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ELBO of each window (nats), with the count-stratified estimator of the masked process.

    For a window of n tokens the continuous-time ELBO equals E_{k ~ U{1..n}} [ n/k sum_{masked} CE ] where exactly k
    uniformly chosen tokens are masked (Ou et al. 2024, Prop. 3.3). The `samples` draws of k per window are
    stratified over {1..n}, which removes most of the Monte Carlo variance.

    Args:
        x0: int64 (N, L) windows; valid: bool (N, L) real tokens.
        cond: a `Cond` of N rows (e.g. the source text of a denoiser): then the conditional ELBO of x0 given it.
        noise: (offsets, scores), the U[0, 1) draws to use instead of the generator's (masked process only):
            float64 (N, S) offsets within the strata and (N, S, L) position scores (`q_sample_count`). Windows given
            the same draws are compared with common random numbers.
        visible: bool (N, L), the positions the network attends to (default: `valid`). Infilling scores the
            context of a text (`valid`) with its blanks left masked but visible (masked process only).

    Returns:
        (mean, var): float64 (N,) estimated ELBO of each window and the (collapsed-strata) variance of that
        estimate.
    """
    if getattr(getattr(model, "config", None), "block_size", 0) and noise is None:
        return block_diffusion_nll(
            model,
            process,
            x0,
            valid,
            samples=samples,
            batch_size=batch_size,
            generator=generator,
            cond=cond,
        )
    if not process.absorbing:
        return _time_stratified_nll(
            model,
            process,
            x0,
            valid,
            samples=samples,
            batch_size=batch_size,
            generator=generator,
            cond=cond,
        )
    device = next(model.parameters()).device
    N = x0.shape[0]
    n_valid = valid.sum(dim=1)  # (N,)
    # stratified counts: k_j = floor((j + u_j) n / S) + 1, j = 0..S-1
    if noise is None:
        u = uniform((N, samples), device="cpu", generator=generator, dtype=torch.float64)
        scores = None
    else:
        u, scores = noise[0].cpu(), noise[1].reshape(N * samples, -1)
    counts = (stratified(u) * n_valid[:, None]).floor().long() + 1  # (N, S) in 1..n
    counts = torch.minimum(counts, n_valid[:, None])
    window_index = torch.arange(N)[:, None].expand(N, samples).reshape(-1)  # (N*S,)
    flat_counts = counts.reshape(-1)  # (N*S,)
    estimates = torch.zeros(N * samples, dtype=torch.float64)
    for start in range(0, N * samples, batch_size):
        idx = window_index[start : start + batch_size]
        k = flat_counts[start : start + batch_size]
        xb, vb = x0[idx].to(device), valid[idx].to(device)
        seen = vb if visible is None else visible[idx].to(device)
        draws = None if scores is None else scores[start : start + batch_size].to(device)
        xt = process.q_sample_count(xb, k.to(device), valid=vb, generator=generator, scores=draws)
        c = None if cond is None else cond.index(idx.to(device))
        ce = _masked_nll(model, process, xt, xb, vb, None, c, visible=seen)  # (b,)
        estimates[start : start + batch_size] = ce * n_valid[idx].double() / k.double()
    return collapsed_strata(estimates.view(N, samples))  # (N, S), column j from stratum j


@torch.no_grad()
def discrete_time_nll(
    model: torch.nn.Module,
    process,
    x0: torch.Tensor,
    valid: torch.Tensor,
    *,
    steps: int,
    samples: int = 32,
    batch_size: int = 32,
    generator: torch.Generator | None = None,
    cond=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ELBO of each window (nats) of the `steps`-step ancestral sampler of masked diffusion.

    The sampler walks down the grid t_i = i / T of `samplers.common.time_grid`; from t_i to t_{i-1} each masked token
    is revealed with probability (alpha_{i-1} - alpha_i) / (1 - alpha_i) and drawn from p_theta(x_0 | x_{t_i}). The
    negative log-likelihood of what it generates is bounded by the discrete-time ELBO (MDLM, Sahoo et al. 2024, eq. 8)

        L_T = sum_{i=1..T} E_{x_{t_i} ~ q} [ (alpha_{i-1} - alpha_i) / (1 - alpha_i) sum_{masked} -log p_theta(x_0 | x_{t_i}) ]

    (no prior or reconstruction term: alpha(1) = 0 and alpha(0) = 1), which falls towards the continuous-time bound
    of `diffusion_nll` as T grows: how many refinement steps a model needs. At T = 1 it is the exact NLL of drawing
    every token at once. It bounds the `ancestral` and `cached` samplers at temperature 1 and top-p 1 (the other
    samplers choose tokens differently). Estimated with the step i stratified over {1..T}, `samples` per window.

    Returns:
        (mean, var): float64 (N,) as `diffusion_nll`.
    """
    from textdiffusion.processes.masked import MaskedProcess
    from textdiffusion.samplers.common import time_grid

    if not isinstance(process, MaskedProcess):
        raise ValueError(
            "the bound of the T-step sampler is implemented for masked diffusion only; "
            f"this model uses {type(process).__name__}"
        )
    if getattr(model.config, "block_size", 0):
        return block_diffusion_nll(
            model,
            process,
            x0,
            valid,
            samples=samples,
            batch_size=batch_size,
            generator=generator,
            cond=cond,
            steps=steps,
        )
    device = next(model.parameters()).device
    # t_0 = 0 .. t_T = 1: the sampler's own float32 times
    grid = time_grid(steps, 1.0, device="cpu").flip(0)
    alpha = process.alpha(grid).double()  # (T + 1,)
    # (T,): the weight of step i at index i - 1, times T (the step is drawn with probability 1 / T); a step whose
    # float32 alpha rounds to 1 masks nothing and reveals nothing, in the sampler as here
    masked_share = 1.0 - alpha[1:]
    weights = steps * (alpha[:-1] - alpha[1:]) / masked_share.clamp(min=1e-300)
    N = x0.shape[0]
    u = uniform((N, samples), device="cpu", generator=generator, dtype=torch.float64)
    step = (stratified(u) * steps).long().clamp(max=steps - 1).reshape(-1)  # (N*S,) i - 1 in 0..T-1
    window_index = torch.arange(N)[:, None].expand(N, samples).reshape(-1)  # (N*S,)
    estimates = torch.zeros(N * samples, dtype=torch.float64)
    for start in range(0, N * samples, batch_size):
        idx, i = window_index[start : start + batch_size], step[start : start + batch_size]
        t = grid[i + 1].to(device)
        xb, vb = x0[idx].to(device), valid[idx].to(device)
        # padding may be masked too: it is hidden from attention and left out of the sum
        xt = process.q_sample(xb, t, generator=generator)
        c = None if cond is None else cond.index(idx.to(device))
        estimates[start : start + batch_size] = weights[i] * _masked_nll(
            model, process, xt, xb, vb, t, c
        )
    return collapsed_strata(estimates.view(N, samples))


def _masked_nll(model, process, xt, x0, valid, t, cond, *, visible=None) -> torch.Tensor:
    """-log p_theta(x_0 | x_t) summed over the masked real tokens of each row: float64 (b,) on the CPU. The output
    layer runs at the masked positions only, the only logits the cross-entropy reads; padding (positions not
    `visible`, by default not `valid`) is hidden from attention and, if masked, left out of the sum."""
    visible = valid if visible is None else visible
    logits = model(
        xt,
        t,
        cond=cond,
        attention_mask=None if bool(visible.all()) else visible,
        output_mask=process.output_mask(xt),
    )
    ce = process.cross_entropy(logits, x0, xt).double()
    # never 0 * inf: an infill blank's target is the mask itself, which the model never predicts
    return torch.where(valid, ce, torch.zeros_like(ce)).sum(dim=1).cpu()


def _time_stratified_nll(
    model, process, x0, valid, *, samples, batch_size, generator, cond
) -> tuple[torch.Tensor, torch.Tensor]:
    """ELBO of each window for a process without a count form: int_0^1 sum_tokens loss(t) dt, estimated with the
    `samples` times of a window stratified over [0, 1], plus the process's end terms (`endpoint_nll`: the decoder and
    prior of Gaussian diffusion) where it has them."""
    device = next(model.parameters()).device
    N = x0.shape[0]
    u = uniform((N, samples), device="cpu", generator=generator, dtype=torch.float64)
    times = stratified(u).float().reshape(-1)
    window_index = torch.arange(N)[:, None].expand(N, samples).reshape(-1)  # (N*S,)
    estimates = torch.zeros(N * samples, dtype=torch.float64)
    for start in range(0, N * samples, batch_size):
        idx = window_index[start : start + batch_size]
        t = times[start : start + batch_size].to(device)
        xb, vb = x0[idx].to(device), valid[idx].to(device)
        # padding is noised too, then hidden from attention and left out of the sum
        xt = process.q_sample(xb, t, generator=generator)
        c = None if cond is None else cond.index(idx.to(device))
        logits = model(xt, t, cond=c, attention_mask=None if bool(vb.all()) else vb)
        terms = process.loss(logits, xb, xt, t).double()  # (b, L)
        if process.continuous:
            terms = terms + process.endpoint_nll(xb, generator=generator).double()
        # padding may score inf (it has no code to decode): drop it, never 0 * inf
        terms = torch.where(vb, terms, torch.zeros_like(terms))
        estimates[start : start + batch_size] = terms.sum(dim=1).cpu()
    return collapsed_strata(estimates.view(N, samples))


@torch.no_grad()
def autoregressive_nll(
    model: torch.nn.Module,
    x0: torch.Tensor,
    valid: torch.Tensor,
    *,
    bos_id: int,
    batch_size: int = 32,
) -> torch.Tensor:
    """Exact NLL (nats) of each window (N,) under a causal model reading [BOS, x_1, ..., x_{L-1}]."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, x0.shape[0], batch_size):
        xb, vb = (
            x0[start : start + batch_size].to(device),
            valid[start : start + batch_size].to(device),
        )
        inputs = torch.cat([torch.full_like(xb[:, :1], bos_id), xb[:, :-1]], dim=1)  # (b, L)
        logits = model(inputs, None, attention_mask=None if bool(vb.all()) else vb)
        nll = F.cross_entropy(logits.float().transpose(1, 2), xb, reduction="none")  # (b, L)
        out.append((nll.double() * vb).sum(dim=1).cpu())
    return torch.cat(out)


def evaluate_text(
    pretrained,
    text: str,
    *,
    samples: int = 32,
    batch_size: int = 32,
    seed: int = 0,
    max_windows: int | None = None,
    steps: int | None = None,
) -> NLLResult:
    """Score `text` with a loaded checkpoint (`Pretrained`): ELBO bound for diffusion, exact NLL for AR.

    With `steps`, the bound of the `steps`-step ancestral sampler (`discrete_time_nll`, masked diffusion) instead of
    the continuous-time one.
    """
    for name, value in (
        ("samples", samples),
        ("batch_size", batch_size),
        ("max_windows", max_windows),
    ):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    tokenizer, model = pretrained.tokenizer, pretrained.model
    ids = tokenizer.encode(text)
    x0, valid = windows(ids, model.config.max_len, pad_id=tokenizer.pad_id)
    if max_windows is not None:
        x0, valid = x0[:max_windows], valid[:max_windows]
        n_chars = len(tokenizer.decode(x0[valid].tolist()))
    else:
        n_chars = len(text)
    n_tokens = int(valid.sum())
    if steps is not None and pretrained.config.objective == "ar":
        raise ValueError(
            "an autoregressive model's NLL is exact: refinement steps are for diffusion models"
        )
    if pretrained.config.objective == "ar":
        total, var, exact = (
            autoregressive_nll(model, x0, valid, bos_id=tokenizer.bos_id, batch_size=batch_size),
            None,
            True,
        )
    else:
        generator = torch.Generator().manual_seed(seed)
        bound = (
            diffusion_nll if steps is None else functools.partial(discrete_time_nll, steps=steps)
        )
        total, var = bound(
            model,
            pretrained.process,
            x0,
            valid,
            samples=samples,
            batch_size=batch_size,
            generator=generator,
        )
        exact = False
    nll = float(total.sum())
    stderr = 0.0 if var is None else math.sqrt(float(var.sum())) / n_chars / LN2
    return NLLResult(
        nll_per_token=nll / n_tokens,
        perplexity_bound=math.exp(min(nll / n_tokens, 700.0)),  # untrained: up to e^(10^4)
        bits_per_char=nll / n_chars / LN2,
        n_tokens=n_tokens,
        n_chars=n_chars,
        stderr_bits_per_char=stderr,
        samples=0 if exact else samples,
        exact=exact,
        steps=steps,
    )
