"""Typed configuration: one dataclass per component, validated at construction and saved beside the weights.

Nothing here imports torch, so the CLI can build and print configs before paying for the torch import.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal, TypeVar, get_args

FORMAT_VERSION = 2

ProcessName = Literal["masked", "uniform", "gaussian"]
ScheduleName = Literal["loglinear", "cosine", "linear"]
SamplerName = Literal["ancestral", "cached", "confidence", "remask", "block"]
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
    block_size: int = 0
    """Block diffusion (BD3-LM, Arriola et al. 2025): tokens in blocks of this size, each block denoised given the
    clean blocks before it (block-causal); must divide max_len. 0: one block of the whole context (masked
    diffusion as MDLM)."""
    backbone: Literal["transformer", "hf", "dit"] = "transformer"
    """The network family (networks.build_network): the project's transformer; a Hugging Face `transformers`
    model rebuilt from `hf_config` (networks/hf.py); or the DiT of MDLM/SEDD/BD3LM/DUO (networks/dit.py)."""
    hf_config: dict[str, Any] | None = None
    """backbone hf: the `transformers` config dict (config.json of the source model, with `architectures`);
    backbone dit: the DiT settings (networks/dit.py, `DiTSettings`)."""
    logit_shift: int = 0
    """Read the prediction of position i off the output at position i - logit_shift (1 for networks adapted from
    causal LMs: DiffuGPT, Dream); 0 reads each position's own output."""
    attention_anneal_steps: int = 0
    """backbone hf: widen a causal attention mask to full bidirectional attention over the first N fine-tuning
    steps (DiffuGPT's attention-mask annealing); 0: bidirectional from the start."""
    lora: dict[str, Any] | None = None
    """Low-rank adapters on the network (training/lora.py): rank, alpha, targets, and `base`, the model whose
    weights the adapter folder leaves out (None when the folder holds every weight)."""

    def __post_init__(self) -> None:
        _check(
            self.backbone in ("transformer", "hf", "dit"),
            f"--backbone must be transformer, hf or dit, got {self.backbone!r}",
        )
        _check(
            (self.hf_config is not None) == (self.backbone != "transformer"),
            f"hf_config is needed by (and only by) the hf and dit backbones (backbone {self.backbone!r})",
        )
        _check(self.logit_shift in (0, 1), f"logit_shift must be 0 or 1, got {self.logit_shift}")
        _check(
            self.attention_anneal_steps >= 0,
            f"--attention-anneal-steps must be >= 0, got {self.attention_anneal_steps}",
        )
        if self.backbone != "transformer":
            _check(
                self.image_size == 0 and self.input_dim == 0,
                f"the {self.backbone} backbone reads token ids only (image_size and input_dim must be 0)",
            )
        _check(self.vocab_size >= 0, f"--vocab-size must be >= 0, got {self.vocab_size}")
        _check(self.max_len > 0, f"--max-len must be positive, got {self.max_len}")
        _check(self.n_layers > 0, f"--n-layers must be positive, got {self.n_layers}")
        _check(self.n_heads > 0, f"--n-heads must be positive, got {self.n_heads}")
        _check(
            self.backbone != "transformer"
            or (self.dim % self.n_heads == 0 and (self.dim // self.n_heads) % 2 == 0),
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
    """ancestral (MDLM), cached (ancestral without recomputing unchanged states), confidence, remask (ReMDM), or
    block (block after block with a KV cache, for block diffusion models)."""
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
            f"--sampler must be one of {', '.join(get_args(SamplerName))}, got {self.sampler!r}",
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
