"""Low-rank adaptation (LoRA, Hu et al. 2022) of any backbone through `peft`: W x + (alpha / r) B A x, with A (r, in)
and B (out, r) trained and W frozen; B starts at zero, so the adapted network starts as the pretrained one.

`peft.inject_adapter_in_model` puts the adapters into the network in place (the project's networks are plain
modules, not `transformers` models), so the network contract is unchanged. A run with `--lora-rank` saves
resumable checkpoints holding every weight (`ModelConfig.lora` with `base` None); at the end `finalize` turns the
model in --out into either a merged plain model (the default) or an adapter folder: config.json with
`lora.base` = the --init-from model, and model.safetensors with only the adapters and the embeddings the
fine-tuning added (segment, label). Both load by path with `load_pretrained`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from textdiffusion.config import ModelConfig

logger = logging.getLogger(__name__)

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


def finalize(out: str | os.PathLike, *, mode: str, base: str) -> None:
    """Turn the LoRA model in `out` (every weight, unmerged) into a merged model or an adapter folder, in place
    (only out/config.json and out/model.safetensors change; the checkpoints stay resumable)."""
    from safetensors.torch import save_file

    from textdiffusion.checkpoint import (
        CONFIG_NAME,
        WEIGHTS_NAME,
        load_weights,
        read_config,
        read_weights,
        weights_state,
    )
    from textdiffusion.networks import build_network

    out = Path(out)
    config = read_config(out)
    if not config.model.lora or config.model.lora.get("base"):
        return  # not a LoRA run, or already an adapter folder
    net = build_network(config.model)
    load_weights(net, read_weights(out), where=str(out))
    if mode == "merged":
        merge_lora(net)
        model = net.config
        state = weights_state(net)
    elif mode == "adapter":
        model = dataclasses.replace(config.model, lora={**config.model.lora, "base": base})
        state = adapter_weights(weights_state(net))
    else:
        raise ValueError(f"--lora-save must be merged or adapter, got {mode!r}")
    config = dataclasses.replace(config, model=model)
    tmp_weights = out / f".{WEIGHTS_NAME}.tmp-{os.getpid()}"
    tmp_config = out / f".{CONFIG_NAME}.tmp-{os.getpid()}"
    save_file(state, str(tmp_weights), metadata={"format": "pt"})
    tmp_config.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    os.replace(tmp_weights, out / WEIGHTS_NAME)
    os.replace(tmp_config, out / CONFIG_NAME)
    logger.info("LoRA model in %s saved %s", out, mode)


def load_adapter(directory: Path, config: ModelConfig, state: dict[str, torch.Tensor]) -> nn.Module:
    """The network of an adapter folder: its base model's weights, then the adapters and embeddings of `state`."""
    from textdiffusion.checkpoint import CheckpointError, load_pretrained
    from textdiffusion.networks import build_network
    from textdiffusion.training.finetune import load_init

    lora = config.lora or {}
    try:
        base = load_pretrained(lora["base"])
    except CheckpointError as exc:
        raise CheckpointError(
            f"{directory} is a LoRA adapter of {lora['base']!r}, which does not load: {exc}"
        ) from None
    net = build_network(dataclasses.replace(config, lora=None))
    load_init(net, base.model)
    add_lora(net, rank=lora["rank"], alpha=lora["alpha"], targets=lora["targets"])
    own = net.state_dict()
    needed = set(adapter_weights(own))
    missing, unexpected = sorted(needed - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{directory}: adapter weights do not fit the config (missing {missing[:5]}, unexpected "
            f"{unexpected[:5]})"
        )
    net.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
    net.config = config
    return net
