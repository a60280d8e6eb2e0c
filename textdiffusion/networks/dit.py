"""The DiT denoiser of SEDD, MDLM, BD3LM and DUO (Lou et al. 2024; Sahoo et al. 2024; Arriola et al. 2025; Sahoo et
al. 2025), written after their shared `models/dit.py` layout so that converted weights load under the same names.

Why a module of its own rather than the project's transformer: the DiT blocks are LayerNorm (weight only, float32)
with adaLN modulation by the noise level, a biased GELU(tanh) MLP and a biased output layer, where
DiffusionTransformer has RMSNorm and SwiGLU. With a constant noise input (MDLM and BD3LM: `time_conditioning=false`)
the adaLN terms could be folded into norm weights and residual gains, but SEDD and DUO read the live noise level,
and a folded copy would still need LayerNorm biases and GELU; one faithful module serves all four.

Block (x: B, T, D; c = SiLU(sigma_map(sigma)), sigma_map = Linear-SiLU-Linear on 256 sinusoidal features of sigma):
    shift1, scale1, gate1, shift2, scale2, gate2 = adaLN_modulation(c)
    x = x + gate1 * attn_out(attention(rotary(attn_qkv(LN1(x) (1 + scale1) + shift1))))
    x = x + gate2 * mlp(LN2(x) (1 + scale2) + shift2)
logits = linear(LN(x) (1 + scale) + shift), with (shift, scale) from the output layer's own adaLN.

Rotary positions use the NeoX half split over the whole head, base 1e4. `sigma` is 0 for MDLM/BD3LM (their
`time_conditioning=false`), and -log(alpha(t)) = -log(1 - (1 - eps) t) for SEDD (its total noise) and DUO (its
`_sigma_from_alphat` of the log-linear schedule), from the time t the samplers pass. Output:
- `subs` (MDLM, BD3LM): the mask logit is set to -1e6 (the SUBS parameterization; the carry-over of unmasked tokens is
  the masked process's own rule).
- `sedd`: SEDD outputs a log concrete score, which at a masked position equals log p(x0 = y | x_t) up to a term that
  does not depend on y (Lou et al. 2024, absorbing graph); its raw output with the mask entry removed is therefore
  the x0 logits this package's masked process expects (the sigma-dependent shift and the scatter are dropped: the
  first is constant in y, the second only sets the mask entry).
- `mean` (DUO): plain x0 logits over the whole vocabulary (its `mean` parameterization).
BD3LM's `block_size` makes attention block-causal (a query in block b sees blocks <= b), the conditional
p(x_b | x_<b) the model was trained on when the earlier blocks are clean; the package's samplers denoise all blocks at
once, so sampling a BD3LM this way is not the published semi-autoregressive procedure.

Settings live in `ModelConfig.hf_config` (the source-config slot of the non-transformer backbones): cond_dim, sigma
("zero" | "loglinear"), eps, output ("subs" | "sedd" | "mean"), mask_id, block_size (0: bidirectional). Prefix and
label conditioning are the project's (networks/transformer.py), with embeddings that start at zero.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from textdiffusion.config import ModelConfig
from textdiffusion.networks.layers import apply_rotary, rotary_tables
from textdiffusion.networks.transformer import Cond, as_cond

FREQUENCY_DIM = 256


class LayerNorm(nn.Module):
    """LayerNorm without bias, in float32 (the DiT's)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), (x.shape[-1],)).type_as(x) * self.weight


class SigmaMap(nn.Module):
    """sigma (B,) -> (B, cond_dim): sinusoidal features (cos first, max period 1e4), then Linear-SiLU-Linear."""

    def __init__(self, cond_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(FREQUENCY_DIM, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim)
        )

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        half = FREQUENCY_DIM // 2
        freqs = torch.exp(
            -math.log(10000.0) * torch.arange(half, device=sigma.device, dtype=torch.float32) / half
        )
        args = sigma.float()[:, None] * freqs[None]  # (B, half)
        return self.mlp(torch.cat([args.cos(), args.sin()], dim=-1))


class DiTBlock(nn.Module):
    def __init__(self, dim: int, n_heads: int, cond_dim: int, *, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.norm1 = LayerNorm(dim)
        self.attn_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_out = nn.Linear(dim, dim, bias=False)
        self.norm2 = LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim)
        )
        self.adaLN_modulation = nn.Linear(cond_dim, 6 * dim)

    def forward(self, x, rotary, c, mask):
        B, T, D = x.shape
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c)[:, None].chunk(
            6, dim=2
        )
        h = self.norm1(x) * (1 + scale1) + shift1
        # (B, T, 3D) -> (3, B, H, T, d): the rows of attn_qkv are (three h d)
        q, k, v = (
            self.attn_qkv(h).view(B, T, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        )
        q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        p = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, T, d)
        a = a.transpose(1, 2).reshape(B, T, D)  # (B, T, D)
        x = x + gate1 * F.dropout(self.attn_out(a), p, self.training)
        h = self.norm2(x) * (1 + scale2) + shift2
        return x + gate2 * F.dropout(self.mlp(h), p, self.training)


class OutputLayer(nn.Module):
    def __init__(self, dim: int, vocab_size: int, cond_dim: int) -> None:
        super().__init__()
        self.norm_final = LayerNorm(dim)
        self.linear = nn.Linear(dim, vocab_size)
        self.adaLN_modulation = nn.Linear(cond_dim, 2 * dim)

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c)[:, None].chunk(2, dim=2)  # (B, 1, D) each
        return self.linear(self.norm_final(x) * (1 + scale) + shift)


class VocabEmbed(nn.Module):
    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(vocab_size, dim) * 0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding[ids]


