"""Block diffusion sampling (BD3-LM, Arriola et al. 2025, Alg. 2): blocks left to right, each denoised by MDLM's
ancestral steps given the clean blocks before it, whose keys and values are computed once and cached.

A block model (`model.config.block_size` = B) denoises block b reading only the clean blocks < b, so the finished
blocks' keys and values never change: they sit in a `KVCache` of the model's context, and each network call reads
the B tokens of the block being denoised (plus, on the first call of a block, the clean block just finished, which
is written into the cache in the same call). Texts longer than the context slide the window: block b then reads the
most recent `max_len - B` clean tokens, re-encoded at positions from 0 once per block.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import torch

from textdiffusion.samplers.autoregressive import new_cache
from textdiffusion.samplers.common import initial_state, keep_fixed, time_grid


class SamplingMemoryError(ValueError):
    """A sample would not fit in the device's memory; raised before anything is allocated."""


def sampling_bytes(config, shape: tuple[int, int], *, use_cache: bool = True) -> int:
    """Bytes `sample_block` needs for `shape` (B, length), roughly: the ids of the whole text (generated, start
    state, fixed positions), the KV cache of one context window, and the activations and logits of one call over a
    full window (a slide re-encodes it; without the cache every call reads the two streams, 2 * max_len)."""
    batch, length = shape
    block = config.block_size or length
    total = math.ceil(length / block) * block
    window = config.max_len * (1 if use_cache else 2)
    ids = batch * total * (8 + 8 + 1)
    cache = 2 * config.n_layers * batch * config.max_len * config.dim * 4 if use_cache else 0
    activations = batch * window * (16 * config.dim + config.n_heads * window) * 4
    logits = batch * block * config.vocab_size * 4 * 4  # logits, SUBS copy, probabilities, cdf
    return ids + cache + activations + logits


