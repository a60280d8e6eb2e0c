"""Left-to-right sampling of the autoregressive baseline, with a static-shape KV cache."""

from __future__ import annotations

from collections.abc import Callable

import torch

from textdiffusion.networks.layers import KVCache
from textdiffusion.processes.base import filter_logits, sample_categorical


def new_cache(model: torch.nn.Module, batch_size: int, max_len: int) -> KVCache:
    config = model.config
    param = next(model.parameters())
    return KVCache(
        n_layers=config.n_layers,
        batch_size=batch_size,
        n_heads=config.n_heads,
        max_len=max_len,
        head_dim=config.dim // config.n_heads,
        device=param.device,
        dtype=param.dtype,
    )


def decode_step(
    model: torch.nn.Module, tokens: torch.Tensor, positions: torch.Tensor, cache: KVCache
):
    """Logits (B, V) of the next token after `tokens` (B, L) at `positions` (L,); a unit to compile or graph."""
    return model(tokens, None, cache=cache, positions=positions)[:, -1]


@torch.no_grad()
def sample_autoregressive(
    model: torch.nn.Module,
    shape: tuple[int, int],
    *,
    bos_id: int,
    prompt: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    top_p: float = 1.0,
    suppress: list[int] | None = None,
    use_cache: bool = True,
    step_fn: Callable | None = None,
    callback: Callable | None = None,
) -> torch.Tensor:
    """Sample (B, L) ids token by token from a causal model reading [BOS, x_1, ...].

    Args:
        prompt: int64 (B, P) ids kept at the start.
        suppress: token ids never sampled (special tokens).
        use_cache: keep keys/values (one token per network call); without it every step re-reads the prefix.
        step_fn: replaces `decode_step` (e.g. a torch.compile'd version of it).
        callback: `callback(step, ids_so_far)`.

    Returns:
        int64 (B, L).
    """
    B, L = shape
    if L > model.config.max_len:
        raise ValueError(f"cannot sample {L} tokens: the model's max_len is {model.config.max_len}")
    device = next(model.parameters()).device
    ids = torch.full((B, L + 1), bos_id, dtype=torch.long, device=device)  # ids[:, 0] is BOS
    start = 0
    if prompt is not None:
        start = prompt.shape[1]
        ids[:, 1 : start + 1] = prompt.to(device)
    bias = torch.zeros(model.config.vocab_size, device=device)
    if suppress:
        bias[suppress] = float("-inf")
    step_fn = step_fn or decode_step
    cache = new_cache(model, B, L + 1) if use_cache else None
    positions = torch.arange(
        L + 1, device=device
    )  # sliced per step: no host-to-device copy per token
    if use_cache:  # prefill BOS + prompt
        logits = step_fn(model, ids[:, : start + 1], positions[: start + 1], cache)
    for pos in range(start, L):
        if not use_cache:
            logits = model(ids[:, : pos + 1], None)[:, -1]
        probs = filter_logits(logits + bias, temperature=temperature, top_p=top_p)
        token = sample_categorical(probs, generator=generator)  # (B,)
        ids[:, pos + 1] = token
        if callback is not None:
            callback(pos, ids[:, 1 : pos + 2])
        if use_cache and pos + 1 < L:
            logits = step_fn(model, token[:, None], positions[pos + 1 : pos + 2], cache)
    return ids[:, 1:]
