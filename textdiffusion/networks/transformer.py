"""The denoiser: a bidirectional transformer over token ids, ignorant of diffusion, tokenizers and parallelism.

`model(xt, t, *, cond=None, attention_mask=None) -> logits (B, L, V)`. Conditioning comes in through `cond`:
a conditioning prefix of token ids placed before the target (never noised: it is simply not part of `xt`), a class
label embedding (null label = `n_labels`, for classifier-free guidance), and/or an image that every block reads
through cross-attention to the features of the image encoder (captioning, `config.image_size > 0`).

A block diffusion model (`config.block_size > 0`, BD3-LM) reads the clean sequence beside the noised one,
`model(xt, t, x0=x0)`, with the block-causal two-stream mask of `layers.block_diffusion_mask`; when sampling it reads
one block at a time against a KV cache of the finished blocks (`cache=`, `positions=`).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from textdiffusion.config import ModelConfig
from textdiffusion.networks.image import ImageEncoder
from textdiffusion.networks.layers import (
    Block,
    KVCache,
    RMSNorm,
    block_cache_mask,
    block_diffusion_mask,
    rotary_tables,
    timestep_embedding,
)


@dataclasses.dataclass
class Cond:
    """Conditioning of a batch.

    Args:
        prefix: int64 (B, Lc) token ids read before the target (source text for denoising and style transfer).
        prefix_mask: bool (B, Lc), True at real prefix tokens (default: all).
        label: int64 (B,) class labels in [0, n_labels]; n_labels is the null label.
        image: float (B, 3, S, S) RGB images in [0, 1], encoded at every call.
        image_features: float (B, P, D), the output of `model.encode_image(image)`: encoded once, read by every
            step of a sampler.
    """

    prefix: torch.Tensor | None = None
    prefix_mask: torch.Tensor | None = None
    label: torch.Tensor | None = None
    image: torch.Tensor | None = None
    image_features: torch.Tensor | None = None

    def index(self, rows: torch.Tensor) -> Cond:
        """The conditioning of the batch rows `rows` (int64 indices)."""
        return Cond(
            **{
                f.name: None if (x := getattr(self, f.name)) is None else x[rows]
                for f in dataclasses.fields(self)
            }
        )


def as_cond(cond: Cond | torch.Tensor | None) -> Cond:
    """A bare int64 (B, Lc) tensor is a conditioning prefix."""
    if cond is None:
        return Cond()
    if isinstance(cond, Cond):
        return cond
    if isinstance(cond, torch.Tensor) and cond.dim() == 2 and not cond.is_floating_point():
        return Cond(prefix=cond)
    raise TypeError(
        f"cond must be a Cond or an int64 (B, Lc) prefix tensor, got {type(cond).__name__}"
    )


class DiffusionTransformer(nn.Module):
    """Pre-norm transformer with rotary positions, RMSNorm, SwiGLU and SDPA attention.

    Bidirectional for diffusion; `config.causal` makes it the autoregressive baseline with the same backbone, and
    `config.block_size` a block diffusion model (BD3-LM: bidirectional within a block, causal across blocks).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.vocab_size <= 0:
            raise ValueError(
                "ModelConfig.vocab_size must be set (from the tokenizer) before building the model"
            )
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.dim)
        # continuous x_t (B, L, input_dim); a conditioning prefix still comes as ids
        if config.input_dim:
            self.input_proj = nn.Linear(config.input_dim, config.dim)
        self.segment = nn.Embedding(2, config.dim)  # 0: conditioning prefix, 1: target
        if config.time_conditioning:
            self.time_mlp = nn.Sequential(
                nn.Linear(config.dim, config.dim), nn.SiLU(), nn.Linear(config.dim, config.dim)
            )
        if config.n_labels > 0:
            self.label_embed = nn.Embedding(config.n_labels + 1, config.dim)
        if config.image_size:
            self.image_encoder = ImageEncoder(config)
            # Rotary positions are relative: over all-masked targets, whose values are all alike, every position
            # would read the same thing, and nothing else (no prefix) tells them apart. A caption needs its start
            # and its end (trailing PADs), so captioning models add absolute positions to the target.
            self.target_position = nn.Embedding(config.max_len, config.dim)
        self.blocks = nn.ModuleList(
            Block(
                config.dim,
                config.n_heads,
                mlp_ratio=config.mlp_ratio,
                dropout=config.dropout,
                cross=config.image_size > 0,
            )
            for _ in range(config.n_layers)
        )
        self.norm = RMSNorm(config.dim)
        self.head = nn.Linear(config.dim, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.head.weight = self.embed.weight
        self._set_rotary(torch.device("cpu"))
        self.reset_parameters()

    def _set_rotary(self, device: torch.device) -> None:
        """float32 cos and sin tables (max_len, head_dim / 2) of every position, looked up in `rotary`.

        Tables rather than cos and sin of the positions in each forward pass: torch.compile fused that arithmetic into
        every rotary kernel, forward and backward, where it cost 21 of the 72 ms of the ~85M-parameter model's
        training step on an H200 (`bench/profile_step.py --train-compile`).
        """
        cos, sin = rotary_tables(
            torch.arange(self.config.max_len, device=device),
            self.config.dim // self.config.n_heads,
            theta=self.config.rope_theta,
        )
        # not saved (derived from the config), so checkpoints are unchanged
        self.register_buffer("rope_cos", cos[0, 0], persistent=False)
        self.register_buffer("rope_sin", sin[0, 0], persistent=False)

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        # `.to(torch.bfloat16)` casts the weights, not the tables: rebuild them in float32 where they now live
        if self.rope_cos.dtype != torch.float32:
            self._set_rotary(self.rope_cos.device)
        return self

    def rotary(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin tables (B or 1, 1, L, head_dim / 2) at int64 `positions` (B, L) or (L,), all < max_len."""
        cos, sin = self.rope_cos[positions], self.rope_sin[positions]
        if positions.dim() == 1:
            cos, sin = cos[None], sin[None]
        return cos[:, None], sin[:, None]

    def reset_parameters(self) -> None:
        """GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layers)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
        stacks = [self.blocks]
        if self.config.image_size:
            stacks.append(self.image_encoder.blocks)
            nn.init.normal_(self.image_encoder.position, std=0.02)
        for blocks in stacks:
            for block in blocks:
                projs = [block.attn.proj, block.mlp.down]
                if hasattr(block, "cross"):
                    projs.append(block.cross.proj)
                for proj in projs:
                    nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * len(blocks)))
        nn.init.zeros_(self.segment.weight)
        if self.config.time_conditioning:
            nn.init.zeros_(self.time_mlp[-1].weight)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Features (B, P, D) of float (B, 3, S, S) RGB images in [0, 1], for `Cond(image_features=...)`."""
        if not self.config.image_size:
            raise ValueError("this model has no image encoder (it was not trained for captioning)")
        return self.image_encoder(image)

    def _check_streams(self, xt, x0, cond: Cond, cache) -> bool:
        """Whether this call runs the two streams [x_t ; x_0] of a block model; wrong combinations fail here."""
        block_size = self.config.block_size
        if not block_size:
            if x0 is not None:
                raise ValueError(
                    "x0 is the second stream of a block diffusion model (block_size > 0)"
                )
            return False
        if cond.prefix is not None:
            raise ValueError("a block diffusion model takes no conditioning prefix")
        if cache is not None:
            return False
        if x0 is None:
            raise ValueError(
                f"this is a block diffusion model (block size {block_size}): it reads x_t beside the clean x0 "
                "(model(xt, t, x0=x0)); sample it with --sampler block"
            )
        if x0.shape != xt.shape or xt.is_floating_point():
            raise ValueError(
                f"x0 must be int64 ids of the shape of xt {tuple(xt.shape)}, got {tuple(x0.shape)}"
            )
        return True

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        xt: torch.Tensor,
        t: torch.Tensor | None = None,
        *,
        cond: Cond | torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        positions: torch.Tensor | None = None,
        output_mask: torch.Tensor | None = None,
        x0: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict clean-token logits.

        Args:
            xt: int64 (B, L) noised token ids, or float (B, L, input_dim) noised codes (Gaussian diffusion).
            t: float (B,) diffusion times (used only with `time_conditioning`).
            cond: a `Cond`, or an int64 (B, Lc) conditioning prefix.
            attention_mask: bool (B, L), True at real target tokens (padding is never attended to).
            cache: a KVCache for causal decoding; `xt` then holds only the new tokens, at `positions` (L,). A block
                model writes their keys and values at `positions`, and each token reads the cache up to the end of
                its block (`layers.block_cache_mask`).
            output_mask: bool (B, L): compute the output layer only where True (the masked positions, the only
                ones the masked-diffusion loss reads).
            x0: int64 (B, L) clean ids, the second stream of a block diffusion model (BD3-LM, Arriola et al. 2025,
                sec. 3.2): the network runs on [x_t ; x_0] (2L tokens, the x_0 copy at the same rotary positions)
                so that x_t block b is denoised given the clean blocks before it. Required by a block model unless
                `cache` is given; logits are for the x_t half only.

        Returns:
            logits (B, L, V) for the target positions, or (n, V) for the n True positions of `output_mask` in
            row-major order (as `logits[output_mask]`).
        """
        cond = as_cond(cond)
        B, L = xt.shape[:2]
        config = self.config
        two_stream = self._check_streams(xt, x0, cond, cache)
        h = self.input_proj(xt) if xt.is_floating_point() else self.embed(xt)
        h = h + self.segment.weight[1]  # (B, L, D)
        if config.image_size:
            if L > config.max_len:
                raise ValueError(
                    f"sequence of {L} tokens exceeds the model's max_len {config.max_len}"
                )
            h = h + self.target_position.weight[:L]
        target_valid = (
            attention_mask.bool()
            if attention_mask is not None
            else torch.ones(B, L, dtype=torch.bool, device=xt.device)
        )
        valid = target_valid
        if cond.prefix is not None:
            prefix_valid = (
                cond.prefix_mask.bool()
                if cond.prefix_mask is not None
                else torch.ones_like(cond.prefix, dtype=torch.bool)
            )
            h = torch.cat(
                [self.embed(cond.prefix) + self.segment.weight[0], h], dim=1
            )  # (B, Lc + L, D)
            valid = torch.cat([prefix_valid, target_valid], dim=1)  # (B, Lc + L)
        if two_stream:
            h = torch.cat([h, self.embed(x0) + self.segment.weight[1]], dim=1)  # (B, 2L, D)
        total = h.shape[1]
        context = L if two_stream else total  # the clean copy shares the positions of x_t
        if context > config.max_len:
            raise ValueError(
                f"sequence of {context} tokens (prefix included) exceeds the model's max_len {config.max_len}"
            )
        if config.time_conditioning:
            if t is None:
                raise ValueError("this model is time-conditioned: pass t")
            h = h + self.time_mlp(timestep_embedding(t, config.dim).to(h.dtype))[:, None]
        if config.n_labels > 0:
            label = cond.label
            if label is None:  # unconditional: the null label
                label = torch.full((B,), config.n_labels, dtype=torch.long, device=xt.device)
            h = h + self.label_embed(label)[:, None]
        memory = cond.image_features
        if memory is None and cond.image is not None:
            memory = self.encode_image(cond.image)
        if config.image_size and memory is None:
            raise ValueError(
                "this model describes images: pass cond=Cond(image=...) or Cond(image_features=...)"
            )
        if memory is not None and not config.image_size:
            raise ValueError("this model has no image encoder (it was not trained for captioning)")

        mask = None
        if cache is not None:
            if not (config.causal or config.block_size) or positions is None:
                raise ValueError(
                    "a KV cache needs a causal model and the positions of the new tokens"
                )
            if cond.prefix is not None:
                raise ValueError(
                    "a KV cache does not take a conditioning prefix; put it in the cache first"
                )
            if config.block_size:
                mask = block_cache_mask(positions, cache.max_len, config.block_size)
            else:
                keys = torch.arange(cache.max_len, device=xt.device)
                mask = (keys[None, :] <= positions[:, None])[
                    None, None
                ]  # (1, 1, L, L_max) causal over the cache
        elif two_stream:
            # the x_0 copy sits at the positions of x_t, so token i of both streams has the same rotary phase
            if attention_mask is None:
                positions = torch.arange(L, device=xt.device).repeat(2)  # (2L,)
            else:
                positions = (target_valid.long().cumsum(dim=1) - 1).clamp(min=0).repeat(1, 2)
            mask = block_diffusion_mask(L, config.block_size, device=xt.device)[
                None, None
            ]  # (1, 1, 2L, 2L)
            if attention_mask is not None:
                mask = mask & target_valid.repeat(1, 2)[:, None, None, :]  # (B, 1, 2L, 2L)
        elif attention_mask is None and cond.prefix is None:
            positions = torch.arange(
                total, device=xt.device
            )  # no padding, no prefix: no mask, no sync
        else:
            # Positions count real tokens only, so padding never shifts them. With `align_prefix` the target
            # restarts at position 0 like the prefix, so target token i sits at relative distance 0 from source
            # token i: copying (most of denoising) is then the easiest thing to attend to.
            target_pos = target_valid.long().cumsum(dim=1) - 1  # (B, L)
            if cond.prefix is None:
                positions = target_pos.clamp(min=0)
            else:
                prefix_pos = prefix_valid.long().cumsum(dim=1) - 1  # (B, Lc)
                if not config.align_prefix:
                    target_pos = target_pos + prefix_valid.sum(dim=1, keepdim=True)
                positions = torch.cat([prefix_pos, target_pos], dim=1).clamp(min=0)  # (B, Lc + L)
            if attention_mask is not None or cond.prefix_mask is not None:
                mask = valid[:, None, None, :]  # (B, 1, 1, Lc + L) keys allowed
            if config.causal and mask is not None:
                causal = torch.ones(total, total, dtype=torch.bool, device=xt.device).tril()
                mask = mask & causal  # (B, 1, Lc + L, Lc + L)
        rotary = self.rotary(positions)
        if not config.fp32_residual and torch.is_autocast_enabled(h.device.type):
            # the residual stream in the autocast dtype (bf16): half the bytes of the norms and adds (ModelConfig)
            h = h.to(torch.get_autocast_dtype(h.device.type))
        for i, block in enumerate(self.blocks):
            layer_cache = cache.layer(i) if cache is not None else None
            h = block(
                h,
                rotary,
                mask=mask,
                causal=config.causal,
                cache=layer_cache,
                cache_positions=positions,
                memory=memory,
            )
        h = h[:, :L] if two_stream else h[:, total - L :]  # (B, L, D) target positions only
        if output_mask is not None:
            h = h[output_mask]  # (n, D)
        return self.head(self.norm(h))
