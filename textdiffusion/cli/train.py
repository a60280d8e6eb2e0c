"""`textdiffusion train`: train or fine-tune a model on your own text (also under torchrun)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from textdiffusion.config import (
    DataConfig,
    DenoiseConfig,
    LMConfig,
    ProcessName,
    ScheduleName,
    SearchConfig,
    TaskName,
    TrainConfig,
)


@dataclasses.dataclass
class TrainArgs:
    out: str
    """Folder for checkpoints and the final model (loadable with --model OUT)."""
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    task: TaskName = "generate"
    """generate: a language model of --data; denoise: a corrector trained on --data corrupted on the fly; style: a
    rewriter trained on aligned lines, --data (sources) and --targets (their rewrites); caption: a describer of images,
    trained on caption tables (--data captions.tsv, with image and caption columns)."""
    denoise: DenoiseConfig = dataclasses.field(default_factory=DenoiseConfig)
    lm: LMConfig = dataclasses.field(default_factory=LMConfig)
    """--task generate: variable-length blanks for infilling (--blank-rate, --max-blank)."""
    edit_gap: int = 0
    """--task style with --targets: refine the source rather than generate from masks. The rewrite is written on a
    canvas of the source's tokens, each followed by this many insertion slots (2 is a good start); with no edit the
    output is the source. 0: generate the rewrite from masks."""
    preset: Literal["tiny", "small", "base"] = "small"
    """Model size: tiny (~0.1M parameters), small (~10M), base (~85M, 1024 tokens)."""
    n_layers: int | None = None
    """Override the preset's number of blocks."""
    n_heads: int | None = None
    """Override the preset's attention heads."""
    dim: int | None = None
    """Override the preset's width."""
    max_len: int | None = None
    """Override the preset's context length (tokens)."""
    dropout: float = 0.0
    """Dropout in the network."""
    block_size: int = 0
    """Block diffusion (BD3-LM): denoise blocks of this many tokens, each given the clean blocks before it, and
    sample block after block with a KV cache (any --length); must divide --max-len. 0: the whole context at once."""
    image_size: int | None = None
    """--task caption: side of the square images the model reads (default 64)."""
    patch_size: int = 8
    """--task caption: side of the image patches (one encoder token each)."""
    image_layers: int = 2
    """--task caption: blocks of the image encoder."""
    image_stem: Literal["patch", "conv"] = "patch"
    """--task caption: patch tokens from one strided convolution (patch) or a stack of stride-2 3x3 ones (conv)."""
    process: ProcessName = "masked"
    """Forward process: masked (absorbing), uniform (random-token noise) or gaussian (Gaussian noise on analog-bit
    codes of the tokens); the last two make the network time-conditioned and sample with the ancestral sampler."""
    schedule: ScheduleName = "loglinear"
    """Noise schedule alpha(t) of the masked and uniform processes (gaussian has its own linear log-SNR schedule)."""
    resume: bool = False
    """Continue the run in --out from its last checkpoint (same step, optimizer, RNG and data position)."""
    init_from: str | None = None
    """Fine-tune: start from this model (shipped name, folder or hub id) and its tokenizer."""
    quiet: bool = False
    """No progress bar."""


def run_settings(args: TrainArgs) -> dict:
    """What `train` and `search` pass to the trainer besides the data and TrainConfig: model, process, sampler
    defaults, task and fine-tuning source."""
    from textdiffusion.cli.common import CLIError, resolve_device
    from textdiffusion.config import PRESETS, ConfigError, ModelConfig, ProcessConfig, SampleConfig
    from textdiffusion.tasks import get_task

    resolve_device(args.train.device)  # --device cuda without a GPU fails here, in one line
    task = get_task(args.task)
    overrides = {
        k: v
        for k, v in dict(
            n_layers=args.n_layers, n_heads=args.n_heads, dim=args.dim, max_len=args.max_len
        ).items()
        if v is not None
    }
    unmasked = args.process != "masked"
    if args.image_size is not None and not task.reads_images:
        raise CLIError("--image-size is for --task caption")
    if args.block_size and (
        unmasked or not task.blocks or args.init_from or args.train.objective != "diffusion"
    ):
        raise CLIError(
            "--block-size trains a new masked-diffusion language model (--process masked, --task generate, "
            "--objective diffusion, no --init-from)"
        )
    if task.reads_images:
        overrides.update(
            image_size=args.image_size or 64,
            patch_size=args.patch_size,
            image_layers=args.image_layers,
            image_stem=args.image_stem,
        )
    try:
        model = ModelConfig(
            **{**PRESETS[args.preset], **overrides, "dropout": args.dropout},
            block_size=args.block_size,
            # without masks the amount of noise cannot be read off x_t, so the network is told t
            time_conditioning=unmasked,
        )
        process = ProcessConfig(name=args.process, schedule=args.schedule)
    except ConfigError as exc:
        raise CLIError(str(exc)) from None
    # the task's sampling defaults; without masks every token may change at every step: nothing to cache or unmask
    sample = None
    if unmasked:
        sample = SampleConfig(sampler="ancestral")
    elif args.block_size:
        sample = SampleConfig(sampler="block")
    # the option group of this task's settings (e.g. --denoise.*), if the CLI has one
    options = [v for v in vars(args).values() if isinstance(v, task.config_class)]
    if args.edit_gap:
        from textdiffusion.config import StyleConfig

        if args.edit_gap < 0 or task.config_class is not StyleConfig or args.data.labels:
            raise CLIError(
                "--edit-gap G (G > 0) is for --task style with aligned pairs (--targets), not attribute labels"
            )
        options = [StyleConfig(gap=args.edit_gap)]
    return dict(
        model=model,
        process=process,
        sample=sample,
        init_from=args.init_from,
        task=args.task,
        task_config=options[0] if options else None,
        progress=not args.quiet,
    )


