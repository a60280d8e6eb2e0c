"""From a run's settings to the Trainer's parts: the task reads its data and makes its streams; the builder adds the
network, the forward process and the objective, and checks that they fit together.

    trainer = build_trainer(data, TrainConfig(...), out="runs/x", task="denoise")   # the public path
    trainer.run()

`build_parts` alone gives the parts without a Trainer (a benchmark may swap the network or objective, then hand
them to `Trainer`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from textdiffusion.checkpoint import (
    TOKENIZER_NAME,
    CheckpointConfig,
    load_pretrained,
    read_config,
)
from textdiffusion.config import DataConfig, ModelConfig, ProcessConfig, SampleConfig, TrainConfig
from textdiffusion.data import Tokenizer
from textdiffusion.networks import build_network
from textdiffusion.processes import analog_bits, build_process
from textdiffusion.tasks import TASKS, TaskRequest, get_task
from textdiffusion.training import distributed
from textdiffusion.training.finetune import finetune_config, load_init, start_lora
from textdiffusion.training.lock import RunLock
from textdiffusion.training.objectives import build_objective
from textdiffusion.training.parts import EvalCallback, TrainingParts, TrainResult
from textdiffusion.training.state import TrainingError, find_checkpoints, remove_stale_temporaries
from textdiffusion.training.trainer import Trainer

logger = logging.getLogger(__name__)


def _check_task(
    task, data: DataConfig, model: ModelConfig, process: ProcessConfig, init_from: str | None
) -> None:
    """Data flags that belong to another task are an error saying what they are for; so is a forward process the
    task does not train with; a task that reads images needs a network with an image encoder."""
    if process.name not in task.processes:
        takers = [t for t in TASKS.values() if process.name in t.processes]
        raise TrainingError(
            f"--process {process.name} trains {' and '.join(t.trains for t in takers)} only "
            f"({' or '.join('--task ' + t.name for t in takers)})"
        )
    for other in TASKS.values():
        for name, purpose in other.data_flags.items():
            if getattr(data, name) and name not in task.data_flags:
                raise TrainingError(f"--{name.replace('_', '-')} is for {purpose}")
    if task.reads_images and not model.image_size:
        raise TrainingError(
            f"--task {task.name} needs a model that reads images: set --image-size (e.g. 64)"
            + (f"; {init_from} has no image encoder" if init_from else "")
        )


def build_parts(
    data: DataConfig,
    config: TrainConfig,
    *,
    out: str | Path,
    info: distributed.DistInfo,
    model: ModelConfig | None = None,
    process: ProcessConfig | None = None,
    sample: SampleConfig | None = None,
    resume_from: Path | None = None,
    init_from: str | None = None,
    task: str = "generate",
    task_config: Any = None,
) -> TrainingParts:
    """The parts of a new, resumed (`resume_from`, a checkpoint folder) or fine-tuning (`init_from`) run.

    Args:
        model, process, sample: settings of a new model (a resumed or fine-tuned one keeps its own; `sample`
            replaces a fine-tuned model's sampling defaults).
        task: a name of `tasks.TASKS` (a resumed run keeps its own).
        task_config: the task's typed settings (e.g. DenoiseConfig); None: the task derives them or takes a
            fine-tuned model's, or its defaults.
    """
    out, process = Path(out), process or ProcessConfig()
    init = None
    if resume_from is not None:
        ckpt = read_config(resume_from)
        tokenizer = Tokenizer.load(resume_from / TOKENIZER_NAME)
        task, task_config = ckpt.task, ckpt.task_config
    elif init_from is not None:
        init = load_pretrained(init_from)
        ckpt, tokenizer = dataclasses.replace(init.config, task=task), init.tokenizer
        ckpt.sample = sample or ckpt.sample
        kept = init.config.task_config  # a fine-tuned model of the same kind keeps its settings
        task_config = task_config or (
            kept if isinstance(kept, get_task(task).config_class) else None
        )
    else:
        ckpt, tokenizer = None, None
    spec = get_task(task)
    model_config = ckpt.model if ckpt else (model or ModelConfig())
    _check_task(spec, data, model_config, ckpt.process if ckpt else process, init_from)
    seq_len = data.seq_len or model_config.max_len
    if seq_len > model_config.max_len:
        raise TrainingError(
            f"--seq-len {seq_len} exceeds the model's max length {model_config.max_len}"
        )
    made = spec.prepare(
        TaskRequest(
            data=data,
            model=model_config,
            config=task_config,
            resumed=resume_from is not None,
            tokenizer=tokenizer,
            out=out,
            seq_len=seq_len,
            batch_size=config.batch_size,
            rank=info.rank,
            world_size=info.world_size,
            seed=config.seed,
            eval_batches=config.eval_batches,
            is_main=info.is_main,
            barrier=distributed.barrier,
        )
    )
    tokenizer = made.tokenizer
    if ckpt is None:
        model_config = dataclasses.replace(
            model_config,
            vocab_size=tokenizer.vocab_size,
            n_labels=made.n_labels,
            causal=model_config.causal or config.objective == "ar",
            # Gaussian diffusion: the network reads the codes of the ids
            input_dim=analog_bits(tokenizer.vocab_size)
            if process.name == "gaussian"
            else model_config.input_dim,
        )
        ckpt = CheckpointConfig(
            model=model_config,
            process=process,
            sample=sample or spec.sample or SampleConfig(),
            objective=config.objective,
            task=task,
            task_config=made.config,
            text_form=made.text_form,
        )
    else:
        grows = init is not None and ckpt.model.n_labels == 0  # fine-tuning may add the labels
        if ckpt.model.n_labels != made.n_labels and not grows:
            raise TrainingError(
                f"the model has {ckpt.model.n_labels} labels, and --labels gives {made.n_labels}"
            )
        # fine-tuning records this run's task settings (noise rates, length rule), not the original's
        ckpt = dataclasses.replace(ckpt, task_config=made.config, text_form=made.text_form)
        if init is not None:
            ckpt = finetune_config(ckpt, config, n_labels=made.n_labels)
    if ckpt.objective != config.objective:
        raise TrainingError(
            f"--objective {config.objective} does not match the checkpoint's objective {ckpt.objective}"
        )
    # the same initial weights (and adapters) on every rank, whatever the caller's global RNG, left as it was
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = build_network(ckpt.model)
        if init is not None:
            load_init(net, init.model)
        if config.lora_rank and resume_from is None:
            net, ckpt = start_lora(net, ckpt, config, base=init_from)
    process_ = build_process(
        ckpt.process,
        mask_id=tokenizer.mask_id,
        vocab_size=tokenizer.vocab_size,
        special_ids=tokenizer.special_ids,
    )
    objective = build_objective(
        config.objective,
        process=process_,
        bos_id=tokenizer.bos_id,
        block_size=ckpt.model.block_size,
        # a gain on CPUs; on an H200 the row selection's host-device syncs cost more than it saves (0.92-0.99x,
        # `bench/profile_step.py --device cuda`), and data-dependent shapes would break a compiled graph
        sparse_logits=info.device.type == "cpu" and not config.compile,
    )
    return TrainingParts(
        net=net.to(info.device),
        tokenizer=tokenizer,
        process=process_,
        objective=objective,
        stream=made.train,
        valid=made.valid,
        checkpoint=ckpt,
    )


def build_trainer(
    data: DataConfig,
    config: TrainConfig,
    *,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    **settings: Any,
) -> Trainer:
    """A Trainer for a new run into OUT, or for the run OUT holds (`resume`). `settings`: the keyword arguments of
    `build_parts` (model, process, sample, init_from, task, task_config)."""
    out = Path(out)
    info = distributed.setup(config.device)
    checkpoints = find_checkpoints(out)
    if checkpoints and not resume:
        raise TrainingError(
            f"{out} already holds a training run ({checkpoints[-1].name}); pass --resume to continue it or "
            "choose another --out"
        )
    resume_from = checkpoints[-1] if resume and checkpoints else None
    if resume and resume_from is None:
        logger.warning("--resume: no checkpoint in %s yet, starting a new run", out)
    parts = build_parts(data, config, out=out, info=info, resume_from=resume_from, **settings)
    return Trainer(parts, config, out=out, info=info, resume_from=resume_from, progress=progress)


def train(
    data: DataConfig,
    config: TrainConfig,
    *,
    out: str | Path,
    callbacks: Sequence[EvalCallback] = (),
    **kwargs: Any,
) -> TrainResult:
    """Train a model (see `build_trainer` for the arguments, `Trainer.run` for `callbacks`) and return its
    TrainResult. OUT/.lock keeps a second run out of OUT while this one lives (training/lock.py); under torchrun
    rank 0 holds it."""
    main = int(os.environ.get("RANK", "0")) == 0
    with RunLock(out) if main else contextlib.nullcontext():
        if main:
            remove_stale_temporaries(Path(out))
        return build_trainer(data, config, out=out, **kwargs).run(callbacks=callbacks)
