"""Where the training data comes from, how training runs, and how a hyperparameter search explores it."""

from __future__ import annotations

import dataclasses
from typing import Literal

from textdiffusion.config.base import _check
from textdiffusion.config.model import Objective


@dataclasses.dataclass
class DataConfig:
    """Where training text comes from and how it is tokenized and packed."""

    data: tuple[str, ...] = ()
    """Text files, folders, globs or .jsonl files to train on."""
    valid: tuple[str, ...] = ()
    """Validation files (default: hold out --valid-fraction of --data)."""
    targets: tuple[str, ...] = ()
    """--task style: files aligned line by line with --data; line i is the restyled line i of the data."""
    valid_targets: tuple[str, ...] = ()
    """--task style: files aligned line by line with --valid."""
    labels: tuple[str, ...] = ()
    """--task style without --targets (attribute transfer): the attribute of each --data file, in order, e.g.
    `--data neg.txt pos.txt --labels negative positive`; each line is one text. --valid, if given, has a file per
    label in the same order."""
    label_dropout: float = 0.1
    """--labels: share of training lines shown without their label, so that the model also learns the unlabelled
    distribution that classifier-free guidance needs."""
    image_root: str | None = None
    """--task caption: the folder the image paths of the caption files are relative to (default: the folder of each
    caption file)."""
    valid_fraction: float = 0.05
    """Share of the training tokens held out for validation when --valid is not given."""
    jsonl_field: str = "text"
    """Field holding the text in .jsonl files."""
    hf_dataset: str | None = None
    """A Hugging Face `datasets` name or local data file (needs the `datasets` extra)."""
    hf_split: str = "train"
    """Split of --hf-dataset."""
    tokenizer: Literal["char", "bpe"] = "char"
    """Character-level, or byte-level BPE trained on the data."""
    bpe_vocab_size: int = 4096
    """Vocabulary size of a trained BPE tokenizer."""
    seq_len: int | None = None
    """Length of the packed training sequences (default: the model's max length)."""

    def __post_init__(self) -> None:
        _check(
            0.0 <= self.valid_fraction < 1.0,
            f"--valid-fraction must be in [0, 1), got {self.valid_fraction}",
        )
        _check(
            0.0 <= self.label_dropout < 1.0,
            f"--label-dropout must be in [0, 1), got {self.label_dropout}",
        )
        _check(
            len(set(self.labels)) == len(self.labels),
            f"--labels must be distinct, got {list(self.labels)}",
        )
        _check(
            self.bpe_vocab_size >= 300,
            f"--bpe-vocab-size must be >= 300, got {self.bpe_vocab_size}",
        )
        _check(
            self.seq_len is None or self.seq_len > 1, f"--seq-len must be > 1, got {self.seq_len}"
        )


