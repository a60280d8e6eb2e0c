"""Checkpoints in the Hugging Face layout: config.json + model.safetensors + tokenizer.json.

`save_pretrained` writes a folder atomically (a temporary sibling folder, then a rename); `load_pretrained` reads a
local folder, a model shipped with the package (by name), or a Hugging Face hub id. Weights are only ever read with
safetensors; resume state (`training_state.pt`) only with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from textdiffusion.config.checkpoint import CheckpointConfig, CheckpointError, migrate  # noqa: F401 (the schema)
from textdiffusion.data.tokenizers import Tokenizer, TokenizerError
from textdiffusion.networks import build_network
from textdiffusion.processes import build_process

logger = logging.getLogger(__name__)

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
CONFIG_NAME, WEIGHTS_NAME, TOKENIZER_NAME = "config.json", "model.safetensors", "tokenizer.json"
STATE_NAME = "training_state.pt"


@dataclasses.dataclass
class Pretrained:
    """A loaded checkpoint: the network, its tokenizer, its forward process and its config."""

    model: torch.nn.Module
    tokenizer: Tokenizer
    process: Any
    config: CheckpointConfig
    path: Path


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain network inside DDP (`.module`) and torch.compile (`._orig_mod`) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        else:
            return model


def weights_state(
    model: torch.nn.Module, *, dtype: torch.dtype | None = None
) -> dict[str, torch.Tensor]:
    """State dict without wrapper prefixes or tied duplicates, detached, contiguous, on the CPU."""
    model = unwrap(model)
    state = {}
    tied = tied_names(model)
    for name, tensor in model.state_dict().items():
        if name in tied:
            continue  # the storage of an earlier name (head.weight of embed.weight); safetensors refuses shared tensors
        tensor = tensor.detach().to("cpu")
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        state[name] = tensor.contiguous()
    return state


def tied_names(model: torch.nn.Module) -> set[str]:
    """State-dict names whose tensor shares its storage with an earlier name (tied weights)."""
    seen: set[int] = set()
    tied = set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        if tensor.numel() and tensor.data_ptr() in seen:
            tied.add(name)
        seen.add(tensor.data_ptr())
    return tied


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def save_pretrained(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    directory: str | os.PathLike,
    *,
    config: CheckpointConfig,
    dtype: torch.dtype | None = None,
    training_state: dict[str, Any] | None = None,
    weights: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a checkpoint folder atomically; an existing folder is replaced only once the new one is complete.

    Args:
        model: the network (wrappers are removed).
        tokenizer: saved as tokenizer.json.
        directory: target folder.
        config: written as config.json.
        dtype: store floating weights in this dtype (e.g. torch.bfloat16 for shipping); loading casts back.
        training_state: optional resume state, saved with torch.save as training_state.pt.
        weights: a state dict to store instead of the model's own (e.g. EMA weights).
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        state = weights_state(model, dtype=dtype) if weights is None else weights
        if dtype is not None and weights is not None:
            state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        _write_json(tmp / CONFIG_NAME, config.to_dict())
        tokenizer.save(tmp / TOKENIZER_NAME)
        if training_state is not None:
            torch.save(training_state, tmp / STATE_NAME)
        _replace_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _replace_dir(new: Path, target: Path) -> None:
    """Move `new` to `target`; an old `target` is renamed aside first and removed only after the move."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def shipped_models() -> list[str]:
    """Names of the checkpoints shipped inside the package."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / CONFIG_NAME).is_file())


def resolve(name_or_path: str | os.PathLike) -> Path:
    """Find a checkpoint folder: a local path, a shipped name, or a hub id (downloaded, needs the network)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(
                f"{path} is a file; a checkpoint is a folder holding {CONFIG_NAME}"
            )
        return path
    name = str(name_or_path)
    if (PRETRAINED_DIR / name / CONFIG_NAME).is_file():
        return PRETRAINED_DIR / name
    if _looks_like_path(
        name
    ):  # a mistyped local folder is not looked up (or downloaded) on the hub
        raise CheckpointError(f"no such folder: {name}")
    shipped = ", ".join(shipped_models()) or "none"
    if "/" in name and not name.startswith((".", "/", "~")) and name.count("/") == 1:
        try:
            from huggingface_hub import snapshot_download

            return Path(
                snapshot_download(
                    repo_id=name, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, TOKENIZER_NAME]
                )
            )
        except Exception as exc:  # offline, unknown repo, ...
            raise CheckpointError(
                f"model {name!r} is not a local folder or a shipped model ({shipped}), and the Hugging Face "
                f"hub did not provide it: {type(exc).__name__}: {exc}"
            ) from None
    raise CheckpointError(
        f"no model {name!r}: not a local folder and not a shipped model ({shipped})"
    )


