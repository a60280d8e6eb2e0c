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

import torch
from torch import nn

from textdiffusion.config import ModelConfig
from textdiffusion.networks.lora import adapter_weights, add_lora, merge_lora

logger = logging.getLogger(__name__)


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
