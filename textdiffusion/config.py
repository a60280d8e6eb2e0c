"""Typed configuration: one dataclass per component, validated at construction and saved beside the weights.

Nothing here imports torch, so the CLI can build and print configs before paying for the torch import.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Literal, TypeVar, get_args

FORMAT_VERSION = 2
MAX_CONTEXT = 1 << 20
"""Longest context a ModelConfig accepts (the rotary and position tables are allocated for all of it)."""

ProcessName = Literal["masked", "uniform", "gaussian"]
ScheduleName = Literal["loglinear", "cosine", "linear"]
SamplerName = Literal["ancestral", "cached", "confidence", "block"]
Objective = Literal["diffusion", "ar"]


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names the flag or key."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclasses.dataclass
class ModelConfig:
    """The denoising transformer. `vocab_size` comes from the tokenizer."""

    vocab_size: int = 0
    """Number of token ids (set from the tokenizer)."""
    max_len: int = 256
    """Longest sequence the network accepts, conditioning prefix included."""
    n_layers: int = 6
    """Transformer blocks."""
    n_heads: int = 6
    """Attention heads per block."""
    dim: int = 384
    """Hidden width."""
    mlp_ratio: float = 4.0
    """MLP hidden width as a multiple of `dim` (SwiGLU uses 2/3 of it per branch)."""
    dropout: float = 0.0
    """Dropout on attention outputs and MLPs during training."""
    causal: bool = False
    """Causal attention (the autoregressive baseline); diffusion models are bidirectional."""
    input_dim: int = 0
    """Width of continuous inputs x_t (Gaussian diffusion: the analog-bit codes); 0 reads token ids."""
    time_conditioning: bool = False
    """Add an embedding of the diffusion time t. Masked diffusion does not need it (RADD, Ou et al. 2024)."""
    n_labels: int = 0
    """Number of class labels for label conditioning (0 = off); label `n_labels` is the null label."""
    align_prefix: bool = True
    """Number the target's positions from 0, like the conditioning prefix's, so that target token i lines up with
    source token i (copy-friendly for denoising); otherwise the target continues after the prefix."""
    rope_theta: float = 10000.0
    """Base of the rotary position frequencies."""
    tie_embeddings: bool = False
    """Share the input embedding with the output projection."""
    image_size: int = 0
    """Side of the square RGB images the network reads through its image encoder and cross-attention (captioning);
    0: no image input."""
    patch_size: int = 8
    """Side of the square image patches, each one encoder token."""
    image_layers: int = 2
    """Transformer blocks of the image encoder."""
    fp32_residual: bool = False
    """Keep the residual stream in float32 under autocast (mixed precision). By default it runs in the autocast
    dtype (bf16), as Megatron-LM does by default: that halves the bytes of the norms and residual adds, and made the
    compiled ~85M-parameter training step 1.056x faster on an H200 (bench/README.md, "MFU variants"). Norms still
    compute in float32, and without autocast (CPU training) the stream is float32 either way."""
    block_size: int = 0
    """Block diffusion (BD3-LM, Arriola et al. 2025): tokens in blocks of this size, each block denoised given the
    clean blocks before it (block-causal); must divide max_len. 0: one block of the whole context (masked
    diffusion as MDLM)."""

    def __post_init__(self) -> None:
        _check(self.vocab_size >= 0, f"--vocab-size must be >= 0, got {self.vocab_size}")
        _check(self.max_len > 0, f"--max-len must be positive, got {self.max_len}")
        _check(
            self.max_len <= MAX_CONTEXT,
            f"--max-len must be at most {MAX_CONTEXT:,} tokens (the position tables are allocated at that size), "
            f"got {self.max_len:,}",
        )
        _check(self.n_layers > 0, f"--n-layers must be positive, got {self.n_layers}")
        _check(self.n_heads > 0, f"--n-heads must be positive, got {self.n_heads}")
        _check(
            self.dim % self.n_heads == 0 and (self.dim // self.n_heads) % 2 == 0,
            f"--dim ({self.dim}) must be divisible by --n-heads ({self.n_heads}) with an even head size",
        )
        _check(0.0 <= self.dropout < 1.0, f"--dropout must be in [0, 1), got {self.dropout}")
        _check(self.mlp_ratio > 0, f"--mlp-ratio must be positive, got {self.mlp_ratio}")
        _check(self.image_size >= 0, f"--image-size must be >= 0, got {self.image_size}")
        if self.image_size:
            _check(
                self.patch_size > 0 and self.image_size % self.patch_size == 0,
                f"--image-size ({self.image_size}) must be a multiple of --patch-size ({self.patch_size})",
            )
            _check(
                self.image_layers > 0, f"--image-layers must be positive, got {self.image_layers}"
            )
        _check(self.block_size >= 0, f"--block-size must be >= 0, got {self.block_size}")
        if self.block_size:
            _check(
                self.max_len % self.block_size == 0,
                f"--block-size ({self.block_size}) must divide the context --max-len ({self.max_len})",
            )
            _check(
                not self.causal,
                "--block-size is for diffusion models, not the autoregressive baseline (--objective ar)",
            )
            _check(
                not (self.time_conditioning or self.input_dim or self.image_size),
                "--block-size needs a masked-diffusion language model (--process masked, --task generate)",
            )


PRESETS: dict[str, dict[str, Any]] = {
    # ~0.1M parameters: tests and smoke runs.
    "tiny": dict(n_layers=2, n_heads=2, dim=64, max_len=128),
    # ~10M parameters: the shipped character models.
    "small": dict(n_layers=6, n_heads=6, dim=384, max_len=256),
    # ~85M parameters (GPT-2 small shape, 1024 tokens): benchmark and GPU runs.
    "base": dict(n_layers=12, n_heads=12, dim=768, max_len=1024),
}


@dataclasses.dataclass
class ProcessConfig:
    """The forward (noising) process."""

    name: ProcessName = "masked"
    """Forward process."""
    schedule: ScheduleName = "loglinear"
    """Noise schedule alpha(t): loglinear (1 - t), cosine, or linear (in log alpha)."""
    t_min: float = 1e-3
    """Smallest training time; the ELBO weight grows like 1/t near 0."""
    antithetic: bool = True
    """Stratify the training times of a batch over [t_min, 1] (lower-variance ELBO gradient)."""

    def __post_init__(self) -> None:
        _check(
            self.name in ("masked", "uniform", "gaussian"),
            f"--process must be masked, uniform or gaussian, got {self.name!r}",
        )
        _check(
            self.schedule in ("loglinear", "cosine", "linear"),
            f"--schedule must be loglinear, cosine or linear, got {self.schedule!r}",
        )
        _check(0.0 <= self.t_min < 1.0, f"--t-min must be in [0, 1), got {self.t_min}")


@dataclasses.dataclass
class SampleConfig:
    """Defaults of the reverse process, saved with a model so that `generate` works as trained."""

    sampler: SamplerName = "cached"
    """ancestral (MDLM), cached (ancestral without recomputing unchanged states), confidence, or block (block after
    block with a KV cache, for block diffusion models)."""
    steps: int = 64
    """Refinement steps (network calls at most)."""
    temperature: float = 1.0
    """Softmax temperature of the denoiser's predictions."""
    top_p: float = 1.0
    """Nucleus sampling: keep the smallest set of tokens with this much probability."""
    threshold: float | None = None
    """confidence sampler: unmask every token above this probability (at least one per step)."""

    def __post_init__(self) -> None:
        _check(
            self.sampler in get_args(SamplerName),
            f"--sampler must be ancestral, cached, confidence or block, got {self.sampler!r}",
        )
        _check(self.steps > 0, f"--steps must be positive, got {self.steps}")
        _check(self.temperature > 0, f"--temperature must be positive, got {self.temperature}")
        _check(0.0 < self.top_p <= 1.0, f"--top-p must be in (0, 1], got {self.top_p}")
        _check(
            self.threshold is None or 0.0 < self.threshold < 1.0,
            f"--threshold must be in (0, 1), got {self.threshold}",
        )


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

    def __post_init__(self) -> None:
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


