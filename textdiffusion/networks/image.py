"""The image encoder of captioning models: a small vision transformer whose patch features the text denoiser reads
through cross-attention (`Cond(image=...)`)."""

from __future__ import annotations

import torch
from torch import nn

from textdiffusion.config import ModelConfig
from textdiffusion.networks.layers import Block, RMSNorm, rotary_tables


class ImageEncoder(nn.Module):
    """float (B, 3, S, S) RGB in [0, 1] -> features (B, (S / patch)^2, dim).

    Patches are embedded by a strided convolution (`image_stem` "patch") or by a convolutional stem of stride-2 3x3
    convolutions that widen towards `dim` ("conv"), placed by a learnt position embedding (and rotary positions of
    their raster index), and mixed by `image_layers` bidirectional blocks of the text network's width.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.image_size, self.patch_size = config.image_size, config.patch_size
        n_patches = (config.image_size // config.patch_size) ** 2
        if config.image_stem == "conv":
            self.patch = conv_stem(config.patch_size, config.dim)
        else:
            self.patch = nn.Conv2d(3, config.dim, config.patch_size, stride=config.patch_size)
        self.position = nn.Parameter(torch.zeros(n_patches, config.dim))
        self.blocks = nn.ModuleList(
            Block(config.dim, config.n_heads, mlp_ratio=config.mlp_ratio, dropout=config.dropout)
            for _ in range(config.image_layers)
        )
        self.norm = RMSNorm(config.dim)
        self.head_dim, self.rope_theta = config.dim // config.n_heads, config.rope_theta

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        S = self.image_size
        if image.dim() != 4 or tuple(image.shape[1:]) != (3, S, S):
            raise ValueError(
                f"the image encoder reads float (B, 3, {S}, {S}) RGB images, got {tuple(image.shape)}"
            )
        x = (image.to(self.position.dtype) - 0.5) / 0.25  # about zero mean, unit variance
        h = self.patch(x).flatten(2).transpose(1, 2) + self.position  # (B, P, D)
        # float32 tables, whatever the weights' dtype (a few hundred patches: cheap to make at each call)
        rotary = rotary_tables(
            torch.arange(h.shape[1], device=h.device), self.head_dim, theta=self.rope_theta
        )
        for block in self.blocks:
            h = block(h, rotary)
        return self.norm(h)


def conv_stem(patch_size: int, dim: int) -> nn.Sequential:
    """log2(patch_size) stride-2 3x3 convolutions from RGB to `dim` channels (widths dim / 2^k, at least 16), GELU
    between them: one (dim, S / patch, S / patch) feature map, as the strided patch convolution gives."""
    n = patch_size.bit_length() - 1
    widths = [3] + [max(16, dim >> (n - 1 - i)) for i in range(n - 1)] + [dim]
    layers: list[nn.Module] = []
    for i in range(n):
        layers.append(nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1))
        if i < n - 1:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)
