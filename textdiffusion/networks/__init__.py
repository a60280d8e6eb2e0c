"""Denoising networks. They know no diffusion math, tokenizer, sampling or parallelism."""

from __future__ import annotations

from torch import nn

from textdiffusion.config import ModelConfig
from textdiffusion.networks.lora import add_lora
from textdiffusion.networks.transformer import Cond, DiffusionTransformer, as_cond


def build_network(config: ModelConfig) -> nn.Module:
    """The network of `config.backbone`: the project's transformer, a Hugging Face model (networks/hf.py) or the
    DiT of the published masked-diffusion checkpoints (networks/dit.py); LoRA adapters on it if `config.lora`."""
    if config.backbone == "hf":
        from textdiffusion.networks.hf import HFDenoiser

        net = HFDenoiser(config)
    elif config.backbone == "dit":
        from textdiffusion.networks.dit import DiT

        net = DiT(config)
    elif config.backbone == "transformer":
        net = DiffusionTransformer(config)
    else:
        raise ValueError(f"unknown backbone {config.backbone!r}; choose transformer, hf or dit")
    if config.lora:
        net = add_lora(net, **{k: v for k, v in config.lora.items() if k != "base"})
    return net


__all__ = ["Cond", "DiffusionTransformer", "as_cond", "build_network"]