class DiT(nn.Module):
    """`model(xt, t, *, cond=None, attention_mask=None, output_mask=None) -> logits`; see the module docstring."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.backbone != "dit" or not config.hf_config:
            raise ValueError(
                "DiT needs a ModelConfig with backbone 'dit' and its settings in hf_config"
            )
        self.config = config
        s = config.hf_config
        self.sigma_kind, self.output = s.get("sigma", "zero"), s.get("output", "subs")
        self.eps, self.mask_id = float(s.get("eps", 1e-3)), int(s.get("mask_id", -1))
        self.block_size = int(s.get("block_size", 0))
        if self.sigma_kind not in ("zero", "loglinear") or self.output not in (
            "subs",
            "sedd",
            "mean",
        ):
            raise ValueError(
                f"DiT settings: unknown sigma {self.sigma_kind!r} or output {self.output!r}"
            )
        if self.output != "mean" and not 0 <= self.mask_id < config.vocab_size:
            raise ValueError(f"DiT settings: mask_id {self.mask_id} is outside the vocabulary")
        cond_dim, dim = int(s["cond_dim"]), config.dim
        self.vocab_embed = VocabEmbed(config.vocab_size, dim)
        self.sigma_map = SigmaMap(cond_dim)
        self.blocks = nn.ModuleList(
            DiTBlock(dim, config.n_heads, cond_dim, dropout=config.dropout)
            for _ in range(config.n_layers)
        )
        self.output_layer = OutputLayer(dim, config.vocab_size, cond_dim)
        self.segment = nn.Embedding(2, dim)  # 0: conditioning prefix, 1: target (zero at start)
        nn.init.zeros_(self.segment.weight)
        if config.n_labels > 0:
            self.label_embed = nn.Embedding(config.n_labels + 1, dim)
            nn.init.zeros_(self.label_embed.weight)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        raise ValueError(
            "a DiT backbone reads no images (captioning needs the transformer backbone)"
        )

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def sigma(self, t: torch.Tensor | None, xt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The noise level (B,) the adaLN reads: 0, or the log-linear total noise -log(1 - (1 - eps) t). Without t
        (the count-based ELBO of masked diffusion passes none), a masked model's t is its share of masked tokens,
        the log-linear schedule's 1 - alpha(t)."""
        if self.sigma_kind == "zero":
            return torch.zeros(xt.shape[0], device=xt.device)
        if t is None:
            if self.output == "mean":
                raise ValueError("this DiT is conditioned on the noise level: pass t")
            masked = ((xt == self.mask_id) & valid).sum(dim=1).float()
            t = masked / valid.sum(dim=1).clamp(min=1).float()  # (B,)
        return -torch.log1p(-(1.0 - self.eps) * t.float().to(xt.device))

    def forward(
        self,
        xt: torch.Tensor,
        t: torch.Tensor | None = None,
        *,
        cond: Cond | torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args as `DiffusionTransformer.forward` (token ids only). Returns logits (B, L, V) or (n, V)."""
        cond = as_cond(cond)
        if cond.image is not None or cond.image_features is not None:
            self.encode_image(cond.image)
        config = self.config
        B, L = xt.shape
        h = self.vocab_embed(xt) + self.segment.weight[1]  # (B, L, D)
        valid = (
            attention_mask.bool()
            if attention_mask is not None
            else torch.ones(B, L, dtype=torch.bool, device=xt.device)
        )
        target_valid = valid
        if cond.prefix is not None:
            prefix_valid = (
                cond.prefix_mask.bool()
                if cond.prefix_mask is not None
                else torch.ones_like(cond.prefix, dtype=torch.bool)
            )
            h = torch.cat([self.vocab_embed(cond.prefix) + self.segment.weight[0], h], dim=1)
            valid = torch.cat([prefix_valid, target_valid], dim=1)  # (B, T)
        T = h.shape[1]
        if T > config.max_len:
            raise ValueError(f"sequence of {T} tokens exceeds the model's max_len {config.max_len}")
        if config.n_labels > 0:
            label = cond.label
            if label is None:
                label = torch.full((B,), config.n_labels, dtype=torch.long, device=xt.device)
            h = h + self.label_embed(label)[:, None]
        positions = (valid.long().cumsum(dim=1) - 1).clamp(min=0)  # (B, T) real tokens only
        if config.align_prefix and cond.prefix is not None:
            target_pos = (target_valid.long().cumsum(dim=1) - 1).clamp(min=0)
            positions = torch.cat([positions[:, : T - L], target_pos], dim=1)
        rotary = rotary_tables(positions, config.dim // config.n_heads)  # (B, 1, T, d/2) each
        index = torch.arange(T, device=xt.device)
        mask = None
        if attention_mask is not None or cond.prefix_mask is not None or self.block_size:
            mask = valid[:, None, None, :] | (index[:, None] == index[None, :])  # (B, 1, T, T)
            if self.block_size:
                block = index // self.block_size
                mask = mask & (block[None, :] <= block[:, None])  # query block b sees blocks <= b
        c = F.silu(self.sigma_map(self.sigma(t, xt, target_valid)))  # (B, cond_dim)
        for block in self.blocks:
            h = block(h, rotary, c, mask)
        h = h[:, T - L :]  # (B, L, D)
        if output_mask is not None:
            c = c[:, None].expand(B, L, -1)[output_mask]  # (n, cond_dim)
            logits = self.output_layer(h[output_mask][:, None], c)[:, 0]  # (n, V)
        else:
            logits = self.output_layer(h, c)  # (B, L, V)
        if self.output != "mean":
            logits = logits.clone()
            logits[..., self.mask_id] = -1e6  # the absorbing state is never the clean token
        return logits