@dataclasses.dataclass
class TrainConfig:
    """Optimisation, checkpointing and hardware."""

    steps: int = 5000
    """Optimizer steps."""
    batch_size: int = 64
    """Sequences per optimizer step, over all processes and accumulation steps."""
    grad_accum: int = 1
    """Micro-batches accumulated per optimizer step."""
    lr: float = 1e-3
    """Peak learning rate (AdamW)."""
    min_lr_ratio: float = 0.1
    """Final learning rate as a fraction of --lr (cosine decay)."""
    warmup_steps: int | None = None
    """Linear warm-up steps (default: min(200, 10% of --steps), and with --max-minutes at most 10% of that time;
    training/optim.py)."""
    weight_decay: float = 0.1
    """AdamW weight decay (not applied to norms, biases and embeddings)."""
    beta1: float = 0.9
    beta2: float = 0.98
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value (0 = off)."""
    ema_decay: float = 0.999
    """Exponential moving average of the weights; the EMA weights are saved (0 = off)."""
    eval_every: int = 500
    """Steps between validation ELBO evaluations (0 = only at the end)."""
    eval_batches: int = 8
    """Validation batches per evaluation."""
    save_every: int = 500
    """Steps between checkpoints (the last step is always saved)."""
    keep_checkpoints: int = 2
    """Resumable checkpoints kept in OUT/checkpoints."""
    log_every: int = 10
    """Steps between progress-bar updates (each one costs a device sync)."""
    seed: int = 0
    """Seed of the weights, the data order and the noise."""
    device: str = "auto"
    """cpu, cuda, cuda:N or auto."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """bf16 autocast on GPU (auto), or fp32. Under bf16 the residual stream is bf16 too (ModelConfig.fp32_residual)."""
    parallel: Literal["ddp", "fsdp"] = "ddp"
    """How torchrun processes share the model: DDP replicas or FSDP2 shards."""
    compile: bool = False
    """torch.compile the network and the loss (for GPU training: bench/README.md times the compiled step)."""
    objective: Objective = "diffusion"
    """diffusion (ELBO of the forward process) or ar (next-token baseline, causal attention)."""
    max_minutes: float | None = None
    """Stop (and save) after this many minutes of training; the learning rate then decays over this budget."""
    log: tuple[Literal["tensorboard"], ...] = ()
    """Also log the metrics to TensorBoard in OUT/tensorboard (needs the tensorboard package). OUT/metrics.jsonl and
    OUT/curves.png are always written."""
    lora_rank: int = 0
    """Fine-tune low-rank adapters of this rank through `peft` (LoRA, Hu et al. 2022) instead of every weight; 0: off.
    Needs --init-from."""
    lora_alpha: float = 16.0
    """LoRA scaling: the update is (alpha / rank) * B A."""
    lora_targets: tuple[str, ...] = ()
    """Names of the linear layers that get adapters (default: the attention and MLP projections of the backbone)."""
    lora_save: Literal["merged", "adapter"] = "merged"
    """What --out holds after LoRA training: the adapters merged into the weights (a plain model), or only the
    adapters (and the new label/segment embeddings) beside a reference to the --init-from model."""
    attention_anneal_steps: int = 0
    """--init-from a causal LM (GPT-2, LLaMA, Qwen2): anneal its causal attention to bidirectional over the first N
    steps (DiffuGPT); 0: bidirectional at once."""

    def __post_init__(self) -> None:
        _check(self.lora_rank >= 0, f"--lora-rank must be >= 0, got {self.lora_rank}")
        _check(self.lora_alpha > 0, f"--lora-alpha must be positive, got {self.lora_alpha}")
        _check(
            self.lora_save in ("merged", "adapter"),
            f"--lora-save must be merged or adapter, got {self.lora_save!r}",
        )
        _check(
            self.attention_anneal_steps >= 0,
            f"--attention-anneal-steps must be >= 0, got {self.attention_anneal_steps}",
        )
        for name in ("steps", "batch_size", "grad_accum", "log_every", "keep_checkpoints"):
            value = getattr(self, name)
            _check(value > 0, f"--{name.replace('_', '-')} must be positive, got {value}")
        _check(self.lr > 0, f"--lr must be positive, got {self.lr}")
        _check(
            self.batch_size % self.grad_accum == 0,
            f"--batch-size ({self.batch_size}) must be divisible by --grad-accum ({self.grad_accum})",
        )
        _check(0.0 <= self.ema_decay < 1.0, f"--ema-decay must be in [0, 1), got {self.ema_decay}")
        _check(
            0.0 <= self.min_lr_ratio <= 1.0,
            f"--min-lr-ratio must be in [0, 1], got {self.min_lr_ratio}",
        )
        _check(
            self.warmup_steps is None or self.warmup_steps >= 0,
            f"--warmup-steps must be >= 0, got {self.warmup_steps}",
        )
        _check(
            self.max_minutes is None or self.max_minutes > 0,
            f"--max-minutes must be positive, got {self.max_minutes}",
        )


@dataclasses.dataclass
class SearchConfig:
    """Hyperparameter search (`textdiffusion search`, Optuna): the sampler, pruner, budget, study and search space."""

    sampler: Literal["tpe", "grid"] = "tpe"
    """Optuna sampler of the trials. tpe: the tree-structured Parzen estimator (Bergstra et al. 2011) over the
    learning rate, batch size, warm-up, dropout and width; grid: every pair of --lrs and --batch-sizes, nothing else
    varied."""
    pruner: Literal["median", "hyperband", "none"] = "median"
    """Stop unpromising trials on the validation bits/char they report every --eval-every steps, once the longest
    warm-up of the search space is over. median: worse than the median of earlier trials at the same step;
    hyperband: successive-halving brackets (Li et al. 2018)."""
    trials: int | None = None
    """Trials the study holds in the end, finished or pruned, by every process together (default: 20 for tpe, the
    grid's size for grid); a resumed study runs the missing ones."""
    timeout: float | None = None
    """Seconds after which this process starts no new trial."""
    storage: str | None = None
    """Optuna storage URL (default sqlite:///OUT/study.db). A killed search resumes from it, and processes given one
    storage and --study-name share the study (a trial killed mid-run is retried)."""
    study_name: str | None = None
    """Name of the study in --storage (default: the name of the --out folder)."""
    lrs: tuple[float, ...] = (3e-4, 1e-3, 3e-3)
    """grid: the peak learning rates to try."""
    batch_sizes: tuple[int, ...] = (32, 64)
    """The batch sizes to try."""
    lr_range: tuple[float, float] = (1e-4, 3e-2)
    """tpe: the range of peak learning rates (log-uniform)."""
    warmup_range: tuple[int, int] | None = None
    """tpe: the range of warm-up steps (default: 0 to twice the default warm-up of --steps)."""
    dropout_range: tuple[float, float] = (0.0, 0.2)
    """tpe: the range of dropout rates."""
    dims: tuple[int, ...] = ()
    """tpe: the model widths to try (default: half, once and twice the preset's --dim; none when fine-tuning)."""
    prune_after: int = 3
    """median: trials that finish before pruning starts."""
    sampler_seed: int | None = None
    """Seed of the sampler (default: --seed plus the trials already in the study, so a resumed search draws new
    points; give processes that start together different seeds)."""

    def __post_init__(self) -> None:
        _check(
            self.trials is None or self.trials > 0, f"--trials must be positive, got {self.trials}"
        )
        _check(
            self.timeout is None or self.timeout > 0,
            f"--timeout must be positive, got {self.timeout}",
        )
        _check(bool(self.lrs) and min(self.lrs) > 0, f"--lrs must be positive, got {self.lrs}")
        _check(
            bool(self.batch_sizes) and min(self.batch_sizes) > 0,
            f"--batch-sizes must be positive, got {self.batch_sizes}",
        )
        _check(
            0 < self.lr_range[0] <= self.lr_range[1],
            f"--lr-range must be LOW HIGH with 0 < LOW <= HIGH, got {self.lr_range}",
        )
        _check(
            self.warmup_range is None or 0 <= self.warmup_range[0] <= self.warmup_range[1],
            f"--warmup-range must be LOW HIGH with 0 <= LOW <= HIGH, got {self.warmup_range}",
        )
        _check(
            0.0 <= self.dropout_range[0] <= self.dropout_range[1] < 1.0,
            f"--dropout-range must be LOW HIGH in [0, 1), got {self.dropout_range}",
        )
        _check(all(d > 0 for d in self.dims), f"--dims must be positive, got {self.dims}")
        _check(self.prune_after >= 0, f"--prune-after must be >= 0, got {self.prune_after}")
