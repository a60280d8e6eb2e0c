"""What the benchmarks share: devices and precision, timing (medians of synchronised repeats), a description of the
machine, model sizes, incremental JSON results and the tables between markers in bench/README.md.

Timings are compared as ratios within one run on one machine; a number alone says little across machines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
README = BENCH_DIR / "README.md"
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_DATA = REPO_DIR.parent / "shared" / "data" / "tinyshakespeare"
CHAR_VOCAB = 326
"""Vocabulary of the character tokenizer of tinyshakespeare: 5 special tokens, 256 byte tokens, 65 characters."""

# Model sizes by name: the presets of textdiffusion.config plus two in between (max_len is set per benchmark).
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(n_layers=2, n_heads=2, dim=64),  # ~0.1M parameters
    "mini": dict(n_layers=4, n_heads=4, dim=256),  # ~3M
    "small": dict(n_layers=6, n_heads=6, dim=384),  # ~10M, the shipped character models
    "medium": dict(n_layers=8, n_heads=8, dim=512),  # ~25M, the default judge
    "base": dict(n_layers=12, n_heads=12, dim=768),  # ~85M, GPT-2 small's shape
    "base-h128": dict(
        n_layers=12, n_heads=6, dim=768
    ),  # the same in heads of 128: 1.04x faster on an H200
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


# -- devices, precision, timing ---------------------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            f"--device {name}: CUDA is not available on this machine (use --device cpu)"
        )
    return device


def setup_torch(device: torch.device, *, threads: int | None = None, tf32: bool = True) -> None:
    """CPU threads (default: all cores, at most 16); on CUDA, TF32 for the float32 matmuls unless `tf32` is False
    (likelihoods are evaluated in full float32)."""
    if threads is None:
        threads = min(16, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


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


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class CallCounter(torch.nn.Module):
    """Counts network calls; with CUDA graphs it also marks each call as a new step (the previous outputs are
    consumed before the next call, so the graph may overwrite them)."""

    def __init__(self, model: torch.nn.Module, *, config, cudagraphs: bool = False) -> None:
        super().__init__()
        self.model, self.config, self.cudagraphs, self.calls = model, config, cudagraphs, 0

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


# -- the machine --------------------------------------------------------------------------------------------------
def record_matmul_rate(device: torch.device, results) -> float | None:
    """The card's measured bf16 matmul rate (FLOP/s), the denominator of MFU, kept in the results and logged; None off
    CUDA (a CPU's matmul rate depends too much on shape and threads)."""
    if device.type != "cuda":
        return None
    peak = matmul_rate(device, torch.bfloat16)
    results.set("matmul_flops_per_s", {"dtype": "bfloat16", "value": peak})
    log(f"measured bf16 matmul rate: {peak / 1e12:.1f} TFLOP/s")
    return peak


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO_DIR, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _git_commit() -> str | None:
    """The commit, with "+changes" when the package or the benchmarks differ from it."""
    commit = _git("rev-parse", "--short", "HEAD")
    if commit and _git("status", "--porcelain", "--", "textdiffusion", "bench"):
        commit += "+changes"
    return commit


def machine_info(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": str(device),
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "git_commit": _git_commit(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            gpu_capability=f"{props.major}.{props.minor}",
            cuda=torch.version.cuda,
        )
    return info


def describe(info: dict[str, Any]) -> str:
    """One line naming the machine."""
    where = (
        info.get("gpu")
        or f"{info['cpu']} ({info['torch_threads']} threads of {info['cpu_cores']} cores)"
    )
    return f"{where}, torch {info['torch']}, {info['date']}"


# -- results ------------------------------------------------------------------------------------------------------
def block_name(prefix: str, data: dict[str, Any], suffix: str = "") -> str:
    """The README block of a results file: PREFIX-DEVICE[-quick]SUFFIX."""
    device = "cuda" if data["machine"]["device"].startswith("cuda") else "cpu"
    return f"{prefix}-{device}{'-quick' if data['args'].get('quick') else ''}{suffix}"


def log(message: str) -> None:
    """Progress on stderr, flushed at once (runs are often read from a log while they go)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write atomically (a temporary file, then a rename), so a killed run leaves the last complete file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, (Path, torch.device, torch.dtype)):
        return str(value)
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


class Results:
    """A result file written after every record, so that partial results survive a timeout."""

    def __init__(
        self, path: str | os.PathLike, *, benchmark: str, args: Any, device: torch.device
    ) -> None:
        self.path = Path(path)
        self.data: dict[str, Any] = {
            "benchmark": benchmark,
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "args": dataclasses.asdict(args) if dataclasses.is_dataclass(args) else args,
            "machine": machine_info(device),
            "complete": False,
        }
        self.save()

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def add(self, section: str, record: dict[str, Any]) -> None:
        """Append `record` to the list `section` and save."""
        self.data.setdefault(section, []).append(record)
        self.save()

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    def save(self) -> None:
        write_json(self.path, self.data)

    def finish(self) -> None:
        self.data["complete"] = True
        self.save()


def run_case(
    results: Results, section: str, name: str, fn: Callable[[], dict[str, Any]], **fields
) -> dict:
    """Run one benchmark case; an exception is recorded with the case (and logged), and the run goes on."""
    start = time.perf_counter()
    try:
        record = {"case": name, **fields, **fn()}
    except Exception as exc:
        # one failing case (out of memory, a compile error) must not lose the others
        record = {"case": name, **fields, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        log(f"{name}: FAILED {record['error'][:300]}")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    record["case_seconds"] = time.perf_counter() - start
    results.add(section, record)
    return record


# -- README tables ------------------------------------------------------------------------------------------------
def fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return "–"
    if spec and isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return format(value, spec)
        except ValueError:  # e.g. ",d" given a float
            return format(value, ",.0f" if spec.endswith("d") else ".3g")
    return str(value)


def markdown_table(rows: Iterable[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """A Markdown table; `columns` are (key, header, format spec)."""
    lines = ["| " + " | ".join(header for _, header, _ in columns) + " |"]
    lines.append("|" + "|".join("---:" if spec else "---" for _, _, spec in columns) + "|")
    for row in rows:
        lines.append(
            "| " + " | ".join(fmt(row.get(key), spec or "") for key, _, spec in columns) + " |"
        )
    return "\n".join(lines)


def markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def update_readme(name: str, body: str, *, title: str | None = None, path: Path = README) -> None:
    """Replace the text between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->` in bench/README.md.

    Everything outside the markers (other sections, other people's text) is left as it is. Missing markers are
    appended at the end, under `## title` when given.
    """
    start, end = markers(name)
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text and text.index(start) < text.index(end):
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        heading = f"\n## {title}\n\n" if title else "\n"
        text = text.rstrip("\n") + "\n" + heading + block + "\n"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def provenance(data: dict[str, Any]) -> str:
    """The lines under a README table: machine, command, date, completeness."""
    info = data["machine"]
    lines = [
        f"Machine: {describe(info)}; git {info.get('git_commit') or 'uncommitted'}.",
        f"Command: `python bench/{data['command']}`",
    ]
    if not data.get("complete"):
        lines.append("**Partial results: the run stopped before the end.**")
    return "  \n".join(lines)


@dataclasses.dataclass
class BenchArgs:
    """The options every benchmark script shares; each script adds its own."""

    device: str = "auto"
    """cpu, cuda or auto."""
    quick: bool = False
    """CPU-sized run: the script's QUICK defaults (flags given with --quick still override them)."""
    threads: int | None = None
    """CPU threads (default: all cores, at most 16)."""
    json: str | None = None
    """Result file (default: bench/results/BENCHMARK-{cpu,cuda}[-quick].json)."""
    readme: bool = True
    """Write the tables into bench/README.md."""
    render: str | None = None
    """Only rewrite the README tables from this result file, then stop."""


def parse_args(cls, quick: dict, argv: list[str] | None = None):
    """The script's arguments from the command line; with --quick the CPU-sized defaults in `quick` apply first."""
    import sys

    import tyro

    from textdiffusion.cli.common import join_help_lines

    join_help_lines()
    argv = sys.argv[1:] if argv is None else argv
    return tyro.cli(cls, args=argv, default=cls(**quick) if "--quick" in argv else None)
