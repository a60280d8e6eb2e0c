"""Sample quality against sampling cost: generative perplexity under a larger AR judge, and diversity.

For every diffusion sampler (ancestral, cached, confidence) at 8, 16, 32, 64, 128, 256 steps and at the sequence
length L, N samples of L tokens are generated (timed, device synchronised), decoded to text, re-encoded with the
judge's tokenizer and scored by a separate, larger autoregressive "judge" model trained on the same corpus:
generative perplexity = exp(judge NLL per judge token). Low perplexity alone can be degenerate (repeated words), so
every row also has diversity figures over whitespace-separated words: the mean unigram entropy of a sample (bits) and
distinct-n (distinct n-grams / all n-grams, over all samples). The AR baseline's own samples (KV cache) and real text
from valid.txt (the reference a sampler should approach) are scored the same way.

Writes its result file after every setting, and a PNG of perplexity and entropy against wall time.

    python -m bench.quality --quick --diffusion DIR --ar DIR --train-judge --threads 1
    python -m bench.quality --device cuda --diffusion D --ar A --judge J --n-samples 64
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch

from bench.common import (
    DEFAULT_DATA,
    CallCounter,
    inference_dtype,
    model_config,
    synchronize,
    train_char_model,
)
from bench.harness import (
    BENCH_DIR,
    BenchArgs,
    Benchmark,
    Results,
    log,
    markdown_table,
    ok,
    parse_args,
    run,
)


@dataclasses.dataclass
class QualityArgs(BenchArgs):
    quick: bool = False
    """CPU-sized run: 8 samples, steps 8..64 and L, a mini judge trained on 100k tokens."""
    diffusion: str | None = None
    """The diffusion model (folder or shipped name)."""
    ar: str | None = None
    """The AR baseline (folder), trained like the diffusion model (bench/likelihood.py trains both)."""
    judge: str | None = None
    """The judge, an AR model larger than both (folder); or --train-judge."""
    train_judge: bool = False
    """Train the judge on --data-dir/train.txt into OUT/judge (reused when finished)."""
    judge_size: str = "medium"
    judge_tokens: int = 30_000_000
    judge_seq_len: int = 256
    judge_batch_size: int = 64
    data_dir: str = str(DEFAULT_DATA)
    samplers: tuple[str, ...] = ("ancestral", "cached", "confidence")
    steps: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
    """Diffusion steps; the sequence length is added."""
    n_samples: int = 64
    batch_size: int = 64
    """Samples generated at once (the wall time covers all n samples)."""
    length: int | None = None
    """Tokens per sample (default: the diffusion model's context)."""
    temperature: float = 1.0
    dtype: Literal["auto", "fp32", "bf16"] = "auto"
    """Generation weights: auto is bf16 on CUDA, fp32 on the CPU (the judge always scores in float32)."""
    max_minutes: float | None = None
    """Wall-clock budget: no new setting starts after it (the judge's training may use half of it)."""
    out: str = str(BENCH_DIR / "runs" / "quality")
    png: str | None = None
    """Plot (default: bench/results/quality-{cpu,cuda}[-quick].png)."""
    seed: int = 0


QUICK = dict(
    quick=True,
    steps=(8, 16, 32, 64),
    n_samples=8,
    batch_size=8,
    judge_size="mini",
    judge_tokens=100_000,
    judge_seq_len=128,
    judge_batch_size=16,
    out=str(BENCH_DIR / "runs" / "quality-quick"),
)


def parse(argv: list[str] | None = None) -> QualityArgs:
    return parse_args(QualityArgs, QUICK, argv)


# -- diversity ----------------------------------------------------------------------------------------------------
def ngrams(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams of whitespace-separated words, pooled over `texts` (Li et al. 2016)."""
    grams = [g for text in texts for g in ngrams(text.split(), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def unigram_entropy(units: Sequence[str]) -> float:
    """Entropy (bits) of the empirical distribution of `units`."""
    counts = collections.Counter(units)
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0


def sample_entropy(texts: Sequence[str]) -> float:
    """Mean over samples of the unigram entropy (bits) of each sample's words."""
    return sum(unigram_entropy(text.split()) for text in texts) / len(texts) if texts else 0.0


def diversity(texts: Sequence[str]) -> dict[str, float]:
    return {
        "entropy": sample_entropy(texts),
        "char_entropy": sum(unigram_entropy(list(t)) for t in texts) / len(texts) if texts else 0.0,
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "distinct_3": distinct_n(texts, 3),
    }


# -- the judge ----------------------------------------------------------------------------------------------------
@torch.no_grad()
def judge_score(judge, texts: Sequence[str]) -> dict[str, float]:
    """Generative perplexity of `texts` under the judge (a `Pretrained` AR model), each text one sequence."""
    from textdiffusion.evaluation.elbo import LN2, autoregressive_nll

    tokenizer, model = judge.tokenizer, judge.model
    encoded = [tokenizer.encode(text)[: model.config.max_len] for text in texts]
    encoded = [ids for ids in encoded if ids]
    if not encoded:
        return {
            "gen_ppl": float("nan"),
            "judge_bits_per_char": float("nan"),
            "empty_samples": len(texts),
        }
    width = max(len(ids) for ids in encoded)
    x0 = torch.full((len(encoded), width), tokenizer.pad_id, dtype=torch.long)
    valid = torch.zeros(len(encoded), width, dtype=torch.bool)
    for i, ids in enumerate(encoded):
        x0[i, : len(ids)] = torch.tensor(ids)
        valid[i, : len(ids)] = True
    nll = float(autoregressive_nll(model, x0, valid, bos_id=tokenizer.bos_id).sum())
    n_tokens = int(valid.sum())
    n_chars = sum(len(tokenizer.decode(ids)) for ids in encoded)
    return {
        "gen_ppl": math.exp(nll / n_tokens),
        "judge_bits_per_char": nll / max(1, n_chars) / LN2,
        "judge_tokens": n_tokens,
        "empty_samples": len(texts) - len(encoded),
    }


def train_judge(args: QualityArgs, *, device: torch.device, max_minutes: float | None) -> Path:
    out = Path(args.out) / "judge"
    steps = max(1, args.judge_tokens // (args.judge_batch_size * args.judge_seq_len))
    marker = out / "bench-finished.json"
    if marker.is_file() and json.loads(marker.read_text()).get("planned_steps") == steps:
        log(f"judge: reusing {out}")
        return out
    log(f"judge: training a {args.judge_size} AR model on {args.judge_tokens:,} tokens")
    record = train_char_model(
        args.data_dir,
        out=out,
        model=model_config(args.judge_size, vocab_size=1, max_len=args.judge_seq_len, dropout=0.1),
        steps=steps,
        batch_size=args.judge_batch_size,
        seq_len=args.judge_seq_len,
        device=device,
        objective="ar",
        max_minutes=max_minutes,
        seed=args.seed + 1,
    )
    log(
        f"judge: {record['parameters']:,} parameters, valid {record['valid_bits_per_char']:.4f} bits/char"
    )
    keep = ("planned_steps", "steps", "valid_bits_per_char")
    marker.write_text(json.dumps({k: record[k] for k in keep}))
    return out


# -- generation ---------------------------------------------------------------------------------------------------
def _timed_batches(
    tokenizer, *, n: int, batch_size: int, seed: int, device, draw
) -> tuple[list[str], float, int]:
    """n samples drawn `batch_size` at a time by `draw(b, generator)` -> ids (b, L); returns (texts, wall seconds
    for all of them, number of batches)."""
    generator = torch.Generator(device=device).manual_seed(seed)
    batches = []
    synchronize(device)
    start = time.perf_counter()
    for first in range(0, n, batch_size):
        batches.append(draw(min(batch_size, n - first), generator))
    synchronize(device)
    seconds = time.perf_counter() - start
    texts = [tokenizer.decode(row.tolist()) for row in torch.cat(batches).cpu()]
    return texts, seconds, len(batches)


def generate_diffusion(
    pretrained,
    model,
    sampler: str,
    steps: int,
    *,
    n: int,
    batch_size: int,
    length: int,
    temperature: float,
    seed: int,
    device,
) -> tuple[list[str], float, int]:
    """n samples; returns (texts, wall seconds for all of them, network calls per batch)."""
    from textdiffusion.samplers import SAMPLERS

    counted = CallCounter(model)
    texts, seconds, n_batches = _timed_batches(
        pretrained.tokenizer,
        n=n,
        batch_size=batch_size,
        seed=seed,
        device=device,
        draw=lambda b, generator: SAMPLERS[sampler](
            counted,
            pretrained.process,
            (b, length),
            steps,
            generator=generator,
            temperature=temperature,
        ),
    )
    return texts, seconds, counted.calls // n_batches


def generate_autoregressive(
    pretrained, *, n: int, batch_size: int, length: int, temperature: float, seed: int, device
) -> tuple[list[str], float, int]:
    from textdiffusion.samplers.autoregressive import sample_autoregressive

    tokenizer = pretrained.tokenizer
    suppress = sorted(tokenizer.special_ids - {tokenizer.eos_id})
    texts, seconds, _ = _timed_batches(
        tokenizer,
        n=n,
        batch_size=batch_size,
        seed=seed,
        device=device,
        draw=lambda b, generator: sample_autoregressive(
            pretrained.model,
            (b, length),
            bos_id=tokenizer.bos_id,
            generator=generator,
            temperature=temperature,
            suppress=suppress,
        ),
    )
    return texts, seconds, length


def reference_texts(args: QualityArgs, tokenizer, *, n: int, length: int) -> list[str]:
    """n windows of `length` tokens from valid.txt, evenly spaced: what real text scores."""
    ids = tokenizer.encode((Path(args.data_dir) / "valid.txt").read_text())
    stride = max(length, (len(ids) - length) // max(1, n))
    return [tokenizer.decode(ids[i : i + length]) for i in range(0, len(ids) - length + 1, stride)][
        :n
    ]


def load(path: str, *, device, dtype):
    from textdiffusion.checkpoint import load_pretrained

    pretrained = load_pretrained(path, device=device)
    pretrained.model.to(dtype)
    return pretrained


def main(args: QualityArgs) -> dict:
    if not args.render:
        if args.diffusion is None:
            raise SystemExit("--diffusion DIR is required (bench/likelihood.py trains one)")
        if args.judge is None and not args.train_judge:
            raise SystemExit("pass --judge DIR or --train-judge")
        logging.basicConfig(level=logging.INFO, format="%(message)s")  # the trainer's progress
    return run(BENCH, args, lambda results, device: measure(args, results, device))


def measure(args: QualityArgs, results: Results, device: torch.device) -> None:
    from textdiffusion.checkpoint import load_pretrained
    from textdiffusion.tasks.pipeline import SuppressTokens

    png = Path(args.png) if args.png else results.path.with_suffix(".png")
    results.set("png", str(png))
    deadline = time.monotonic() + 60 * args.max_minutes if args.max_minutes else None
    judge_path = args.judge
    if judge_path is None:
        budget = args.max_minutes / 2 if args.max_minutes else None
        judge_path = str(train_judge(args, device=device, max_minutes=budget))
    judge = load_pretrained(judge_path, device=device)
    dtype = inference_dtype(device, args.dtype)
    diffusion = load(args.diffusion, device=device, dtype=dtype)
    length = args.length or diffusion.model.config.max_len
    tokenizer = diffusion.tokenizer
    # as the pipelines do: special tokens are never predicted
    denoiser = SuppressTokens(diffusion.model, sorted(tokenizer.special_ids)).to(device)
    results.set(
        "models",
        {
            "diffusion": args.diffusion,
            "ar": args.ar,
            "judge": judge_path,
            "length": length,
            "diffusion_parameters": diffusion.model.num_parameters(),
            "judge_parameters": judge.model.num_parameters(),
            "dtype": str(dtype).replace("torch.", ""),
        },
    )
    log(
        f"diffusion {diffusion.model.num_parameters():,} parameters; judge {judge.model.num_parameters():,}; "
        f"{args.n_samples} samples of {length} tokens"
    )

    def record(
        method: str, steps: int | None, texts, seconds: float | None, calls: int | None
    ) -> None:
        row = {
            "method": method,
            "steps": steps,
            "seconds": seconds,
            "network_calls": calls,
            "n_samples": len(texts),
            **judge_score(judge, texts),
            **diversity(texts),
            "example": texts[0][:200] if texts else "",
        }
        results.add("rows", row)
        log(
            f"{method} steps={steps}: gen ppl {row['gen_ppl']:.3f}, entropy {row['entropy']:.2f} bits, "
            f"distinct-2 {row['distinct_2']:.2f}"
            + (f", {seconds:.2f} s" if seconds is not None else "")
        )

    record(
        "data", None, reference_texts(args, tokenizer, n=args.n_samples, length=length), None, None
    )
    common = dict(
        n=args.n_samples,
        batch_size=args.batch_size,
        length=length,
        temperature=args.temperature,
        seed=args.seed,
        device=device,
    )
    if args.ar:
        try:
            ar = load(args.ar, device=device, dtype=dtype)
            generate_autoregressive(ar, **{**common, "n": 1, "length": 8})  # warm-up
            record("ar", length, *generate_autoregressive(ar, **common))
        except Exception as exc:
            results.add("rows", {"method": "ar", "error": f"{type(exc).__name__}: {exc}"[:2000]})
            log(f"ar: FAILED {exc}")
    steps_list = sorted({*(s for s in args.steps), length})
    for sampler in args.samplers:  # warm-up: first-call allocations are not part of any setting
        generate_diffusion(diffusion, denoiser, sampler, 2, **{**common, "n": 1})
    for steps in steps_list:
        for sampler in args.samplers:
            if deadline is not None and time.monotonic() > deadline:
                log(f"{sampler} steps={steps}: skipped, the --max-minutes budget is spent")
                results.add("rows", {"method": sampler, "steps": steps, "skipped": "time budget"})
                continue
            try:
                texts, seconds, calls = generate_diffusion(
                    diffusion, denoiser, sampler, steps, **common
                )
                record(sampler, steps, texts, seconds, calls)
            except Exception as exc:
                results.add(
                    "rows",
                    {"method": sampler, "steps": steps, "error": f"{type(exc).__name__}: {exc}"},
                )
                log(f"{sampler} steps={steps}: FAILED {exc}")
        plot(results.data, png)
    plot(results.data, png)


# -- plot and table -----------------------------------------------------------------------------------------------
def plot(data: dict, path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in data.get("rows", []) if "gen_ppl" in r]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in (
        (axes[0], "gen_ppl", "generative perplexity (judge)"),
        (axes[1], "entropy", "unigram entropy of a sample (bits)"),
    ):
        for r in rows:
            if r["method"] == "data":
                ax.axhline(r[key], color="gray", linestyle="--", linewidth=1, label="valid.txt")
        for method in dict.fromkeys(r["method"] for r in rows if r["method"] not in ("data", "ar")):
            pts = sorted((r["seconds"], r[key], r["steps"]) for r in rows if r["method"] == method)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
            for x, y, steps in pts:
                ax.annotate(
                    str(steps), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7
                )
        for r in rows:
            if r["method"] == "ar":
                ax.plot(
                    [r["seconds"]],
                    [r[key]],
                    marker="*",
                    markersize=14,
                    color="black",
                    linestyle="none",
                    label="AR (KV cache)",
                )
        ax.set_xscale("log")
        if key == "gen_ppl":
            ax.set_yscale("log")
        log_axes = (ax.xaxis, ax.yaxis) if key == "gen_ppl" else (ax.xaxis,)
        for axis in log_axes:  # labels at 1, 2, 5 x 10^k as plain numbers
            axis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(f"wall time for {data['args']['n_samples']} samples (s)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    info = data["machine"]
    fig.suptitle(
        f"Sample quality vs. wall time ({info.get('gpu') or 'CPU'}; numbers: steps)", fontsize=10
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(data: dict) -> str:
    models = data.get("models", {})
    rows = []
    for r in data.get("rows", []):
        r = dict(r)
        if "error" in r:
            r["method"] = f"{r['method']} (failed: {r['error'][:60]})"
        if "skipped" in r:
            r["method"] = f"{r['method']} (skipped)"
        rows.append(r)
    columns = [
        ("method", "method", ""),
        ("steps", "steps", ""),
        ("network_calls", "calls", ""),
        ("seconds", "seconds", ".3g"),
        ("gen_ppl", "gen. PPL", ".3f"),
        ("entropy", "entropy (bits)", ".2f"),
        ("char_entropy", "char entropy", ".2f"),
        ("distinct_2", "distinct-2", ".3f"),
        ("distinct_3", "distinct-3", ".3f"),
    ]
    args = data["args"]
    text = (
        f"{args['n_samples']} samples of {models.get('length')} tokens (batches of {args['batch_size']}, "
        f"temperature {args['temperature']}, {models.get('dtype')}), diffusion model "
        f"{models.get('diffusion_parameters', 0):,} parameters, judge {models.get('judge_parameters', 0):,}. "
        "gen. PPL = exp(judge NLL per judge token); entropy = mean unigram entropy of the words (char entropy: "
        "of the characters) of a sample; distinct-n "
        "over words of all samples; `data` = windows of valid.txt; `calls` = network calls per batch.\n\n"
        + markdown_table(rows, columns)
    )
    png = data.get("png")
    return text + (f"\n\n![quality vs wall time]({Path(png).name})" if png else "")


def summary(data: dict) -> str:
    """Real text, AR, and each sampler at the steps whose wall time is nearest AR's (equal cost)."""
    rows = [r for r in ok(data.get("rows", [])) if "gen_ppl" in r]
    ar = next((r for r in rows if r["method"] == "ar"), None)
    short = [r for r in rows if r["method"] in ("data", "ar")]
    for method in dict.fromkeys(r["method"] for r in rows if r["method"] not in ("data", "ar")):
        mine = [r for r in rows if r["method"] == method]
        short.append(
            min(mine, key=lambda r: abs(math.log(r["seconds"] / ar["seconds"])))
            if ar
            else max(mine, key=lambda r: r["steps"])
        )
    columns = [
        ("method", "method", ""),
        ("steps", "steps", ""),
        ("seconds", "seconds", ".3g"),
        ("gen_ppl", "judge PPL", ".1f"),
        ("entropy", "entropy (bits)", ".2f"),
        ("distinct_2", "distinct-2", ".3f"),
    ]
    png = data.get("png")
    return markdown_table(short, columns) + (
        f"\n\n![quality vs wall time](results/{Path(png).name})" if png else ""
    )


BENCH = Benchmark("quality", "Sample quality", render=render, summary=summary, tf32=False)


if __name__ == "__main__":
    main(parse())
