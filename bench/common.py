"""What the measurements share: model sizes, precision, timing (medians of synchronised repeats), the matmul rate
that MFU divides by, and training a character model on tinyshakespeare with the project's trainer.

The run/record/render skeleton is in bench/harness.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch

from bench.harness import SHARED_DATA, BenchArgs, log

DEFAULT_DATA = SHARED_DATA / "tinyshakespeare"
CHAR_VOCAB = 326
"""Vocabulary of the character tokenizer of tinyshakespeare: 5 special tokens, 256 byte tokens, 65 characters."""
MASK_ID, BOS_ID = 1, 2  # the ids of [MASK] and [BOS] in every textdiffusion tokenizer

# Model sizes by name: the presets of textdiffusion.config plus two in between (max_len is set per benchmark).
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(n_layers=2, n_heads=2, dim=64),  # ~0.1M parameters
    "mini": dict(n_layers=4, n_heads=4, dim=256),  # ~3M
    "small": dict(n_layers=6, n_heads=6, dim=384),  # ~10M, the shipped character models
    "medium": dict(n_layers=8, n_heads=8, dim=512),  # ~25M, the default judge
    "base": dict(n_layers=12, n_heads=12, dim=768),  # ~85M, GPT-2 small's shape
    "base-h128": dict(n_layers=12, n_heads=6, dim=768),  # heads of 128: 1.04x faster on an H200
}


def model_config(
    size: str, *, vocab_size: int, max_len: int, causal: bool = False, dropout: float = 0.0
):
    """A ModelConfig of a named size (see SIZES)."""
    from textdiffusion.config import ModelConfig

    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose from {sorted(SIZES)}")
    return ModelConfig(
        **SIZES[size], vocab_size=vocab_size, max_len=max_len, causal=causal, dropout=dropout
    )


def random_network(config, *, device, dtype, seed: int):
    """A randomly initialised network of ModelConfig `config` in eval mode (the cost of sampling does not depend on
    the weights), drawn from `seed` without touching the caller's RNG."""
    from textdiffusion.networks import DiffusionTransformer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DiffusionTransformer(config)
    return net.to(device=device, dtype=dtype).eval()


