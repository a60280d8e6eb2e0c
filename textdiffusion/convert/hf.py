"""A raw Hugging Face model folder (config.json with `model_type`, safetensors weights, tokenizer.json) read as a
`Pretrained` of the `hf` backbone, on the fly: `load_pretrained` and `--init-from` accept such a folder.

What happens to it (networks/hf.py has the network side):
1. config.json names one supported architecture (`networks.hf.ARCHITECTURES`, or a body in `HEADLESS`, which gets
   an output head tied to its word embeddings: BERT's MLM transform starts as the identity map, so the first
   logits are LayerNorm(GELU(h)) . E^T, the same on every load).
2. tokenizer.json goes through `Tokenizer.from_hf`: roles found under other names are renamed, missing special
   tokens are appended (a BERT masked LM must bring its own [MASK]).
3. The weights (model.safetensors, sharded safetensors with model.safetensors.index.json, or pytorch_model.bin read
   with `weights_only=True`) are loaded strictly, and the embedding (and an untied head) is cut or grown to the
   tokenizer's size; a new row is the mean of the pretrained rows (Hewitt 2021), so nothing random is drawn.
4. The ModelConfig records the transformers config (`hf_config`), `logit_shift` 1 for causal LMs (their outputs
   predict the next token) and `align_prefix` for BERT only (a causal LM reads prompt and answer as one text).

Nothing is downloaded, no remote code runs (`auto_map` is ignored: only transformers' own classes are built),
nothing is unpickled.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from textdiffusion.checkpoint import tied_names
from textdiffusion.config import ModelConfig

logger = logging.getLogger(__name__)

INDEX_NAME = "model.safetensors.index.json"
BIN_NAME = "pytorch_model.bin"
MAX_LEN_CAP = 4096
"""Longest context recorded for a model whose position table is longer (LLaMA-style configs claim 128k): the
default training length and the pipelines' input limit, not the model's."""


class HFFolderError(ValueError):
    """A Hugging Face folder that cannot be read as a denoiser; the message names the file."""


def is_hf_folder(directory: Path) -> bool:
    """A raw transformers folder: config.json holds `model_type` and none of this package's `format_version`."""
    path = Path(directory) / "config.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and "model_type" in data and "format_version" not in data


def read_hf_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HFFolderError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HFFolderError(f"{path} must hold a JSON object")
    return data


def read_hf_weights(directory: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a folder's weights: model.safetensors, the shards an index lists, or pytorch_model.bin."""
    single, index = directory / "model.safetensors", directory / INDEX_NAME
    if single.is_file():
        return _load_safetensors(single)
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
            shards = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HFFolderError(f"{index} has no readable weight_map: {exc}") from None
        missing = [s for s in shards if not (directory / s).is_file()]
        if missing:
            raise HFFolderError(
                f"{index} lists the shard(s) {missing}, which are not in {directory}; expected all of {shards}"
            )
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(_load_safetensors(directory / shard))
        absent = sorted(set(weight_map) - set(state))
        if absent:
            raise HFFolderError(f"{index}: tensors {absent[:5]} are in no shard")
        return state
    if (directory / BIN_NAME).is_file():
        try:  # weights only: no arbitrary unpickling
            state = torch.load(directory / BIN_NAME, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise HFFolderError(
                f"{directory / BIN_NAME} is not a plain state dict: {exc}"
            ) from None
        return dict(state)
    raise HFFolderError(
        f"{directory} has no weights: expected model.safetensors, {INDEX_NAME} with its shards, or {BIN_NAME}"
    )


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise HFFolderError(f"{path} is corrupt or truncated: {exc}") from None


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], *, where: str) -> None:
    """Load a transformers state dict: the body's prefix is added when the file was saved from the body alone;
    tied outputs may be absent; buffers older versions saved (GPT-2's causal `attn.bias`, rotary `inv_freq`, BERT's
    `position_ids`) and a BERT pooler (unused) are dropped. Anything else missing or unexpected is an error naming `where`."""
    own = model.state_dict()
    prefix = model.base_model_prefix
    if prefix and not any(k.startswith(prefix + ".") for k in state):
        state = {f"{prefix}.{k}": v for k, v in state.items()}
    ignored = (".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq", ".pooler.")
    buffers = ("embeddings.position_ids", "embeddings.token_type_ids")  # saved by transformers 4.x
    state = {
        k: v
        for k, v in state.items()
        if not any(s in k for s in ignored) and not k.endswith(buffers)
    }
    tied = tied_names(model)
    head_keys = {k for k in own if k.startswith(("cls.", "lm_head."))}
    missing = sorted(set(own) - set(state) - tied)
    unexpected = sorted(set(state) - set(own))
    if set(missing) - head_keys or unexpected:
        raise HFFolderError(
            f"{where}: weights do not fit {type(model).__name__} (missing {missing[:5]}, unexpected "
            f"{unexpected[:5]})"
        )
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise HFFolderError(
                f"{where}: {name} has shape {tuple(tensor.shape)}, config.json needs {tuple(own[name].shape)}"
            )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
    if missing:
        init_head(model, missing)


