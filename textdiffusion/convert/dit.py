"""The shared half of the DiT converters (mdlm, bd3lm, duo, sedd): their checkpoints hold the same `models/dit.py`
module names (`vocab_embed.embedding`, `sigma_map.mlp.*`, `blocks.{i}.*`, `output_layer.*`), with or without a
`backbone.` prefix, which networks/dit.py reproduces name for name.

Each format module reads its own config.json into `DiTSource` (dimensions and the settings of networks/dit.py);
`write` checks the weights against the network strictly, puts the GPT-2 tokenizer's [MASK] on the checkpoint's mask
row (the last one, 50257: the code appends the mask after GPT-2's 50257 tokens), grows the embedding and output
rows for the other special tokens the package needs (the mean of the pretrained rows), and saves the folder.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from textdiffusion.convert.common import ConvertError, strip_prefixes, tokenizer_file
from textdiffusion.convert.hf import HFFolderError, read_hf_weights

DROPPED = ("rotary_emb.inv_freq", "sampling_eps_min", "sampling_eps_max")
"""Buffers the checkpoints carry that the converted model derives or does not use (rotary frequencies; BD3LM's
clipped noise interval)."""


@dataclasses.dataclass
class DiTSource:
    name: str
    """The format (mdlm, bd3lm, duo, sedd)."""
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    max_len: int
    dropout: float
    settings: dict[str, Any]
    """networks/dit.py settings: cond_dim, sigma, eps, output, block_size (mask_id is set here)."""
    process: str = "masked"


def write(src: Path, out: Path, source: DiTSource, *, tokenizer: str | None = None) -> Path:
    from textdiffusion.checkpoint import CheckpointConfig, save_pretrained
    from textdiffusion.config import ModelConfig, ProcessConfig, SampleConfig
    from textdiffusion.data.tokenizers import Tokenizer, TokenizerError
    from textdiffusion.networks.dit import DiT

    try:
        state = read_hf_weights(src)
    except HFFolderError as exc:
        raise ConvertError(str(exc)) from None
    state = strip_prefixes(state, ("module.", "backbone.", "_orig_mod."))
    state = {k: v for k, v in state.items() if not k.endswith(DROPPED)}
    rows = state.get("vocab_embed.embedding")
    if rows is None:
        raise ConvertError(
            f"{src}: no vocab_embed.embedding among the weights; expected the {source.name} DiT layout "
            f"(backbone.vocab_embed.embedding, backbone.blocks.N.attn_qkv.weight, ...)"
        )
    rows = int(rows.shape[0])
    if rows != source.vocab_size:
        raise ConvertError(
            f"{src / 'config.json'}: vocabulary {source.vocab_size} does not match the {rows}-row embedding"
        )
    path = tokenizer_file(
        src, tokenizer, needs="GPT-2's tokenizer.json (the checkpoint's token ids)"
    )
    try:
        tok = Tokenizer.from_hf(path)
    except TokenizerError as exc:
        raise ConvertError(str(exc)) from None
    if tok.mask_id != rows - 1:
        raise ConvertError(
            f"{path}: its [MASK] lands on id {tok.mask_id}, but the checkpoint's mask is its last row {rows - 1}; "
            f"expected the tokenizer the model was trained with ({rows - 1} tokens, GPT-2's for the published ones)"
        )
    settings = {**source.settings, "mask_id": rows - 1}
    model = ModelConfig(
        vocab_size=tok.vocab_size,
        max_len=source.max_len,
        n_layers=source.n_layers,
        n_heads=source.n_heads,
        dim=source.dim,
        dropout=source.dropout,
        time_conditioning=settings["sigma"] != "zero",
        align_prefix=False,
        backbone="dit",
        hf_config=settings,
    )
    net = DiT(model)
    own = net.state_dict()
    extras = {k for k in own if k.startswith(("segment.", "label_embed."))}
    missing, unexpected = sorted(set(own) - set(state) - extras), sorted(set(state) - set(own))
    if missing or unexpected:
        raise ConvertError(
            f"{src}: weights do not fit the {source.name} DiT of config.json (missing {missing[:5]}, "
            f"unexpected {unexpected[:5]})"
        )
    state = _grow(state, tok.vocab_size)
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise ConvertError(
                f"{src}: {name} has shape {tuple(tensor.shape)}, config.json needs {tuple(own[name].shape)}"
            )
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    config = CheckpointConfig(
        model=model,
        process=ProcessConfig(name=source.process),
        sample=SampleConfig(sampler="ancestral" if model.time_conditioning else "cached"),
    )
    return save_pretrained(net.eval(), tok, out, config=config)


def _grow(state: dict[str, torch.Tensor], size: int) -> dict[str, torch.Tensor]:
    """Rows for the special tokens after the checkpoint's vocabulary: the mean of its rows (no random draw)."""
    state = dict(state)
    for name in ("vocab_embed.embedding", "output_layer.linear.weight", "output_layer.linear.bias"):
        tensor = state[name]
        extra = size - tensor.shape[0]
        if extra > 0:
            mean = tensor.float().mean(dim=0, keepdim=True).to(tensor.dtype)
            state[name] = torch.cat([tensor, mean.expand(extra, *tensor.shape[1:])], dim=0)
    return state


def need(config: dict[str, Any], keys: tuple[str, ...], *, src: Path, name: str) -> None:
    missing = [k for k in keys if k not in config]
    if missing:
        raise ConvertError(f"{src / 'config.json'}: the {name} config lacks {missing}")
