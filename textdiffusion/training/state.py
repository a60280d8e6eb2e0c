"""Checkpointing of a training run: atomic resumable checkpoints in OUT/checkpoints/step-N, the loadable model
in OUT itself, and exact restoration (weights, EMA, optimizer, data position, every RNG)."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from textdiffusion.checkpoint import (
    CONFIG_NAME,
    TOKENIZER_NAME,
    WEIGHTS_NAME,
    load_weights,
    save_pretrained,
    weights_state,
)
from textdiffusion.training import distributed

logger = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot start or continue; the message says why and what was kept."""


class TrainingDiverged(TrainingError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def find_checkpoints(out: Path) -> list[Path]:
    """Complete checkpoints in OUT/checkpoints, oldest first (temporary folders are never named step-*)."""
    folder = out / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step-*") if p.is_dir() and (p / CONFIG_NAME).is_file())


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Remove what a run killed while writing a checkpoint left behind: the temporary folders of
    `save_pretrained` (checkpoints/.step-N.tmp-*), the old folders it renames aside (.step-N.old-*), and the
    temporary copies of OUT's model files (.NAME.tmp-*). Call it only while holding OUT/.lock (no live run is
    writing them). Returns what was removed; each gets a log line."""
    removed = []
    for folder in (out, out / "checkpoints"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(".*")):
            if ".tmp-" not in path.name and ".old-" not in path.name:
                continue  # .lock and anything else not ours
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            logger.info("removed %s, left by a run stopped while writing a checkpoint", path)
            removed.append(path)
    return removed


def _atomic_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class CheckpointState:
    """The checkpoint half of `Trainer` (it provides net, optimizer, ema, stream, noise, rng_state, info, config,
    out...)."""

    def _load_state(self, state: dict[str, Any]) -> None:
        load_weights(self.net, state["model"], where=str(self.resume_from))
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.stream.load_state_dict(state["data"])
        self.step = int(state["step"])
        rng = state["rng"]
        self.rng_state = {
            "torch": rng["torch"],
            "cuda": rng.get("cuda") if self.device.type == "cuda" else None,
        }
        if self.rng_state["cuda"] is None and self.device.type == "cuda":
            self.rng_state["cuda"] = torch.cuda.get_rng_state(self.device)
        noise = (
            rng["noise"][self.info.rank] if self.info.rank < len(rng["noise"]) else rng["noise"][0]
        )
        self.noise.set_state(noise)
        logger.info("resumed from %s at step %d", self.resume_from, self.step)

    def _gather(self, value: torch.Tensor) -> list[torch.Tensor]:
        if not self.info.distributed:
            return [value]
        out = [torch.empty_like(value) for _ in range(self.info.world_size)]
        torch.distributed.all_gather(out, value)
        return out

    def _full_state(self) -> dict[str, torch.Tensor]:
        """Unsharded weights on the CPU (a collective under FSDP: every rank must call it)."""
        if self.config.parallel == "fsdp" and self.info.distributed:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                get_model_state_dict,
            )

            options = StateDictOptions(full_state_dict=True, cpu_offload=True)
            return {
                k: v.contiguous()
                for k, v in get_model_state_dict(self.net, options=options).items()
            }
        return weights_state(self.net)

    def _ema_state(self, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.ema is None:
            return raw
        full = {}
        for name, tensor in self.ema.shadow.items():
            if hasattr(tensor, "full_tensor"):  # an FSDP shard
                tensor = tensor.full_tensor()
            full[name] = tensor.detach().cpu().contiguous()
        return {k: full.get(k, v) for k, v in raw.items()}

    def save(self) -> Path | None:
        """Write OUT/checkpoints/step-N (resumable) and refresh OUT's model files; rank 0 writes, all ranks wait."""
        raw = self._full_state()
        weights = self._ema_state(raw)
        noise_states = self._gather(self.noise.get_state().to(self.device))
        optimizer = self.optimizer.state_dict()
        if self.config.parallel == "fsdp" and self.info.distributed:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                get_optimizer_state_dict,
            )

            options = StateDictOptions(full_state_dict=True, cpu_offload=True)
            optimizer = get_optimizer_state_dict(self.net, self.optimizer, options=options)
        path = None
        if self.info.is_main:
            for name, tensor in weights.items():
                if not torch.isfinite(tensor).all():
                    raise TrainingDiverged(
                        f"weight {name} is not finite at step {self.step}; not saving it"
                    )
            state = {
                "step": self.step,
                "model": raw,
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "optimizer": optimizer,
                "data": self.stream.state_dict(),
                # the trainer's own global-RNG stream (dropout), and every rank's noise generator
                "rng": {**self.rng_state, "noise": [s.cpu() for s in noise_states]},
                "train_config": dataclasses.asdict(self.config),
            }
            path = self.out / "checkpoints" / f"step-{self.step:07d}"
            try:
                save_pretrained(
                    self.net,
                    self.tokenizer,
                    path,
                    config=self.ckpt_config,
                    weights=weights,
                    training_state=state,
                )
                for name in (
                    WEIGHTS_NAME,
                    CONFIG_NAME,
                    TOKENIZER_NAME,
                ):  # OUT itself is a loadable model
                    _atomic_copy(path / name, self.out / name)
            except OSError as exc:  # a full disk, a folder made read-only: older checkpoints stay
                kept = find_checkpoints(self.out)
                where = (
                    f"{kept[-1]} is the last checkpoint" if kept else "no checkpoint was written"
                )
                raise TrainingError(
                    f"cannot write the checkpoint of step {self.step} in {self.out}: "
                    f"{exc.strerror or exc}; {where} (continue with --resume once there is room)"
                ) from None
            for old in find_checkpoints(self.out)[: -self.config.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        distributed.barrier()
        return path