@torch.no_grad()
def init_head(model: nn.Module, missing: list[str]) -> None:
    """A head the folder did not hold, set without random draws: BERT's MLM transform as the identity map and a
    zero output bias (the decoder is tied to the word embeddings); an untied causal head as a copy of them."""
    logger.info(
        "%s: no output head in the weights; adding one tied to the word embeddings",
        type(model).__name__,
    )
    if hasattr(model, "cls"):
        transform = model.cls.predictions.transform
        transform.dense.weight.copy_(torch.eye(transform.dense.weight.shape[0]))
        transform.dense.bias.zero_()
        transform.LayerNorm.reset_parameters()
        model.cls.predictions.bias.zero_()
    out = model.get_output_embeddings()
    if out is not None and out.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr():
        out.weight.copy_(model.get_input_embeddings().weight)


@torch.no_grad()
def resize_vocab(model: nn.Module, size: int, *, new_ids: list[int]) -> None:
    """Cut or grow the input embedding (and an untied output layer) to `size` rows; the rows of `new_ids` (tokens
    the tokenizer added) become the mean of the original rows."""
    old = model.get_input_embeddings().weight.shape[0]
    kept = [i for i in range(min(old, size)) if i not in set(new_ids)]
    if old != size:
        model.resize_token_embeddings(size, mean_resizing=False)
    for layer in (model.get_input_embeddings(), model.get_output_embeddings()):
        if layer is None or not new_ids:
            continue
        mean = layer.weight[kept].mean(dim=0)
        layer.weight[new_ids] = mean
        bias = getattr(layer, "bias", None)
        if bias is not None and bias.shape[0] == size:
            bias[new_ids] = bias[kept].mean()
    bias = getattr(getattr(getattr(model, "cls", None), "predictions", None), "bias", None)
    if bias is not None and new_ids:
        bias[new_ids] = bias[kept].mean()


