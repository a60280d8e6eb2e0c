"""Typed configuration: one dataclass per component, validated at construction and saved beside the weights.

Nothing here imports torch, so the CLI can build and print configs before paying for the torch import.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal, TypeVar, get_args

FORMAT_VERSION = 1

ProcessName = Literal["masked", "uniform", "gaussian"]
ScheduleName = Literal["loglinear", "cosine", "linear"]
TaskName = Literal["generate", "denoise", "style", "caption"]
"""generate: a language model; denoise: a corrector of corrupted text; style: a rewriter trained on aligned pairs;
caption: a describer of images trained on (image, caption) pairs."""
TASKS: tuple[str, ...] = get_args(TaskName)
SamplerName = Literal["ancestral", "cached", "confidence", "remask"]
RemaskSchedule = Literal["cap", "rescale", "loop"]
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

    def __post_init__(self) -> None:
        _check(self.vocab_size >= 0, f"--vocab-size must be >= 0, got {self.vocab_size}")
        _check(self.max_len > 0, f"--max-len must be positive, got {self.max_len}")
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
    """ancestral (MDLM), cached (ancestral without recomputing unchanged states), confidence or remask (ReMDM)."""
    steps: int = 64
    """Refinement steps (network calls at most)."""
    temperature: float = 1.0
    """Softmax temperature of the denoiser's predictions."""
    top_p: float = 1.0
    """Nucleus sampling: keep the smallest set of tokens with this much probability."""
    threshold: float | None = None
    """confidence sampler: unmask every token above this probability (at least one per step)."""
    order_temperature: float = 0.0
    """confidence sampler: temperature of the unmasking order (Gumbel-top-k over log confidence); 0 reveals the
    most confident first."""
    remask_schedule: RemaskSchedule = "cap"
    """remask sampler: how often revealed tokens go back to the mask (ReMDM's cap, rescale or loop)."""
    eta: float = 0.02
    """remask sampler: remasking strength in [0, 1]."""
    t_on: float = 0.55
    """remask loop: the time the loop starts (the sampler's clock runs from 1 to 0)."""
    t_off: float = 0.05
    """remask loop: the time the loop ends."""
    alpha_on: float = 0.9
    """remask loop: the share of revealed tokens kept during the loop."""

    def __post_init__(self) -> None:
        _check(
            self.sampler in get_args(SamplerName),
            f"--sampler must be ancestral, cached, confidence or remask, got {self.sampler!r}",
        )
        _check(self.steps > 0, f"--steps must be positive, got {self.steps}")
        _check(self.temperature > 0, f"--temperature must be positive, got {self.temperature}")
        _check(0.0 < self.top_p <= 1.0, f"--top-p must be in (0, 1], got {self.top_p}")
        _check(
            self.threshold is None or 0.0 < self.threshold < 1.0,
            f"--threshold must be in (0, 1), got {self.threshold}",
        )
        _check(
            self.order_temperature >= 0,
            f"--order-temperature must be >= 0, got {self.order_temperature}",
        )
        _check(
            self.order_temperature == 0 or self.threshold is None,
            "--order-temperature samples the order of the count schedule; it cannot go with --threshold",
        )
        _check(
            self.remask_schedule in get_args(RemaskSchedule),
            f"--remask-schedule must be cap, rescale or loop, got {self.remask_schedule!r}",
        )
        _check(0.0 <= self.eta <= 1.0, f"--eta must be in [0, 1], got {self.eta}")
        _check(
            0.0 <= self.t_off < self.t_on <= 1.0,
            f"--t-on and --t-off need 0 <= t-off < t-on <= 1, got {self.t_on} and {self.t_off}",
        )
        _check(0.0 < self.alpha_on < 1.0, f"--alpha-on must be in (0, 1), got {self.alpha_on}")


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
class DenoiseConfig:
    """Training pairs of the denoising task: clean text corrupted on the fly (see data/corruption.py)."""

    max_chars: int = 120
    """Longest clean text per pair; longer lines are corrected in pieces of this size."""
    word_fraction: float = 0.3
    """Share of training pairs that are single words (for word-level spelling correction)."""
    word_clean_rate: float = 0.25
    """Share of those words left correct, so that correct words come back unchanged."""
    tokenized_rate: float = 0.0
    """Share of sentences given tokenised spacing ("do n't stop , then ."), so that tokenised input keeps it."""
    words: str | None = None
    """Word list for the single-word pairs: one word per line, optionally followed by a count (e.g. symspellpy's
    frequency dictionary); a word is drawn with probability proportional to the square root of its count. Default:
    the words of --data seen at least twice."""
    word_error_rate: float = 0.15
    """Share of words of a sentence that get a spelling error."""
    grammar_rate: float = 0.05
    """Rate of each grammatical slip (articles, agreement, verb forms, prepositions)."""
    clean_rate: float = 0.1
    """Share of sentences left clean."""
    workers: int = 0
    """Processes corrupting text ahead of training (0: in the training process)."""

    def __post_init__(self) -> None:
        _check(self.max_chars >= 8, f"--max-chars must be >= 8, got {self.max_chars}")
        for name in (
            "word_fraction",
            "word_clean_rate",
            "tokenized_rate",
            "word_error_rate",
            "grammar_rate",
            "clean_rate",
        ):
            value = getattr(self, name)
            _check(
                0.0 <= value <= 1.0, f"--{name.replace('_', '-')} must be in [0, 1], got {value}"
            )
        _check(self.workers >= 0, f"--workers must be >= 0, got {self.workers}")


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
    warmup_steps: int = 200
    """Linear warm-up steps."""
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
        _check(self.warmup_steps >= 0, f"--warmup-steps must be >= 0, got {self.warmup_steps}")


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
    try:
        return cls(**values)
    except (TypeError, ConfigError) as exc:
        # a wrong type, or a value its checks refuse: name the file
        raise ConfigError(f"{where}: {exc}") from exc


def config_to_dict(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config)))
