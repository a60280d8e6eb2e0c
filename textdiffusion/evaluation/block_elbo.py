"""The likelihood bound of block diffusion models (BD3-LM): the per-block masked-diffusion ELBO, one of the
estimators that `evaluation/elbo.py` dispatches to."""

from __future__ import annotations

import torch

from textdiffusion.evaluation.strata import collapsed_strata
from textdiffusion.processes.base import uniform


@torch.no_grad()
def block_diffusion_nll(
    model: torch.nn.Module,
    process,
    x0: torch.Tensor,
    valid: torch.Tensor,
    *,
    samples: int = 32,
    batch_size: int = 32,
    generator: torch.Generator | None = None,
    cond=None,
    steps: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ELBO of each window (nats) under a block diffusion model (BD3-LM, Arriola et al. 2025, eq. 6).

    The window's likelihood factorises over its blocks, -log p(x) = sum_b -log p(x^b | x^{<b}), and each factor is
    bounded by the masked-diffusion ELBO of block b given the clean blocks before it. The two-stream network
    (`model(xt, t, x0=x0)`) gives every block's predictions in one pass, so every block is noised independently in
    the same pass and the window's bound is the sum of the blocks' estimates:

    - continuous time (`steps` None): the count-stratified estimator of `diffusion_nll` within each block,
      E_{k ~ U{1..n_b}} [ n_b / k sum_{masked in b} CE ] (Ou et al. 2024, Prop. 3.3), k stratified over the samples;
    - `steps` T: the bound of the block sampler with T ancestral steps per block (`discrete_time_nll` per block).

    Sample j of every block is drawn from stratum j, so the window's sum has the strata of `diffusion_nll` and the
    same collapsed-strata variance. With one block of the whole window this is `diffusion_nll` (the same draws).

    Args:
        x0: int64 (N, L) windows, L a multiple of the block size; valid: bool (N, L) real tokens.
        cond: a `Cond` of N rows (a label).

    Returns:
        (mean, var): float64 (N,) estimated ELBO of each window and the variance of that estimate.
    """
    from textdiffusion.processes.masked import MaskedProcess
    from textdiffusion.samplers.common import time_grid

    block = model.config.block_size
    if not block:
        raise ValueError("block_diffusion_nll needs a block diffusion model (block_size > 0)")
    if not isinstance(process, MaskedProcess):
        raise ValueError(f"block diffusion is masked diffusion; this model uses {process!r}")
    device = next(model.parameters()).device
    N, L = x0.shape
    if L % block:
        raise ValueError(f"windows of {L} tokens do not split into blocks of {block}")
    n_blocks = L // block
    n_valid = valid.view(N, n_blocks, block).sum(dim=-1)  # (N, n_blocks) real tokens per block
    u = uniform((N, samples, n_blocks), device="cpu", generator=generator, dtype=torch.float64)
    strata = (torch.arange(samples, dtype=torch.float64)[None, :, None] + u) / samples  # (N, S, nb)
    if steps is None:
        counts = (strata * n_valid[:, None]).floor().long() + 1  # (N, S, nb) in 1..n_b
        counts = torch.minimum(counts, n_valid[:, None]).reshape(N * samples, n_blocks)
        # n_b / k, 0 for a block of padding only
        weights = n_valid[:, None].double() / counts.view(N, samples, n_blocks).clamp(min=1)
        weights = weights.reshape(N * samples, n_blocks)
    else:
        grid = time_grid(steps, 1.0, device="cpu").flip(0)  # t_0 = 0 .. t_T = 1
        alpha = process.alpha(grid).double()  # (T + 1,)
        step_weight = steps * (alpha[:-1] - alpha[1:]) / (1.0 - alpha[1:]).clamp(min=1e-300)
        step = (strata * steps).long().clamp(max=steps - 1).reshape(N * samples, n_blocks)
        weights = step_weight[step]  # (N*S, nb)
    window_index = torch.arange(N)[:, None].expand(N, samples).reshape(-1)  # (N*S,)
    estimates = torch.zeros(N * samples, dtype=torch.float64)
    for start in range(0, N * samples, batch_size):
        rows = slice(start, start + batch_size)
        idx = window_index[rows]
        xb, vb = x0[idx].to(device), valid[idx].to(device)
        b = xb.shape[0]
        blocks = xb.view(b * n_blocks, block)  # (b * nb, block) one row per block
        if steps is None:
            k = counts[rows].reshape(-1).to(device)
            xt = process.q_sample_count(
                blocks, k, valid=vb.view(b * n_blocks, block), generator=generator
            )
        else:
            t = grid[step[rows].reshape(-1) + 1].to(device)  # (b * nb,)
            # padding may be masked too: it is hidden from attention and left out of the sum
            xt = process.q_sample(blocks, t, generator=generator)
        xt = xt.view(b, L)
        c = None if cond is None else cond.index(idx.to(device))
        logits = model(
            xt,
            None,
            x0=xb,
            cond=c,
            attention_mask=None if bool(vb.all()) else vb,
            output_mask=process.output_mask(xt),
        )
        ce = (process.cross_entropy(logits, xb, xt).double() * vb).view(b, n_blocks, block)
        estimates[rows] = (ce.sum(dim=-1).cpu() * weights[rows]).sum(dim=-1)
    return collapsed_strata(estimates.view(N, samples))
