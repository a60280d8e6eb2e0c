"""Low-rank adapters (LoRA, Hu et al. 2022) on any network, through `peft`: W x + (alpha / r) B A x with W frozen and
B zero at start (the adapted network starts as the original). Put on, merged back, and the weights an adapter
folder keeps; training/lora.py saves and loads such folders."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from textdiffusion.config import ModelConfig

# the attention and MLP projections of each backbone (suffixes of module names, as peft matches them)
DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    "transformer": ("qkv", "proj", "gate_up", "down"),
    "dit": ("attn_qkv", "attn_out", "mlp.0", "mlp.2"),
    "bert": ("query", "key", "value", "dense"),
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "qwen2": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
}
TRAINED_EXTRAS = ("segment.", "label_embed.")
"""Parameters trained beside the adapters: the conditioning embeddings fine-tuning adds (zero at start)."""


def default_targets(config: ModelConfig) -> tuple[str, ...]:
    key = config.backbone
    if key == "hf":
        key = (config.hf_config or {}).get("model_type", "")
    if key not in DEFAULT_TARGETS:
        raise ValueError(
            f"no default --lora-targets for {key!r}: name the linear layers with --lora-targets"
        )
    return DEFAULT_TARGETS[key]


def add_lora(
    net: nn.Module, *, rank: int, alpha: float, targets: list[str] | tuple[str, ...]
) -> nn.Module:
    """Put rank-`rank` adapters on the linear layers named `targets` (in place) and freeze everything else but
    the adapters and `TRAINED_EXTRAS`. Returns `net`."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise ValueError("--lora-rank needs peft: pip install 'textdiffusion[hf]'") from None
    config = net.config
    gpt2 = config.backbone == "hf" and (config.hf_config or {}).get("model_type") == "gpt2"
    lora = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        target_modules=list(targets),
        lora_dropout=0.0,
        bias="none",
        fan_in_fan_out=gpt2,  # GPT-2's Conv1D stores its weight (in, out)
    )
    try:
        inject_adapter_in_model(lora, net)
    except ValueError as exc:
        raise ValueError(f"--lora-targets {list(targets)}: {exc}".splitlines()[0]) from None
    for name, param in net.named_parameters():
        param.requires_grad = "lora_" in name or name.startswith(TRAINED_EXTRAS)
    return net


def lora_settings(rank: int, alpha: float, targets, *, base: str | None = None) -> dict[str, Any]:
    return {"rank": int(rank), "alpha": float(alpha), "targets": list(targets), "base": base}


@torch.no_grad()
def merge_lora(net: nn.Module) -> nn.Module:
    """Fold every adapter into its frozen weight, W <- W + (alpha / r) B A, and put the plain layer back."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(net.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge(safe_merge=True)
            parent_name, _, child = name.rpartition(".")
            parent = net.get_submodule(parent_name) if parent_name else net
            setattr(parent, child, module.get_base_layer())
    for param in net.parameters():
        param.requires_grad = True
    net.config = dataclasses.replace(net.config, lora=None)
    return net


def adapter_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The part of a LoRA network's weights an adapter folder keeps."""
    return {k: v for k, v in state.items() if "lora_" in k or k.startswith(TRAINED_EXTRAS)}