def train(args: TrainArgs) -> None:
    """Train (or fine-tune, or resume) a text diffusion model; `torchrun --nproc_per_node=N` runs it data-parallel."""
    import contextlib
    import logging
    import os
    from pathlib import Path

    from textdiffusion.cli.common import CLIError, print_config, save_config

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from textdiffusion.checkpoint import CheckpointError
    from textdiffusion.config import ConfigError
    from textdiffusion.data import DataError
    from textdiffusion.training import TrainingError, find_checkpoints
    from textdiffusion.training import train as run_training
    from textdiffusion.training.lock import RunLock

    settings = run_settings(args)
    main = int(os.environ.get("RANK", "0")) == 0
    try:
        # OUT/.lock first: a second run into a busy --out stops before it writes anything there
        with RunLock(args.out) if main else contextlib.nullcontext():
            if main:
                print_config(args, title="train config")
                if args.resume or not find_checkpoints(
                    Path(args.out)
                ):  # else build_trainer refuses
                    save_config(args, Path(args.out) / "train_args.json")
            result = run_training(
                args.data, args.train, out=args.out, resume=args.resume, **settings
            )
    except (TrainingError, DataError, ConfigError, CheckpointError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    except (
        OSError
    ) as exc:  # a full disk, a read-only folder (the trainer keeps its last good checkpoint)
        where = f"{exc.filename}: " if exc.filename else ""
        raise CLIError(f"cannot write in --out {args.out}: {where}{exc.strerror or exc}") from None
    if main and args.train.lora_rank:
        from textdiffusion.training.finetune import base_reference
        from textdiffusion.training.lora import finalize

        finalize(result.out, mode=args.train.lora_save, base=base_reference(args.init_from))
    if int(os.environ.get("RANK", "0")) == 0:
        bpc = (
            f", valid {result.valid_bits_per_char:.4f} bits/char"
            if result.valid_bits_per_char
            else ""
        )
        print(
            f"trained {result.parameters:,} parameters for {result.step} steps: loss {result.loss:.4f}{bpc}"
        )
        print(f"model saved in {result.out} (use --model {result.out})")


@dataclasses.dataclass
class SearchArgs(TrainArgs):
    search: SearchConfig = dataclasses.field(default_factory=SearchConfig)


def search(args: SearchArgs) -> None:
    """Hyperparameter search (Optuna): short training runs ranked by validation bits/char; bad ones are pruned early.

    TPE samples the learning rate, batch size, warm-up, dropout and width (`--sampler grid`: every pair of --lrs
    and --batch-sizes). Each trial trains with the train options given (set a small --steps with an --eval-every
    below it, or --max-minutes for equal-cost trials) into OUT/trial-NNN; OUT/search.json holds the table and
    OUT/search.png the study's plot. The study is kept in --storage (default OUT/study.db): run the same command
    again to resume it or to add --trials. One process per command (not under torchrun); several commands may share
    one storage. The number of refinement steps is a sampling setting: for a conditional task (denoise, style from
    pairs) the best model rewrites the validation sources at 4..64 steps and the task's metric (chrF) picks the
    number (OUT/sampling_steps.json); for a language model `textdiffusion eval --steps 8 16 32 64` on the chosen
    model bounds the sampler's likelihood at each."""
    import json
    import logging
    import math
    import os
    from pathlib import Path

    from textdiffusion.cli.common import CLIError, print_config, save_config

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from textdiffusion.config import ConfigError
    from textdiffusion.data import DataError
    from textdiffusion.training import TrainingError
    from textdiffusion.training.search import format_trials
    from textdiffusion.training.search import search as run_search

    if "RANK" in os.environ:
        raise CLIError(
            "search runs its trials one after another in one process: start it without torchrun"
        )
    if args.resume:
        raise CLIError(
            "--resume continues one run; a search resumes by itself from --storage (run it again)"
        )
    settings = run_settings(args)
    print_config(args, title="search config")
    save_config(args, Path(args.out) / "search_args.json")
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the search logs each trial itself
    except ImportError:
        pass  # run_search says what to install
    try:
        trials = run_search(
            args.data, args.train, out=args.out, search_config=args.search, **settings
        )
    except (TrainingError, DataError, ConfigError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    print(format_trials(trials))
    best = trials[0]
    if not math.isfinite(best.valid_bits_per_char):
        raise CLIError(f"no trial of the study finished (see {Path(args.out) / 'search.json'})")
    print(f"best: {best.flags} (trial {best.number}, model in {best.out})")
    print(f"plot: {Path(args.out) / 'search.png'}")
    steps_file = Path(args.out) / "sampling_steps.json"
    if steps_file.is_file():  # a conditional task: the steps were scored by its metric
        chosen = json.loads(steps_file.read_text())
        table = ", ".join(f"{n}: {v:.1f}" for n, v in chosen["scores"].items())
        print(f"sampling steps by {chosen['metric']}: --steps {chosen['best_steps']} ({table})")
    elif args.train.objective == "diffusion" and args.process == "masked":
        print(
            f"refinement steps: textdiffusion eval --model {best.out} --data VALID.txt --steps 8 16 32 64"
        )