C = TypeVar("C")


def config_from_dict(cls: type[C], data: dict[str, Any], *, where: str = "config.json") -> C:
    """Build a config dataclass from a dict; unknown keys are an error that names them."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: expected an object for {cls.__name__}, got {type(data).__name__}"
        )
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown} for {cls.__name__}; known keys: {sorted(names)}"
        )
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        expected = _type_mismatch(value, hints.get(name, Any))
        if expected is not None:
            raise ConfigError(
                f"{where}: {name} must be {expected}, got {json.dumps(value, default=repr)} "
                f"({_json_type(value)})"
            )
    try:
        return cls(**values)
    except (TypeError, ConfigError) as exc:
        # a wrong type, or a value its checks refuse: name the file
        raise ConfigError(f"{where}: {exc}") from exc


def _json_type(value: Any) -> str:
    """The JSON name of a value's type, as a config.json author sees it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "integer" if isinstance(value, int) else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (tuple, list)):
        return "list"
    return "object" if isinstance(value, dict) else type(value).__name__


def _type_mismatch(value: Any, hint: Any) -> str | None:
    """What `hint` expects, in words, when `value` (read from JSON) does not fit it; None when it fits.

    Checked before the dataclass is built: its own checks then compare numbers, and a string where a number belongs
    would fail there with a Python message ("not all arguments converted during string formatting"). Types this
    does not know (nested dataclasses, Any) are left to the dataclass.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return None
    if hint is type(None):
        return None if value is None else "null"
    if origin in (typing.Union, types.UnionType):
        options = [_type_mismatch(value, a) for a in args]
        if any(o is None for o in options):
            return None
        return " or ".join(dict.fromkeys(o for o in options if o))
    if origin is Literal:
        return None if value in args else f"one of {list(args)}"
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "a number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if origin is tuple:
        if not isinstance(value, tuple):
            return "a list"
        if len(args) == 2 and args[1] is Ellipsis:
            item = next(
                (_type_mismatch(v, args[0]) for v in value if _type_mismatch(v, args[0])), None
            )
            return None if item is None else f"a list of items that are each {item}"
        if len(value) != len(args) or any(_type_mismatch(v, a) for v, a in zip(value, args)):
            return f"a list of {len(args)} items ({', '.join(getattr(a, '__name__', str(a)) for a in args)})"
        return None
    return None


def config_to_dict(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config)))