def available_bytes(device: torch.device | str) -> int | None:
    """Free memory of `device` (CUDA: the driver's count; CPU: MemAvailable), or None when it cannot be read."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_sampling_memory(
    config, shape: tuple[int, int], *, device: torch.device | str, use_cache: bool = True
) -> None:
    """Fail with a one-line SamplingMemoryError, before any allocation, when `shape` (B, length) would not fit."""
    batch, length = shape
    if batch <= 0 or length <= 0:
        raise ValueError(f"--n and --length must be positive, got {batch} and {length}")
    need, free = sampling_bytes(config, shape, use_cache=use_cache), available_bytes(device)
    if free is not None and need > free:
        raise SamplingMemoryError(
            f"--length {length} with --n {batch} needs about {need / 2**30:,.1f} GiB to sample (the ids of every "
            f"text and one {config.max_len}-token window), more than the {free / 2**30:,.1f} GiB free on "
            f"{torch.device(device)}; lower --length or --n"
        )


@torch.no_grad()
def sample_block(
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
    use_cache: bool = True,
) -> torch.Tensor:
    """Generate (B, length) ids block after block; `length` may exceed the model's context (the window slides).

    Within a block: `steps` ancestral steps of masked diffusion from `t_start` to 0 (MDLM eq. 7, `reverse_step`),
    the network called again only after a step revealed a token (its prediction depends on the tokens alone: MDLM's
    caching), until nothing is masked. A block whose positions are all `fixed` (a prompt) costs no step. The last
    block may be cut: it is generated whole and truncated, which leaves the distribution of the kept tokens
    unchanged (nothing before depends on it).

    Args:
        model: a block diffusion model (`model.config.block_size` > 0); a model without blocks is sampled as one
            block of the whole text (`length` within its context).
        process: the masked process.
        shape: (B, length) of the ids to generate.
        steps: refinement steps per block.
        generator: source of every random draw (same seed, same ids, with or without the cache).
        x_init, fixed, t_start, cond, temperature, top_p: as `sample_ancestral` (cond: a label only).
        attention_mask: unsupported (padding is for sequence-to-sequence tasks); must be None.
        callback: `callback(step, t, xt, logits)` after each step, with the whole text so far (future blocks
            masked) and the logits (B, block_size, V) of the current block; `step` counts over all blocks.
        use_cache: keep the finished blocks' keys and values; without it every call runs the two streams
            [x_t ; x_0] over the whole window (the reference the cache must match).

    Returns:
        int64 ids (B, length).
    """
    config = model.config
    batch, length = shape
    # a model without blocks is one block of the whole text: the cached ancestral sampler within its context
    block = getattr(config, "block_size", 0) or length
    if not config.block_size and length > config.max_len:
        raise ValueError(
            f"cannot sample {length} tokens: the model's context is {config.max_len} (a block diffusion "
            "model, train --block-size B, slides its window over any length)"
        )
    mask_id = getattr(process, "mask_id", None)
    if mask_id is None:
        raise ValueError(
            f"the block sampler unmasks tokens and needs a masked process, not {process!r}"
        )
    if attention_mask is not None and not bool(attention_mask.all()):
        raise ValueError("the block sampler generates whole texts: it takes no padding mask")
    if steps <= 0:
        raise ValueError(f"steps must be positive, got {steps}")
    device = next(model.parameters()).device
    check_sampling_memory(config, shape, device=device, use_cache=use_cache)
    if x_init is not None and tuple(x_init.shape) != tuple(shape):
        raise ValueError(f"x_init has shape {tuple(x_init.shape)}, expected {tuple(shape)}")
    if fixed is not None and x_init is None:
        raise ValueError("`fixed` positions need `x_init` to say what they hold")
    total = math.ceil(length / block) * block
    ids = torch.full((batch, total), mask_id, dtype=torch.long, device=device)
    if x_init is not None:  # padded to whole blocks: masked and free
        x_init = torch.cat([x_init.to(device), ids[:, length:]], dim=1)
        if fixed is not None:
            pad = torch.zeros(batch, total - length, dtype=torch.bool, device=device)
            fixed = torch.cat([fixed.to(device).bool(), pad], dim=1)
    grid = time_grid(steps, t_start, device=device)
    times = grid.tolist() if callback is not None else None
    reader = _BlockReader(model, batch, use_cache=use_cache and bool(config.block_size))
    count = 0
    for start in range(0, total, block):
        end = start + block
        xb, init_b, fixed_b = initial_state(
            process,
            (batch, block),
            device=device,
            generator=generator,
            x_init=None if x_init is None else x_init[:, start:end],
            fixed=None if fixed is None else fixed[:, start:end],
            t_start=t_start,
        )
        if bool((xb == mask_id).any()):  # else a fixed block: nothing to draw, no call
            logits, stale, masked_left = None, True, True
            for step in range(steps):
                t, s = grid[step].expand(batch), grid[step + 1].expand(batch)
                if (
                    stale and masked_left
                ):  # a new state with tokens left to reveal: a new prediction
                    logits, stale = reader(ids, start, xb, t, cond=cond), False  # (B, block, V)
                xs = process.reverse_step(
                    logits, xb, t, s, generator=generator, temperature=temperature, top_p=top_p
                )
                xs = keep_fixed(xs, init_b, fixed_b)
                if callback is not None:
                    text = torch.cat([ids[:, :start], xs, ids[:, end:]], dim=1)[:, :length]
                    callback(count, times[step + 1], text, logits)
                count += 1
                if not torch.equal(xs, xb):
                    stale, masked_left = True, bool((xs == mask_id).any())
                xb = xs
        ids[:, start:end] = xb
    return ids[:, :length]


class _BlockReader:
    """The network's predictions (B, block, V) for the block at `start` given the clean ids before it.

    With the cache, the first call of a block also writes the clean blocks finished since the last call (their
    keys and values at their window positions); a window that slid is re-encoded from position 0. Without it, each
    call runs the two streams over the whole window (the reference). A model without blocks reads the block alone.
    """

    def __init__(self, model: torch.nn.Module, batch: int, *, use_cache: bool) -> None:
        config = model.config
        self.model, self.block_size, self.max_len = model, config.block_size, config.max_len
        device = next(model.parameters()).device
        self.positions = torch.arange(config.max_len, device=device)  # sliced: no copy per call
        self.cache = new_cache(model, batch, config.max_len) if use_cache else None
        self.window_start, self.written = 0, 0  # the cache holds ids[:, window_start:written]

    def __call__(self, ids, start: int, xb, t, *, cond=None) -> torch.Tensor:
        block = xb.shape[1]
        if not self.block_size:
            return self.model(xb, t, cond=cond)
        first = max(
            0, start - (self.max_len - block)
        )  # the window of this block: ids[:, first:start + block]
        if self.cache is None:
            window = torch.cat([ids[:, first:start], xb], dim=1)  # (B, start + block - first)
            return self.model(window, t, x0=window, cond=cond)[:, -block:]
        if first != self.window_start:  # the window slid: re-encode its clean part from position 0
            self.window_start, self.written = first, first
        tokens = torch.cat([ids[:, self.written : start], xb], dim=1)  # (B, n + block)
        out = torch.zeros(tokens.shape, dtype=torch.bool, device=tokens.device)
        out[:, -block:] = True  # logits of the noisy block only
        logits = self.model(
            tokens,
            t,
            cond=cond,
            cache=self.cache,
            positions=self.positions[self.written - first : start + block - first],
            output_mask=out,
        )
        self.written = start
        return logits.view(xb.shape[0], block, -1)  # (B, block, V)
