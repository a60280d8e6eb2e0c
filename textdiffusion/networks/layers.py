"""Transformer building blocks: RMSNorm, rotary positions, attention through SDPA, SwiGLU, and the residual block."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """Root-mean-square normalisation (Zhang & Sennrich 2019), computed in float32."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x.float(), (x.shape[-1],), self.weight.float(), self.eps).type_as(x)


def rotary_tables(
    positions: torch.Tensor, head_dim: int, *, theta: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables (B, 1, L, head_dim / 2) of rotary embeddings (RoFormer, Su et al. 2021, eq. 34).

    Args:
        positions: int64 (B, L) or (L,) position of each token.
    """
    inv_freq = theta ** (
        -torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim
    )
    angles = positions.float()[..., None] * inv_freq  # (B, L, head_dim/2)
    if angles.dim() == 2:
        angles = angles[None]  # (1, L, head_dim/2)
    return angles.cos()[:, None], angles.sin()[:, None]  # (B, 1, L, head_dim/2) each


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of the head dimension of x (B, H, L, head_dim)."""
    x1, x2 = x.float().chunk(2, dim=-1)  # (B, H, L, head_dim/2) each
    out = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.type_as(x)


class Attention(nn.Module):
    """Multi-head self-attention with rotary positions, through `scaled_dot_product_attention`."""

    def __init__(self, dim: int, n_heads: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.dropout = dropout

    def forward(
        self,
        x: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        *,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache_positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, L, D); mask: bool (B, 1, L or 1, L), True where attention is allowed.

        With `cache` (keys, values of shape (B, H, L_max, head_dim)) the new keys and values are written at
        `cache_positions` (L,) and attention runs over the whole cache (`mask` hides the unwritten part), so the
        shapes stay static from step to step (CUDA-graph friendly).
        """
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        # q, k, v: (B, H, L, head_dim)
        q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        if cache is not None:
            cache[0].index_copy_(2, cache_positions, k.to(cache[0].dtype))
            cache[1].index_copy_(2, cache_positions, v.to(cache[1].dtype))
            k, v = cache  # (B, H, L_max, head_dim)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=causal and mask is None,
        )  # (B, H, L, head_dim)
        y = y.transpose(1, 2).reshape(B, L, D)  # (B, L, D)
        return self.proj(y)


class CrossAttention(nn.Module):
    """Multi-head attention from the tokens to a memory (image features): no positions, no mask."""

    def __init__(self, dim: int, n_heads: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, 2 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """x: (B, L, D) queries; memory: (B, M, D) keys and values."""
        B, L, D = x.shape
        H = self.n_heads
        q = self.q(x).view(B, L, H, D // H).transpose(1, 2)  # (B, H, L, head_dim)
        k, v = (
            self.kv(memory).view(B, -1, 2, H, D // H).permute(2, 0, 3, 1, 4)
        )  # (B, H, M, head_dim)
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, L, head_dim)
        return self.proj(y.transpose(1, 2).reshape(B, L, D))


class SwiGLU(nn.Module):
    """Gated MLP (Shazeer 2020): W2 (silu(W1 x) * W3 x)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_up = nn.Linear(dim, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    """Pre-norm transformer block: self-attention, cross-attention to a memory (with `cross`), MLP."""

    def __init__(
        self,
        dim: int,
        n_heads: int,
        *,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        cross: bool = False,
    ) -> None:
        super().__init__()
        hidden = (
            int(round(mlp_ratio * dim * 2 / 3 / 64)) * 64 or 64
        )  # SwiGLU keeps the MLP's parameter count
        self.attn_norm = RMSNorm(dim)
        self.attn = Attention(dim, n_heads, dropout=dropout)
        if cross:
            self.cross_norm = RMSNorm(dim)
            self.cross = CrossAttention(dim, n_heads, dropout=dropout)
        self.mlp_norm = RMSNorm(dim)
        self.mlp = SwiGLU(dim, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        *,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache_positions: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """memory: (B, M, D) features for the cross-attention of a `cross` block."""
        attn = self.attn(
            self.attn_norm(x),
            rotary,
            mask=mask,
            causal=causal,
            cache=cache,
            cache_positions=cache_positions,
        )
        x = x + self.dropout(attn)
        if memory is not None:
            x = x + self.dropout(self.cross(self.cross_norm(x), memory))
        return x + self.dropout(self.mlp(self.mlp_norm(x)))


def timestep_embedding(t: torch.Tensor, dim: int, *, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features (B, dim) of t in [0, 1] (Vaswani et al. 2017; scaled by 1000 as in DDPM)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half
    )
    args = 1000.0 * t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([args.cos(), args.sin()], dim=-1)


class KVCache:
    """Pre-allocated keys and values of every layer, for autoregressive decoding with static shapes."""

    def __init__(
        self,
        *,
        n_layers: int,
        batch_size: int,
        n_heads: int,
        max_len: int,
        head_dim: int,
        device: torch.device | str,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        shape = (n_layers, batch_size, n_heads, max_len, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.max_len = max_len

    def layer(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.keys[index], self.values[index]


def block_diffusion_mask(
    length: int, block_size: int, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """The attention mask of the two-stream block-diffusion network (BD3-LM, Arriola et al. 2025, sec. 3.2).

    The network reads [x_t ; x_0] (2L tokens): query i of x_t in block b sees x_t block b (bidirectional, the block
    being denoised) and the clean x_0 blocks before b; query i of x_0 in block b sees x_0 blocks <= b (block-causal,
    the keys and values a sampler caches) and no x_t token. So one pass gives every block's denoising logits given
    its clean past, which is the per-block ELBO of all blocks at once. A last block may be shorter than the others.

    Returns:
        bool (2L, 2L), True where attention is allowed (rows: queries, columns: keys).
    """
    block = torch.arange(length, device=device) // block_size  # (L,) block of each position
    q, k = block[:, None], block[None, :]  # (L, 1), (1, L)
    noisy = torch.cat([q == k, k < q], dim=1)  # (L, 2L) x_t queries
    clean = torch.cat([torch.zeros_like(k <= q), k <= q], dim=1)  # (L, 2L) x_0 queries
    return torch.cat([noisy, clean], dim=0)  # (2L, 2L)


def block_cache_mask(positions: torch.Tensor, cache_len: int, block_size: int) -> torch.Tensor:
    """Keys of a block KV cache that tokens at `positions` (L,) may read: every slot before the end of their block.

    The same rule serves both streams of `block_diffusion_mask` during sampling: a clean block written into the cache
    reads the clean blocks before it and itself, and the noisy block being denoised reads the clean blocks before it
    and itself (its own keys are written into the slots the clean block will overwrite once it is finished).

    Returns:
        bool (1, 1, L, cache_len).
    """
    keys = torch.arange(cache_len, device=positions.device)
    end = (positions // block_size + 1) * block_size  # (L,) end of each query's block
    return (keys[None, :] < end[:, None])[None, None]  # (1, 1, L, cache_len)
