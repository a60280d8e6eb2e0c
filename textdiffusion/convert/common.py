"""What the converters share: reading the source folder, telling the layouts apart (so that a wrong `--from` says
which one the folder looks like), and writing the converted folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch


class ConvertError(ValueError):
    """The source folder is not the layout `--from` names, or is incomplete; the message names the file."""


def read_config(src: Path) -> dict[str, Any]:
    path = src / "config.json"
    if not path.is_file():
        raise ConvertError(f"{src} has no config.json; expected a checkpoint folder")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConvertError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConvertError(f"{path} must hold a JSON object")
    return data


def detect(config: dict[str, Any]) -> str | None:
    """The layout a config.json looks like: a converter name, "hf" (a transformers folder that loads as it is),
    or None."""
    model_type = str(config.get("model_type", "")).lower()
    architectures = [str(a) for a in config.get("architectures") or []]
    if model_type == "dream" or "DreamModel" in architectures:
        return "dream"
    if model_type == "llada" or "d_model" in config and "mlp_hidden_size" in config:
        return "llada"
    if isinstance(config.get("model"), dict) and "graph" in config:
        return "sedd"
    if "hidden_dim" in config and "n_blocks" in config:
        if "block_size" in config or model_type == "bd3lm":
            return "bd3lm"
        return "duo" if model_type == "duo" else "mdlm"
    if model_type in ("bert", "gpt2", "llama", "qwen2"):
        return "hf"
    return None


def expect(src: Path, config: dict[str, Any], name: str, what: str) -> None:
    """Refuse a folder whose config.json is not the `name` layout, saying what was expected and what it looks like."""
    found = detect(config)
    if found == name:
        return
    hint = ""
    if found == "hf":
        hint = "; it is a transformers folder: use it as it is (--init-from / --model)"
    elif found is not None:
        hint = f"; it looks like a {found} checkpoint: use --from {found}"
    raise ConvertError(f"{src / 'config.json'} is not a {name} checkpoint: expected {what}{hint}")


def strip_prefixes(
    state: dict[str, torch.Tensor], prefixes: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    """Names without a wrapper prefix (`backbone.`, `module.`), each removed wherever it leads."""
    out = {}
    for name, tensor in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in prefixes:
                if name.startswith(prefix):
                    name, changed = name[len(prefix) :], True
        out[name] = tensor
    return out


def tokenizer_file(src: Path, tokenizer: str | None, *, needs: str) -> Path:
    """The tokenizer.json to use: `--tokenizer`, else the source folder's."""
    path = Path(tokenizer) if tokenizer else src / "tokenizer.json"
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise ConvertError(
            f"{path} does not exist: {src} ships no tokenizer.json, pass --tokenizer with {needs}"
        )
    return path