def _looks_like_path(name: str) -> bool:
    """Whether a name that is no existing folder was meant as one: it starts with ./ ../ / or ~, or it has a
    separator and its parent folder, or its first component, exists (runs/x beside a runs folder)."""
    if name.startswith(("./", "../", "/", "~")) or name in (".", ".."):
        return True
    if os.sep not in name and "/" not in name:
        return False
    path = Path(name)
    return path.parent.is_dir() or Path(path.parts[0]).is_dir()


def read_config(directory: Path) -> CheckpointConfig:
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{directory} is not a checkpoint: it has no {CONFIG_NAME}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object")
    return CheckpointConfig.from_dict(data, where=str(path))


def read_weights(directory: Path) -> dict[str, torch.Tensor]:
    path = directory / WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(f"{directory} has no {WEIGHTS_NAME}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is corrupt or truncated: {exc}") from None


def check_finite(name: str, tensor: torch.Tensor, *, where: str) -> None:
    """A weight holding NaN or inf makes every output garbage (`generate` prints one character, `eval` NaN):
    refuse it at load, naming the tensor."""
    if not tensor.is_floating_point():
        return
    finite = torch.isfinite(tensor)
    if bool(finite.all()):
        return
    nan = int(torch.isnan(tensor).sum())
    inf = tensor.numel() - int(finite.sum()) - nan
    kinds = " and ".join(f"{n:,} {kind}" for n, kind in ((nan, "NaN"), (inf, "inf")) if n)
    raise CheckpointError(
        f"{where}: weight {name} holds {kinds} of {tensor.numel():,} values; the checkpoint is corrupt or "
        "was saved from a diverged run"
    )


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], *, where: str) -> None:
    """Load `state` into `model` strictly (tied output weights excepted), casting to the model's dtype."""
    model = unwrap(model)
    own = model.state_dict()
    allowed_missing = tied_names(model)
    missing = sorted(set(own) - set(state) - allowed_missing)
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: weights do not fit the config (missing {missing}, unexpected {unexpected})"
        )
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise CheckpointError(
                f"{where}: {name} has shape {tuple(tensor.shape)}, the config needs {tuple(own[name].shape)}"
            )
        check_finite(name, tensor, where=where)
    model.load_state_dict(
        {k: v.to(own[k].dtype) for k, v in state.items()}, strict=not allowed_missing
    )


def load_pretrained(
    name_or_path: str | os.PathLike, *, device: str | torch.device = "cpu"
) -> Pretrained:
    """Load a checkpoint by local folder, shipped name (e.g. "shakespeare-char") or hub id, in eval mode."""
    directory = resolve(name_or_path)
    from textdiffusion.convert.hf import HFFolderError, is_hf_folder, load_hf_folder

    if is_hf_folder(directory):  # a raw transformers folder, converted on the fly
        try:
            return load_hf_folder(directory, device=device)
        except (HFFolderError, ValueError) as exc:
            raise CheckpointError(str(exc)) from None
    config = read_config(directory)
    try:
        tokenizer = Tokenizer.load(directory / TOKENIZER_NAME)
    except TokenizerError as exc:
        raise CheckpointError(f"{directory}: {exc}") from None
    if tokenizer.vocab_size != config.model.vocab_size:
        raise CheckpointError(
            f"{directory}: tokenizer has {tokenizer.vocab_size} tokens but the model expects "
            f"{config.model.vocab_size}"
        )
    if config.model.lora and config.model.lora.get(
        "base"
    ):  # an adapter folder: the base holds the rest
        from textdiffusion.training.lora import load_adapter

        model = load_adapter(directory, config.model, read_weights(directory))
    else:
        model = build_network(config.model)
        load_weights(model, read_weights(directory), where=str(directory))
    model.to(device).eval()
    process = build_process(
        config.process,
        mask_id=tokenizer.mask_id,
        vocab_size=tokenizer.vocab_size,
        special_ids=tokenizer.special_ids,
    )
    return Pretrained(
        model=model, tokenizer=tokenizer, process=process, config=config, path=directory
    )


def load_training_state(directory: Path) -> dict[str, Any]:
    """Resume state saved by the trainer, read with `weights_only=True` (no arbitrary unpickling)."""
    path = directory / STATE_NAME
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{directory} has no {STATE_NAME}; it cannot be resumed") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception as exc:
        earlier = sorted(p for p in directory.parent.glob("step-*") if p.name < directory.name)
        advice = f"; delete {directory} to resume from {earlier[-1].name}" if earlier else ""
        raise CheckpointError(
            f"{path} is corrupt or not a training state written by textdiffusion ({_load_reason(exc)})"
            + advice
        ) from None


def _load_reason(exc: Exception) -> str:
    """One line of why torch.load refused a file. Its message for a weights-only refusal spans paragraphs and
    advises `weights_only=False`, i.e. running the pickle's code: never pass that on for a file that failed."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "Unsupported global" in line:
            return (
                line.split("WeightsUnpickler error:")[-1]
                .split(" was not an allowed global")[0]
                .strip()
            )
    safe = [line for line in lines if "weights_only" not in line and "torch.load" not in line]
    return (safe[0].split(". ")[0] if safe else type(exc).__name__)[:200]
