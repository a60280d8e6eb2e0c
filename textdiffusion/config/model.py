"""The network, the forward process and the sampler's defaults: the parts of config.json a model is built from."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_args

from textdiffusion.config.base import _check

MAX_CONTEXT = 1 << 20
"""Longest context a ModelConfig accepts (the rotary and position tables are allocated for all of it)."""

ProcessName = Literal["masked", "uniform", "gaussian"]
ScheduleName = Literal["loglinear", "cosine", "linear"]
SamplerName = Literal["ancestral", "cached", "confidence", "remask", "block"]
RemaskSchedule = Literal["cap", "rescale", "loop"]
UnmaskOrder = Literal["confidence", "left"]
Objective = Literal["diffusion", "ar"]


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
    image_stem: Literal["patch", "conv"] = "patch"
    """How the image encoder makes its patch tokens: one strided convolution of patch_size (a ViT's patch
    embedding), or log2(patch_size) stride-2 3x3 convolutions (a convolutional stem, Xiao et al. 2021: the locality
    prior that small training sets need; patch_size must then be a power of two)."""
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
        _check(
            self.max_len <= MAX_CONTEXT,
            f"--max-len must be at most {MAX_CONTEXT:,} tokens (the position tables are allocated at that size), "
            f"got {self.max_len:,}",
        )
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
            _check(
                self.image_stem == "patch"
                or (self.patch_size >= 2 and self.patch_size & (self.patch_size - 1) == 0),
                f"--image-stem conv needs a power-of-two --patch-size of at least 2, got {self.patch_size}",
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
    order: UnmaskOrder = "confidence"
    """confidence sampler: reveal the most confident predictions (confidence), or the first masked position of every
    run of masks each step (left: a blank or a rewrite is written left to right, with the text on both sides seen)."""
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
            self.order in get_args(UnmaskOrder),
            f"--order must be confidence or left, got {self.order!r}",
        )
        _check(
            self.order == "confidence" or self.threshold is None,
            "--order left reveals one position per run of masks each step; it cannot go with --threshold",
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
