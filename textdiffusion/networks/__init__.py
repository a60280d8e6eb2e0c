"""Denoising networks. They know no diffusion math, tokenizer, sampling or parallelism."""

from textdiffusion.networks.transformer import Cond, DiffusionTransformer, as_cond

__all__ = ["Cond", "DiffusionTransformer", "as_cond"]
