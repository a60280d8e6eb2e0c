"""Block diffusion (BD3-LM, Arriola et al. 2025): likelihood against the AR baseline at equal training tokens, and
sampling speed against AR with a KV cache.

Likelihood: an AR model, block diffusion models (default block sizes 4 and 16) and the full masked diffusion model
(MDLM: one block of the whole context) get the same backbone, character tokenizer, batch, learning-rate schedule and
number of training tokens, all trained by the project's trainer (`train --block-size B`). Each is scored on
tinyshakespeare's valid.txt in bits per character: the AR NLL exactly, the diffusion models by their ELBO (for a block
model the sum over blocks of each block's masked-diffusion ELBO given the clean blocks before it,
`evaluation.elbo.block_diffusion_nll`, with its Monte Carlo standard error). ratio = bound / AR.

Speed: tokens/s of `sample_block` (steps per block = block size, and a quarter of it) against
`sample_autoregressive` with its KV cache, at batch 1 and 16, for block sizes 1, 4 and 16, on networks of the
trained models' shape (untrained weights: the cost of a sample does not depend on them, and the block sampler's
network calls depend only on its reveal draws), plus the block sampler without its KV cache for reference.

    python bench/block_diffusion.py --quick          # CPU, about 5 minutes at 1 thread
    python bench/block_diffusion.py --device cuda    # the GPU recipe (scripts/gpu_block_diffusion.sh)

Writes bench/results/block-diffusion-{cpu,cuda}[-quick].json and a Markdown table beside it (.md); models go to
OUT/NAME and a rerun reuses those that finished with the same plan.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Literal

import torch

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
# ../shared beside the checkout (or beside the folder of worktrees)
DEFAULT_DATA = next(
    (
        folder / "shared" / "data" / "tinyshakespeare"
        for folder in (REPO_DIR.parent, REPO_DIR.parent.parent)
        if (folder / "shared" / "data" / "tinyshakespeare").is_dir()
    ),
    REPO_DIR.parent / "shared" / "data" / "tinyshakespeare",
)


@dataclasses.dataclass
class BlockDiffusionArgs:
    quick: bool = False
    """CPU-sized run (the QUICK defaults below; flags given with --quick still override them)."""
    device: str = "auto"
    """cpu, cuda or auto."""
    threads: int | None = None
    """CPU threads (default: all cores, at most 16)."""
    data_dir: str = str(DEFAULT_DATA)
    """Folder with train.txt and valid.txt."""
    n_layers: int = 6
    n_heads: int = 6
    dim: int = 384
    seq_len: int = 256
    """Context of every model (training windows, evaluation windows, the speed runs' length)."""
    block_sizes: tuple[int, ...] = (4, 16)
    """Block sizes of the block diffusion models trained (besides AR and full MDLM)."""
    tokens: int = 20_000_000
    """Training tokens per model."""
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 200
    dropout: float = 0.0
    ema_decay: float = 0.999
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    compile: bool = False
    eval_samples: int = 16
    """Monte Carlo samples per window of the diffusion bounds."""
    eval_windows: int | None = None
    """Score only the first N windows of valid.txt (default: all)."""
    eval_batch_size: int = 64
    speed_block_sizes: tuple[int, ...] = (1, 4, 16)
    speed_batches: tuple[int, ...] = (1, 16)
    speed_repeats: int = 3
    skip_likelihood: bool = False
    skip_speed: bool = False
    out: str = str(BENCH_DIR / "runs" / "block-diffusion")
    """Folder of the trained models."""
    json: str | None = None
    """Result file (default: bench/results/block-diffusion-{cpu,cuda}[-quick].json; the table goes beside it)."""
    seed: int = 0


QUICK = dict(
    quick=True,
    threads=1,
    n_layers=2,
    n_heads=2,
    dim=64,
    seq_len=128,
    tokens=500_000,
    batch_size=32,
    lr=2e-3,
    warmup_steps=20,
    ema_decay=0.0,
    eval_samples=8,
    eval_windows=48,
    speed_repeats=5,
    out=str(BENCH_DIR / "runs" / "block-diffusion-quick"),
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def write_json(path: Path, data: dict) -> None:
    """Atomically (a temporary file, then a rename): a killed run leaves the last complete file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def machine(device: torch.device) -> dict:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=REPO_DIR, capture_output=True, text=True)
            return out.stdout.strip() if out.returncode == 0 else None
        except OSError:
            return None

    commit = git("rev-parse", "--short", "HEAD")
    if commit and git("status", "--porcelain", "--", "textdiffusion", "bench"):
        commit += "+changes"
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": str(device),
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "git_commit": commit,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# -- likelihood ---------------------------------------------------------------------------------------------------
def plan(args: BlockDiffusionArgs) -> list[tuple[str, str, int]]:
    """(name, objective, block size) of each model; block size 0 is full MDLM."""
    models = [("ar", "ar", 0)]
    models += [(f"block-{b}", "diffusion", b) for b in args.block_sizes]
    return models + [("mdlm", "diffusion", 0)]


def train_model(
    args: BlockDiffusionArgs, name: str, objective: str, block_size: int, device
) -> dict:
    """Train one model with the project's trainer; what the JSON keeps about the run."""
    from textdiffusion.config import DataConfig, ModelConfig, TrainConfig
    from textdiffusion.training import train

    data_dir, out = Path(args.data_dir), Path(args.out) / name
    steps = max(1, args.tokens // (args.batch_size * args.seq_len))
    start = time.perf_counter()
    result = train(
        DataConfig(
            data=(str(data_dir / "train.txt"),),
            valid=(str(data_dir / "valid.txt"),),
            tokenizer="char",
            seq_len=args.seq_len,
        ),
        TrainConfig(
            steps=steps,
            batch_size=args.batch_size,
            lr=args.lr,
            warmup_steps=min(args.warmup_steps, steps // 10),
            ema_decay=args.ema_decay,
            eval_every=0,
            eval_batches=1,
            save_every=steps,
            log_every=max(1, min(100, steps // 10)),
            seed=args.seed,
            device=str(device),
            precision=args.precision,
            compile=args.compile,
            objective=objective,
        ),
        out=out,
        model=ModelConfig(
            n_layers=args.n_layers,
            n_heads=args.n_heads,
            dim=args.dim,
            max_len=args.seq_len,
            dropout=args.dropout,
            block_size=block_size,
        ),
        resume=(out / "checkpoints").is_dir(),
        progress=False,
    )
    return {
        "name": name,
        "objective": objective,
        "block_size": (block_size or args.seq_len) if objective == "diffusion" else None,
        "parameters": result.parameters,
        "train_steps": result.step,
        "planned_steps": steps,
        "tokens": result.step * args.batch_size * args.seq_len,
        "train_seconds": time.perf_counter() - start,
        "train_tokens_per_s": result.tokens_per_second,
        "final_train_loss": result.loss,
        "path": str(out),
    }


def evaluate_model(args: BlockDiffusionArgs, record: dict, device) -> dict:
    """Bits per character of valid.txt: exact for AR; for the diffusion models the continuous-time bound and the
    bounds of their sampler at as many steps per block as tokens per block and at a quarter of that (the two
    settings of the speed table: how much likelihood the faster one gives up)."""
    from textdiffusion.checkpoint import load_pretrained
    from textdiffusion.evaluation import evaluate_text

    pretrained = load_pretrained(record["path"], device=device)
    text = (Path(args.data_dir) / "valid.txt").read_text()
    common = dict(
        samples=args.eval_samples,
        batch_size=args.eval_batch_size,
        seed=args.seed,
        max_windows=args.eval_windows,
    )
    start = time.perf_counter()
    scored = evaluate_text(pretrained, text, **common).to_dict()
    del scored["steps"]  # the continuous-time bound (None); "train_steps" counts the training steps
    if record["objective"] == "diffusion":
        block = record["block_size"]
        bounds = {
            steps: evaluate_text(pretrained, text, steps=steps, **common)
            for steps in sorted({block, max(1, block // 4)})
        }
        scored["bits_per_char_at_steps"] = {
            str(steps): {"bits_per_char": r.bits_per_char, "stderr": r.stderr_bits_per_char}
            for steps, r in bounds.items()
        }
    return {**scored, "eval_seconds": time.perf_counter() - start}


SAME = ("n_layers", "n_heads", "dim", "seq_len", "batch_size", "lr", "tokens", "seed", "data_dir")
"""Arguments a reused model must have been trained with."""
TRAIN_FIELDS = (
    "name", "objective", "block_size", "parameters", "train_steps", "planned_steps", "tokens",
    "train_seconds", "train_tokens_per_s", "final_train_loss", "path",
)  # fmt: skip


def likelihood_rows(data: dict) -> list[dict]:
    models = [m for m in data.get("models", []) if "bits_per_char" in m]
    ar = next((m for m in models if m["objective"] == "ar"), None)
    rows = []
    for m in models:
        row = {
            k: m.get(k)
            for k in ("name", "block_size", "parameters", "tokens", "train_tokens_per_s")
        }
        row.update(bpc=m["bits_per_char"], stderr=m["stderr_bits_per_char"], exact=m["exact"])
        at_steps = m.get("bits_per_char_at_steps") or {}
        if at_steps:  # steps = block size, and a quarter of it
            counts = sorted(at_steps, key=int)
            full, quarter = at_steps[counts[-1]], at_steps[counts[0]]
            row["bpc_full_steps"] = f"{full['bits_per_char']:.4f} ± {full['stderr']:.4f}"
            if len(counts) > 1:
                row["bpc_quarter_steps"] = (
                    f"{quarter['bits_per_char']:.4f} ± {quarter['stderr']:.4f}"
                )
        if ar is not None:
            row["ratio"] = m["bits_per_char"] / ar["bits_per_char"]
            row["same_tokens"] = m["tokens"] == ar["tokens"]
        rows.append(row)
    return rows


# -- speed --------------------------------------------------------------------------------------------------------
def time_median(fn, *, device, repeats: int) -> tuple[float, object]:
    result = fn()  # warm-up
    times = []
    for _ in range(max(1, repeats)):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


class Counter(torch.nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.model, self.config, self.calls = model, model.config, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.model(*args, **kwargs)


def speed_cases(args: BlockDiffusionArgs, device) -> list[dict]:
    from textdiffusion.config import ModelConfig
    from textdiffusion.networks import DiffusionTransformer
    from textdiffusion.processes import MaskedProcess, build_schedule
    from textdiffusion.samplers import sample_block
    from textdiffusion.samplers.autoregressive import sample_autoregressive

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    vocab, bos_id, mask_id = 326, 0, 1  # the character vocabulary of tinyshakespeare
    process = MaskedProcess(build_schedule("loglinear"), mask_id=mask_id)
    length = args.seq_len

    def network(**changes):
        torch.manual_seed(args.seed)
        config = ModelConfig(
            vocab_size=vocab,
            n_layers=args.n_layers,
            n_heads=args.n_heads,
            dim=args.dim,
            max_len=length,
            **changes,
        )
        return DiffusionTransformer(config).to(device=device, dtype=dtype).eval()

    ar = network(causal=True)
    blocks = {b: Counter(network(block_size=b)) for b in args.speed_block_sizes}
    generator = torch.Generator(device=device)
    calls = [0]

    def decode(model, tokens, positions, cache):
        calls[0] += 1
        return model(tokens, None, cache=cache, positions=positions)[:, -1]

    def run_ar(batch: int):
        generator.manual_seed(args.seed)
        calls[0] = 0
        return sample_autoregressive(
            ar, (batch, length), bos_id=bos_id, generator=generator, step_fn=decode
        )

    def run_block(model: Counter, batch: int, steps: int, use_cache: bool):
        generator.manual_seed(args.seed)
        model.calls = 0
        return sample_block(
            model, process, (batch, length), steps, generator=generator, use_cache=use_cache
        )

    cases = [
        (b, steps, True)
        for b in args.speed_block_sizes
        for steps in sorted({b, max(1, b // 4)})[::-1]
    ]
    largest = max(args.speed_block_sizes)
    cases.append((largest, largest, False))  # the reference without the KV cache
    records = []
    for batch in args.speed_batches:
        seconds, _ = time_median(partial(run_ar, batch), device=device, repeats=args.speed_repeats)
        base = batch * length / seconds
        records.append(
            dict(sampler="ar (KV cache)", batch=batch, length=length, seconds=seconds,
                 tokens_per_s=base, calls=calls[0], vs_ar=1.0)
        )  # fmt: skip
        log(f"batch {batch}: AR {base:,.0f} tokens/s ({calls[0]} calls)")
        for b, steps, use_cache in cases:
            model = blocks[b]
            seconds, ids = time_median(
                partial(run_block, model, batch, steps, use_cache),
                device=device,
                repeats=args.speed_repeats,
            )
            if bool((ids == mask_id).any()):
                raise RuntimeError("the block sampler left masked tokens")
            rate = batch * length / seconds
            name = f"block {b}, {steps} steps/block" + ("" if use_cache else ", no KV cache")
            records.append(
                dict(sampler=name, block_size=b, steps_per_block=steps, kv_cache=use_cache,
                     batch=batch, length=length, seconds=seconds, tokens_per_s=rate,
                     calls=model.calls, vs_ar=rate / base)
            )  # fmt: skip
            log(
                f"batch {batch}: {name}: {rate:,.0f} tokens/s ({model.calls} calls), {rate / base:.2f}x AR"
            )
    return records


# -- report -------------------------------------------------------------------------------------------------------
def fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return format(value, spec) if spec else str(value)


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |"]
    lines.append("|" + "|".join("---:" if s else "---" for _, _, s in columns) + "|")
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(k), s) for k, _, s in columns) + " |")
    return "\n".join(lines)


def render(data: dict) -> str:
    a, info = data["args"], data["machine"]
    parts = ["# Block diffusion (BD3-LM)\n"]
    rows = likelihood_rows(data)
    if rows:
        parts.append(
            f"Bits per character on tinyshakespeare valid.txt ({fmt(a['eval_windows'], '') if a['eval_windows'] else 'all'}"
            f" windows of {a['seq_len']} tokens), models of {a['n_layers']} layers x {a['dim']} trained on the same "
            f"tokens (batch {a['batch_size']}, lr {a['lr']}). Diffusion rows are ELBO bounds "
            f"({a['eval_samples']} count-stratified samples per window and block); AR is exact. "
            "ratio = bpc / AR bpc. The last two columns bound the block sampler's own likelihood with B "
            "(block size) and B/4 ancestral steps per block (`eval --steps`): the two settings timed below.\n"
        )
        parts.append(
            table(
                rows,
                [
                    ("name", "model", ""),
                    ("block_size", "block", "d"),
                    ("parameters", "parameters", ",d"),
                    ("tokens", "train tokens", ",d"),
                    ("train_tokens_per_s", "train tok/s", ",.0f"),
                    ("bpc", "bits/char", ".4f"),
                    ("stderr", "± (MC)", ".4f"),
                    ("ratio", "ratio to AR", ".3f"),
                    ("bpc_full_steps", "bound, B steps/block", ""),
                    ("bpc_quarter_steps", "bound, B/4 steps/block", ""),
                ],
            )
        )
        if any(r.get("same_tokens") is False for r in rows):
            parts.append("\n**Some models saw a different number of tokens than AR.**")
    speed = data.get("speed", [])
    if speed:
        parts.append(
            f"\nSampling {speed[0]['length']} tokens (the whole context) per text; tokens/s = batch x length / "
            "seconds (median of repeats); vs AR = against AR with its KV cache at the same batch.\n"
        )
        parts.append(
            table(
                speed,
                [
                    ("batch", "batch", "d"),
                    ("sampler", "sampler", ""),
                    ("calls", "network calls", ",d"),
                    ("seconds", "seconds", ".3f"),
                    ("tokens_per_s", "tokens/s", ",.0f"),
                    ("vs_ar", "vs AR", ".2f"),
                ],
            )
        )
    failed = [m for m in data.get("models", []) if "error" in m]
    if failed:
        parts.append("\nFailed: " + "; ".join(f"{m['name']}: {m['error'][:200]}" for m in failed))
    where = (
        info.get("gpu")
        or f"{info['cpu']} ({info['torch_threads']} threads of {info['cpu_cores']} cores)"
    )
    parts.append(
        f"\nMachine: {where}, torch {info['torch']}, {info['date']}; git {info.get('git_commit')}.  \n"
        f"Command: `python bench/{data['command']}`"
        + (
            ""
            if data.get("complete")
            else "  \n**Partial results: the run stopped before the end.**"
        )
    )
    return "\n".join(parts) + "\n"


def parse(argv: list[str] | None = None) -> BlockDiffusionArgs:
    import tyro

    argv = sys.argv[1:] if argv is None else argv
    default = BlockDiffusionArgs(**QUICK) if "--quick" in argv else None
    return tyro.cli(BlockDiffusionArgs, args=argv, default=default)


def main(args: BlockDiffusionArgs | None = None) -> dict:
    args = args or parse()
    logging.basicConfig(level=logging.WARNING)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    torch.set_num_threads(args.threads or min(16, os.cpu_count() or 1))
    if device.type == "cuda":  # likelihoods in full float32 matmuls
        torch.backends.cuda.matmul.allow_tf32 = False
    path = Path(args.json) if args.json else (
        RESULTS_DIR / f"block-diffusion-{device.type}{'-quick' if args.quick else ''}.json"
    )  # fmt: skip
    previous = json.loads(path.read_text()) if path.is_file() else {}
    data = {
        "benchmark": "block-diffusion",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "args": dataclasses.asdict(args),
        "machine": machine(device),
        "complete": False,
        "models": [],
        "speed": [],
    }
    steps = max(1, args.tokens // (args.batch_size * args.seq_len))

    def save() -> None:
        write_json(path, data)
        path.with_suffix(".md").write_text(render(data))

    save()
    if not args.skip_likelihood:
        for name, objective, block_size in plan(args):
            same = {k: previous.get("args", {}).get(k) for k in SAME} == {
                k: getattr(args, k) for k in SAME
            }
            done = next(
                (
                    m
                    for m in previous.get("models", [])
                    if same
                    and m.get("name") == name
                    and m.get("planned_steps") == m.get("train_steps") == steps
                    and (Path(m.get("path", "")) / "model.safetensors").is_file()
                ),
                None,
            )
            try:
                if done is not None:
                    log(f"{name}: trained in an earlier run, reused")
                    record = {k: done[k] for k in TRAIN_FIELDS if k in done}
                else:
                    log(
                        f"{name}: training {steps} steps of {args.batch_size} x {args.seq_len} tokens"
                    )
                    record = train_model(args, name, objective, block_size, device)
                record.update(evaluate_model(args, record, device))
                log(
                    f"{name}: {record['bits_per_char']:.4f} bits/char"
                    + ("" if record["exact"] else f" ± {record['stderr_bits_per_char']:.4f}")
                    + f" (trained in {record['train_seconds']:.0f} s)"
                )
            except Exception as exc:  # keep the other models
                record = {"name": name, "error": f"{type(exc).__name__}: {exc}"[:2000]}
                log(f"{name}: FAILED {record['error'][:300]}")
            data["models"].append(record)
            save()
        for row in likelihood_rows(data):
            log(
                f"{row['name']}: {row['bpc']:.4f} bits/char, ratio to AR {row.get('ratio', float('nan')):.3f}"
            )
    if not args.skip_speed:
        data["speed"] = speed_cases(args, device)
    data["complete"] = True
    save()
    log(f"wrote {path} and {path.with_suffix('.md')}")
    return data


if __name__ == "__main__":
    main()