def load_hf_folder(
    directory: str | Path,
    *,
    device: str | torch.device = "cpu",
    mask_id: int | None = None,
    logit_shift: int | None = None,
    hf_config: dict[str, Any] | None = None,
    state: dict[str, torch.Tensor] | None = None,
):
    """Read a raw transformers folder as a `Pretrained` (hf backbone, masked process, task generate).

    Args:
        directory: the folder (config.json, weights, tokenizer.json).
        mask_id: the mask token's id, for diffusion LMs trained with their own (LLaDA, Dream).
        logit_shift: override the family's default (1 for causal LMs, 0 for BERT).
        hf_config, state: a transformers config and state dict to use instead of the folder's (a converter's
            translation of another layout); the tokenizer is still the folder's.
    """
    from textdiffusion.checkpoint import CheckpointConfig, Pretrained
    from textdiffusion.data.tokenizers import Tokenizer, TokenizerError
    from textdiffusion.networks.hf import ARCHITECTURES, HEADLESS, HFDenoiser, architecture
    from textdiffusion.networks.hf import build_transformers_model as build
    from textdiffusion.processes import build_process

    directory = Path(directory)
    hf_config = read_hf_config(directory) if hf_config is None else hf_config
    where = str(directory / "config.json")
    arch = architecture(hf_config, where=where)
    family = ARCHITECTURES[HEADLESS.get(arch, arch)][0]
    tokenizer_path = directory / "tokenizer.json"
    if not tokenizer_path.is_file():
        raise HFFolderError(
            f"{directory} has no tokenizer.json (a Hugging Face tokenizer file is needed)"
        )
    before = _vocab_size(tokenizer_path)
    try:
        tokenizer = Tokenizer.from_hf(
            tokenizer_path, mask_id=mask_id, require_mask=family == "masked"
        )
    except TokenizerError as exc:
        raise HFFolderError(str(exc)) from None
    state = read_hf_weights(directory) if state is None else state
    rows = _embedding_rows(state, where=str(directory))
    if hf_config.get("vocab_size") not in (None, rows):
        raise HFFolderError(
            f"{where}: vocab_size {hf_config['vocab_size']} does not match the {rows}-row embedding of the weights"
        )
    if before > rows:
        raise HFFolderError(
            f"{tokenizer_path} has {before} tokens but the model's embedding has only {rows} rows (config.json "
            f"vocab_size); expected a tokenizer of at most {rows} tokens"
        )
    model = build({**hf_config, "vocab_size": rows}, where=where)
    load_state_strict(model, state, where=str(directory))
    new_ids = list(range(before, tokenizer.vocab_size))
    resize_vocab(model, tokenizer.vocab_size, new_ids=new_ids)
    if new_ids:
        logger.info("%s: added special tokens at ids %s (mean embedding)", directory, new_ids)
    hf_dict = model.config.to_dict()
    hf_dict = json.loads(json.dumps(hf_dict, default=str))
    text = model.config.get_text_config()
    positions = getattr(text, "max_position_embeddings", None) or getattr(text, "n_positions", 512)
    model_config = ModelConfig(
        vocab_size=tokenizer.vocab_size,
        max_len=min(int(positions), MAX_LEN_CAP),
        n_layers=int(getattr(text, "num_hidden_layers", 1)),
        n_heads=int(getattr(text, "num_attention_heads", 1)),
        dim=int(getattr(text, "hidden_size", 1)),
        align_prefix=family == "masked",
        tie_embeddings=bool(getattr(text, "tie_word_embeddings", False)),
        backbone="hf",
        hf_config=hf_dict,
        logit_shift=(1 if family == "causal" else 0) if logit_shift is None else logit_shift,
    )
    net = HFDenoiser(model_config, hf_model=model)
    net.to(device).eval()
    process_config = CheckpointConfig(model=model_config)
    process = build_process(
        process_config.process,
        mask_id=tokenizer.mask_id,
        vocab_size=tokenizer.vocab_size,
        special_ids=tokenizer.special_ids,
    )
    return Pretrained(
        model=net, tokenizer=tokenizer, process=process, config=process_config, path=directory
    )


def _vocab_size(path: Path) -> int:
    from tokenizers import Tokenizer as Backend

    try:
        return Backend.from_file(str(path)).get_vocab_size(with_added_tokens=True)
    except Exception as exc:  # the Rust side raises plain Exceptions
        raise HFFolderError(f"cannot read tokenizer {path}: {exc}") from None


def _embedding_rows(state: dict[str, torch.Tensor], *, where: str) -> int:
    for suffix in ("word_embeddings.weight", "wte.weight", "embed_tokens.weight"):
        for name, tensor in state.items():
            if name.endswith(suffix):
                return int(tensor.shape[0])
    raise HFFolderError(f"{where}: no word embedding among the weights ({sorted(state)[:5]} ...)")