# -- precision and kernels ----------------------------------------------------------------------------------------
def inference_dtype(device: torch.device, dtype: str = "auto") -> torch.dtype:
    """Weights dtype for sampling: bf16 on CUDA (what a careful user deploys), float32 on the CPU."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA; nothing on the CPU."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


ATTENTION_BACKENDS = ("auto", "flash", "cudnn", "efficient", "math")


def attention_backend(name: str):
    """A context pinning `scaled_dot_product_attention` to one kernel (auto: PyTorch's own choice)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if name == "auto":
        return contextlib.nullcontext()
    backend = {
        "flash": SDPBackend.FLASH_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "math": SDPBackend.MATH,
    }[name]
    return sdpa_kernel([backend])


# -- timing -------------------------------------------------------------------------------------------------------
def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class CallCounter(torch.nn.Module):
    """Counts network calls; with CUDA graphs it also marks each call as a new step (the previous outputs are
    consumed before the next call, so the graph may overwrite them)."""

    def __init__(self, model: torch.nn.Module, *, cudagraphs: bool = False) -> None:
        super().__init__()
        self.model, self.config, self.cudagraphs, self.calls = model, model.config, cudagraphs, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        if self.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        return self.model(*args, **kwargs)


@dataclasses.dataclass
class Timing:
    """Seconds of repeated, synchronised calls."""

    median: float
    times: list[float]

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the repeats were."""
        return (max(self.times) - min(self.times)) / self.median if self.median > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"median_s": self.median, "times_s": self.times, "spread": self.spread}


def time_call(
    fn: Callable[[], Any], *, device: torch.device, repeats: int = 3, warmup: int = 1
) -> tuple[Timing, Any]:
    """Median wall time of `fn()` over `repeats` runs after `warmup` runs; the device is synchronised around
    every run, so queued GPU work is counted. Returns (timing, the last result)."""
    result = None
    for _ in range(warmup):
        result = fn()
    synchronize(device)
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return Timing(median=statistics.median(times), times=times), result


def matmul_rate(
    device: torch.device, dtype: torch.dtype, *, n: int | None = None, repeats: int = 10
) -> float:
    """Measured dense matrix-multiply rate in FLOP/s (the denominator of MFU): median of n x n x n products."""
    if n is None:
        n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    timing, _ = time_call(lambda: a @ b, device=device, repeats=repeats, warmup=3)
    return 2 * n**3 / timing.median


def record_matmul_rate(device: torch.device, results) -> float | None:
    """The card's measured bf16 matmul rate (FLOP/s), the denominator of MFU, kept in the results and logged; None off
    CUDA (a CPU's matmul rate depends too much on shape and threads)."""
    if device.type != "cuda":
        return None
    peak = matmul_rate(device, torch.bfloat16)
    results.set("matmul_flops_per_s", {"dtype": "bfloat16", "value": peak})
    log(f"measured bf16 matmul rate: {peak / 1e12:.1f} TFLOP/s")
    return peak


# -- overlap with references -------------------------------------------------------------------------------------
def overlap(outputs: list[str], references: list[list[str]]) -> dict[str, float]:
    """sacrebleu corpus BLEU and chrF (0..100) of `outputs` against their references (one list per output, cut to
    the fewest any output has: sacrebleu wants as many references for each)."""
    from textdiffusion.evaluation.overlap import bleu_chrf

    n = min(len(r) for r in references)
    scores = bleu_chrf(outputs, [r[:n] for r in references])
    if not scores:
        raise SystemExit("sacrebleu is not installed: pip install -e '.[bench]'")
    return scores


# -- training a character model -----------------------------------------------------------------------------------
def train_char_model(
    data_dir: str | Path,
    *,
    out: Path,
    model,
    steps: int,
    batch_size: int,
    seq_len: int,
    device: torch.device,
    warmup_steps: int = 200,
    progress: bool = True,
    **train: Any,
) -> dict:
    """Train `model` (a ModelConfig; its vocab_size is the tokenizer's) on DATA_DIR/train.txt with the character
    tokenizer through the public path (`textdiffusion.training.train`), resuming an interrupted run in OUT.

    `train` holds the other TrainConfig fields (lr, objective, ema_decay, max_minutes, ...); the warm-up is capped at
    a tenth of the steps. Returns what a result file keeps about the run."""
    from textdiffusion.config import DataConfig, TrainConfig
    from textdiffusion.training import train as run_training

    data_dir = Path(data_dir)
    config = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        warmup_steps=min(warmup_steps, steps // 10),
        eval_every=0,
        save_every=steps,
        log_every=max(1, min(100, steps // 10)),
        device=str(device),
        **train,
    )
    start = time.perf_counter()
    result = run_training(
        DataConfig(
            data=(str(data_dir / "train.txt"),),
            valid=(str(data_dir / "valid.txt"),),
            tokenizer="char",
            seq_len=seq_len,
        ),
        config,
        out=out,
        model=model,
        resume=(out / "checkpoints").is_dir(),  # a rerun continues an interrupted model
        progress=progress,  # a bar on a terminal, a log line every 30 s elsewhere
    )
    return {
        "parameters": result.parameters,
        "steps": result.step,
        "planned_steps": steps,
        "tokens": result.step * batch_size * seq_len,
        "train_seconds": time.perf_counter() - start,
        "train_tokens_per_s": result.tokens_per_second,
        "final_train_loss": result.loss,
        "valid_bits_per_char": result.valid_bits_per_char,
        "path": str(out),
    }


@dataclasses.dataclass
class CharModelArgs(BenchArgs):
    """The options of a benchmark that trains character models on tinyshakespeare for the same number of tokens and
    scores them on its valid.txt (bench/likelihood.py, bench/block_diffusion.py)."""

    data_dir: str = str(DEFAULT_DATA)
    """Folder with train.txt and valid.txt."""
    tokens: int = 20_000_000
    """Training tokens per model (steps = tokens / (batch_size * seq_len))."""
    seq_len: int = 256
    """Context of the models (training windows and evaluation windows)."""
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 200
    """Linear warm-up (capped at a tenth of the steps)."""
    dropout: float = 0.0
    ema_decay: float = 0.999
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Training precision (auto: bf16 autocast on CUDA). Evaluation is always float32."""
    compile: bool = False
    """torch.compile the networks (faster steps on CUDA, ~30 s of compilation per model)."""
    eval_samples: int = 16
    """Monte Carlo samples per window of the diffusion bounds."""
    eval_windows: int | None = None
    """Score only the first N windows of valid.txt (default: all of it)."""
    eval_batch_size: int = 64
    seed: int = 0

    @property
    def planned_steps(self) -> int:
        return max(1, self.tokens // (self.batch_size * self.seq_len))

    def train(self, model, *, out: Path, objective: str, device, **train: Any) -> dict:
        """`train_char_model` with these options (`train`: steps, max_minutes, progress, ...)."""
        return train_char_model(
            self.data_dir,
            out=out,
            model=model,
            steps=train.pop("steps", None) or self.planned_steps,
            batch_size=self.batch_size,
            seq_len=self.seq_len,
            device=device,
            warmup_steps=self.warmup_steps,
            lr=self.lr,
            ema_decay=self.ema_decay,
            seed=self.seed,
            precision=self.precision,
            compile=self.compile,
            objective=objective,
            **train,
        )

    def score(self, path: str | Path, *, device, sampler_steps: tuple[int, ...] = ()) -> dict:
        """Bits per character of valid.txt in float32: the continuous-time ELBO bound (diffusion, with its Monte
        Carlo error) or the exact NLL (AR); with `sampler_steps`, also the bound of the T-step sampler for each T."""
        from textdiffusion.checkpoint import load_pretrained
        from textdiffusion.evaluation import evaluate_text

        pretrained = load_pretrained(path, device=device)
        text = (Path(self.data_dir) / "valid.txt").read_text()
        common = dict(
            samples=self.eval_samples,
            batch_size=self.eval_batch_size,
            seed=self.seed,
            max_windows=self.eval_windows,
        )
        start = time.perf_counter()
        scored = evaluate_text(pretrained, text, **common).to_dict()
        del scored[
            "steps"
        ]  # None, the continuous-time bound; a record's "steps" are its training steps
        if sampler_steps:
            scored["bits_per_char_at_steps"] = {
                str(steps): {"bits_per_char": r.bits_per_char, "stderr": r.stderr_bits_per_char}
                for steps in sampler_steps
                for r in [evaluate_text(pretrained, text, steps=steps, **common)]
            }
        return {**scored, "eval_seconds": time.perf_counter() - start}
