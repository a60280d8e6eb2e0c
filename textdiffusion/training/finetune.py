"""Fine-tuning from a pretrained model (`--init-from`): the config changes the new task brings, the strict weight
copy that tolerates them, and the start of LoRA training."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from torch import nn

from textdiffusion.config import TrainConfig


def finetune_config(ckpt, train: TrainConfig, *, n_labels: int):
    """The pretrained model's CheckpointConfig for this run: labels added where the pretrained model had none (a
    new label embedding, zero at start for the hf and dit backbones), the attention annealing of an adapted causal
    LM, and a LoRA source's adapters kept as ordinary weights (the run saves them whole)."""
    model = ckpt.model
    changes: dict = {}
    if n_labels and model.n_labels == 0:
        changes["n_labels"] = n_labels
    if train.attention_anneal_steps:
        if model.backbone != "hf" or not model.logit_shift:
            raise ValueError(
                "--attention-anneal-steps is for a causal LM started with --init-from (GPT-2, LLaMA, Qwen2 "
                f"folders); this model's backbone is {model.backbone}"
            )
        changes["attention_anneal_steps"] = train.attention_anneal_steps
    if model.lora and model.lora.get("base"):
        changes["lora"] = {**model.lora, "base": None}
    return (
        dataclasses.replace(ckpt, model=dataclasses.replace(model, **changes)) if changes else ckpt
    )


def load_init(net: nn.Module, source: nn.Module) -> None:
    """Copy the weights of `source` into `net`; only a label embedding `net` adds may be absent from them."""
    own, state = net.state_dict(), source.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if [k for k in missing if "label_embed." not in k] or unexpected:
        raise ValueError(
            f"the --init-from weights do not fit the model (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    net.load_state_dict(state, strict=False)


def start_lora(net: nn.Module, ckpt, train: TrainConfig, *, base: str | None):
    """Put LoRA adapters on `net` (training/lora.py) and record them in the config. Returns (net, ckpt)."""
    from textdiffusion.networks.lora import add_lora, default_targets, lora_settings

    if base is None:
        raise ValueError("--lora-rank adapts a pretrained model: give --init-from")
    targets = train.lora_targets or default_targets(ckpt.model)
    device = next(net.parameters()).device
    net = add_lora(net, rank=train.lora_rank, alpha=train.lora_alpha, targets=targets).to(device)
    lora = lora_settings(train.lora_rank, train.lora_alpha, targets)
    ckpt = dataclasses.replace(ckpt, model=dataclasses.replace(ckpt.model, lora=lora))
    net.config = ckpt.model
    return net, ckpt


def base_reference(init_from: str) -> str:
    """How an adapter folder names its base: a shipped name or hub id as given, a local folder by absolute path."""
    path = Path(init_from).expanduser()
    return str(path.resolve()) if path.exists() else init_from
