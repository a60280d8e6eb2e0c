"""Speed: sampling tokens/s of every diffusion sampler against the autoregressive baseline with a KV cache, and
training tokens/s (with MFU on CUDA).

Sampling generates L tokens (L in --lengths) for a batch of B (B in --batches) from randomly initialised models of
one size (random weights cost the same as trained ones; only the confidence sampler with a threshold would differ).
Each case reports the median seconds of --repeats runs, tokens/s = B * L / seconds, network calls per generated
batch, and its ratio to the AR baseline at the same (L, B), measured in the same run. On CUDA the weights are bf16,
the AR decoder also runs as `torch.compile(decode_step, mode="reduce-overhead")` (CUDA graphs over a static KV cache),
and with --compile-diffusion the diffusion network as `torch.compile(model, mode="reduce-overhead")`.

Training runs the project's Trainer (`Trainer.train_step`: forward, ELBO, backward, clipping, AdamW, EMA) on
tinyshakespeare for a character model and the ~85M-parameter / 1024-token configuration. MFU counts
6 * N + 12 * n_layers * dim * L FLOPs per token (N: parameters of the matrix multiplies; the attention term counts
the full L x L scores, PaLM appendix B) against the measured bf16 matmul rate of the card.

    python -m bench.speed --quick --threads 1             # CPU, small sizes, a few minutes on 2 cores
    python -m bench.speed --device cuda --json bench/results/speed-cuda.json
    python -m bench.speed --render bench/results/speed-cuda.json   # redraw the tables from a result file
"""

from __future__ import annotations

import dataclasses
import gc
import tempfile
import time
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from bench.common import (
    ATTENTION_BACKENDS,
    BOS_ID,
    CHAR_VOCAB,
    DEFAULT_DATA,
    MASK_ID,
    CallCounter,
    attention_backend,
    inference_dtype,
    model_config,
    random_network,
    record_matmul_rate,
    synchronize,
    time_call,
)
from bench.harness import (
    BenchArgs,
    Benchmark,
    Results,
    log,
    markdown_table,
    ok,
    parse_args,
    run,
    run_case,
)


@dataclasses.dataclass
class SpeedArgs(BenchArgs):
    quick: bool = False
    """CPU-sized run (tiny model, lengths 64/256, steps 16/64, small training batches): a few minutes."""
    only: tuple[Literal["sampling", "training"], ...] = ("sampling", "training")
    """Which parts to run."""
    size: str = "small"
    """Model size of the sampling benchmark (bench/common.py SIZES: tiny, mini, small, medium, base)."""
    vocab_size: int = CHAR_VOCAB
    """Vocabulary of the sampling models (default: the tinyshakespeare character tokenizer)."""
    lengths: tuple[int, ...] = (256, 1024)
    """Tokens generated per sequence."""
    batches: tuple[int, ...] = (1, 16)
    """Sequences generated at once."""
    steps: tuple[int, ...] = (64, 256)
    """Diffusion steps (values above the length are skipped)."""
    samplers: tuple[str, ...] = ("ancestral", "cached", "confidence")
    """Diffusion samplers to time."""
    compiled: bool = True
    """On CUDA also time the AR decoder compiled with CUDA graphs (what a careful user compares against)."""
    compile_diffusion: bool = False
    """On CUDA also time the diffusion samplers over the network compiled with CUDA graphs (two more
    compilations, about a minute)."""
    train_configs: tuple[str, ...] = (
        "small:256:64:eager",
        "base:1024:32:both",
        "base-h128:1024:64:compiled",
    )
    """Training cases SIZE:SEQ_LEN:BATCH[:eager|compiled|both[:ATTENTION]] (compiled runs on CUDA only; default
    both; base-h128:1024:64 is the fastest ~85M-parameter step measured, bench/README.md "MFU variants").
    ATTENTION pins the kernel of `scaled_dot_product_attention`: flash, cudnn, efficient or math (default auto:
    PyTorch's choice), e.g. base:1024:32:compiled:cudnn."""
    train_steps: int = 10
    """Timed training steps (after 3 warm-up steps, 1 on the CPU)."""
    repeats: int = 3
    """Timed repeats of each sampling case (the median is reported)."""
    dtype: Literal["auto", "fp32", "bf16"] = "auto"
    """Sampling weights: auto is bf16 on CUDA, fp32 on the CPU."""
    data_dir: str = str(DEFAULT_DATA)
    """Folder with train.txt for the training benchmark (random text is used when it is missing)."""
    seed: int = 0


QUICK = dict(
    quick=True,
    size="tiny",
    lengths=(64, 256),
    batches=(1, 16),
    steps=(16, 64),
    train_configs=("small:256:8", "base:1024:1"),
    train_steps=2,
)
"""--quick: the defaults of a CPU run (flags given with --quick still override them)."""


def parse(argv: list[str] | None = None) -> SpeedArgs:
    return parse_args(SpeedArgs, QUICK, argv)


class GraphedDecoder:
    """`decode_step` compiled with CUDA graphs (mode="reduce-overhead") over one persistent KV cache per shape.

    The cache a call brings is ignored: a fresh cache per generation would be a new graph input each time, and a
    mutated non-static input makes torch.compile skip CUDA graphs. Positions beyond the current one are masked, so
    stale values from an earlier generation are never read.
    """

    def __init__(self) -> None:
        from textdiffusion.samplers.autoregressive import decode_step

        self.compiled = torch.compile(decode_step, mode="reduce-overhead")
        self.caches: dict[tuple[int, int], object] = {}
        self.calls = 0

    def __call__(self, model, tokens, positions, cache):
        from textdiffusion.samplers.autoregressive import new_cache

        key = (tokens.shape[0], cache.max_len)
        static = self.caches.get(key)
        if static is None:
            static = new_cache(model, *key)
            torch._dynamo.mark_static_address(static.keys)
            torch._dynamo.mark_static_address(static.values)
            self.caches[key] = static
        self.calls += 1
        torch.compiler.cudagraph_mark_step_begin()
        # fresh inputs with standard strides: the prefill's tokens are a strided view, which would recompile
        return self.compiled(model, tokens.clone(), positions.clone(), static)


# -- sampling -----------------------------------------------------------------------------------------------------
def time_diffusion(
    model,
    process,
    sampler: str,
    *,
    batch: int,
    length: int,
    steps: int,
    device,
    repeats: int,
    seed: int,
    cudagraphs: bool = False,
) -> dict:
    from textdiffusion.samplers import SAMPLERS

    counter = CallCounter(model, cudagraphs=cudagraphs)
    generator = torch.Generator(device=device)

    def once():
        generator.manual_seed(seed)
        counter.calls = 0
        return SAMPLERS[sampler](counter, process, (batch, length), steps, generator=generator)

    timing, ids = time_call(once, device=device, repeats=repeats, warmup=1)
    if bool((ids == MASK_ID).any()):
        raise RuntimeError(f"{sampler} left masked tokens")
    return _speed_record(timing, batch, length, counter.calls)


def time_autoregressive(
    model, *, batch: int, length: int, device, repeats: int, seed: int, step_fn=None
) -> dict:
    from textdiffusion.samplers.autoregressive import decode_step, sample_autoregressive

    inner = step_fn or decode_step
    calls = [0]

    def counted(*args):
        calls[0] += 1
        return inner(*args)

    generator = torch.Generator(device=device)

    def once():
        generator.manual_seed(seed)
        calls[0] = 0
        return sample_autoregressive(
            model, (batch, length), bos_id=BOS_ID, generator=generator, step_fn=counted
        )

    timing, _ = time_call(once, device=device, repeats=repeats, warmup=1)
    return _speed_record(timing, batch, length, calls[0])


def _speed_record(timing, batch: int, length: int, calls: int) -> dict:
    return {
        "seconds": timing.median,
        "tokens_per_s": batch * length / timing.median,
        "network_calls": calls,
        "ms_per_call": 1000 * timing.median / max(1, calls),
        **{k: v for k, v in timing.to_dict().items() if k != "median_s"},
    }


@torch.no_grad()
def bench_sampling(args: SpeedArgs, results: Results, device: torch.device) -> None:
    from textdiffusion.processes import MaskedProcess, build_schedule

    dtype = inference_dtype(device, args.dtype)
    max_len = max(args.lengths) + 1  # the AR model reads BOS + L tokens
    made = dict(device=device, dtype=dtype, seed=args.seed)
    config = model_config(args.size, vocab_size=args.vocab_size, max_len=max_len)
    diffusion = random_network(config, **made)
    ar = random_network(dataclasses.replace(config, causal=True), **made)
    process = MaskedProcess(build_schedule("loglinear"), mask_id=MASK_ID)
    results.set(
        "sampling_model",
        {
            "size": args.size,
            "parameters": diffusion.num_parameters(),
            "vocab_size": args.vocab_size,
            "dtype": str(dtype).replace("torch.", ""),
        },
    )
    log(f"sampling: {args.size} model, {diffusion.num_parameters():,} parameters, {dtype}")
    graphed = GraphedDecoder() if args.compiled and device.type == "cuda" else None
    diffusion_graphed = None
    if args.compile_diffusion and device.type == "cuda":
        diffusion_graphed = torch.compile(diffusion, mode="reduce-overhead")

    def case(name: str, fn, *, method: str, steps: int, **where) -> None:
        record = run_case(results, "sampling", name, fn, method=method, steps=steps, **where)
        if "error" not in record:
            log(
                f"{name}: {record['tokens_per_s']:,.0f} tok/s, {record['network_calls']} calls, "
                f"{record['seconds']:.3f} s"
            )

    for length in args.lengths:
        for batch in args.batches:
            where = dict(length=length, batch=batch)
            common = dict(where, device=device, repeats=args.repeats, seed=args.seed)
            case(
                f"ar L={length} B={batch}",
                lambda c=common: time_autoregressive(ar, **c),
                method="ar-kv-cache",
                steps=length,
                **where,
            )
            if graphed is not None:
                case(
                    f"ar-graphs L={length} B={batch}",
                    lambda c=common: time_autoregressive(ar, step_fn=graphed, **c),
                    method="ar-kv-cache-cudagraphs",
                    steps=length,
                    **where,
                )
            for steps in (s for s in args.steps if s <= length):
                for sampler in args.samplers:
                    case(
                        f"{sampler} L={length} B={batch} steps={steps}",
                        lambda s=sampler, n=steps, c=common: time_diffusion(
                            diffusion, process, s, steps=n, **c
                        ),
                        method=sampler,
                        steps=steps,
                        **where,
                    )
                    if diffusion_graphed is not None:
                        case(
                            f"{sampler}-graphs L={length} B={batch} steps={steps}",
                            lambda s=sampler, n=steps, c=common: time_diffusion(
                                diffusion_graphed, process, s, steps=n, cudagraphs=True, **c
                            ),
                            method=f"{sampler}-cudagraphs",
                            steps=steps,
                            **where,
                        )


# -- training -----------------------------------------------------------------------------------------------------
def flops_per_token(config, seq_len: int) -> float:
    """6 N + 12 n_layers dim L: forward and backward FLOPs per trained token (PaLM, Chowdhery et al. 2022, app. B).

    N counts the weights of the matrix multiplies (embedding lookups are not multiplies)."""
    from textdiffusion.networks import DiffusionTransformer

    with torch.device("meta"):
        model = DiffusionTransformer(config)
    n = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    return 6 * n + 12 * config.n_layers * config.dim * seq_len


def training_corpus(data_dir: str, folder: Path, min_chars: int) -> Path:
    path = Path(data_dir) / "train.txt"
    if path.is_file():
        return path
    import random

    rng = random.Random(0)
    words = "the of and to a in that is was he for it with as his on be at by i".split()
    text = []
    while sum(len(w) + 1 for w in text) < min_chars:
        text.append(rng.choice(words))
    path = folder / "random.txt"
    path.write_text(" ".join(text) + "\n")
    return path


def time_training(
    size: str,
    seq_len: int,
    batch: int,
    *,
    compile: bool,
    device,
    steps: int,
    data_dir: str,
    peak: float | None,
    seed: int,
    attention: str = "auto",
    prepare=None,
    train_more: int = 0,
    model_overrides: dict | None = None,
) -> dict:
    """Time `Trainer.train_step`: per step (median) and steady state.

    The Trainer is built through the public path (`build_parts`, then `Trainer(parts, ...)`); `prepare(parts)` may
    change the parts before the Trainer is made, and `model_overrides` the size's ModelConfig fields
    (bench/mfu_variants.py). `train_more` steps after the timing give `loss_after`, the mean loss of the last 20 of
    them, to compare changes of numerics."""
    from textdiffusion.config import DataConfig, TrainConfig
    from textdiffusion.training import Trainer, build_parts, distributed

    if compile:  # a fresh compilation per case: earlier cases' graphs must not count toward the recompile limit
        torch._dynamo.reset()
    with tempfile.TemporaryDirectory() as folder, attention_backend(attention):
        corpus = training_corpus(data_dir, Path(folder), 3 * (batch + 2) * seq_len)
        config = TrainConfig(
            steps=10**6,
            batch_size=batch,
            device=str(device),
            compile=compile,
            eval_every=0,
            save_every=10**6,
            log_every=10**6,
            warmup_steps=10,
            seed=seed,
        )
        out, info = Path(folder) / "run", distributed.setup(str(device))
        parts = build_parts(
            DataConfig(data=(str(corpus),), valid_fraction=0.0),
            config,
            out=out,
            info=info,
            # vocab_size=1 is replaced by the tokenizer's size
            model=dataclasses.replace(
                model_config(size, vocab_size=1, max_len=seq_len), **(model_overrides or {})
            ),
        )
        net = parts.net.train()  # the network itself, whatever `prepare` wraps it in
        if prepare is not None:
            prepare(parts)
        trainer = Trainer(parts, config, out=out, info=info, progress=False)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        warmup = 3 if device.type == "cuda" else 1
        timing, loss = time_call(trainer.train_step, device=device, repeats=steps, warmup=warmup)
        # steady state, as the Trainer runs (one device sync per log interval): the same number of steps back to
        # back, one sync at the end, so the host's work overlaps the device's
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        synchronize(device)
        steady = (time.perf_counter() - start) / steps
        record = {
            "parameters": net.num_parameters(),
            "vocab_size": net.config.vocab_size,
            "n_heads": net.config.n_heads,
            "step_seconds": timing.median,
            "tokens_per_s": batch * seq_len / timing.median,
            "steady_step_seconds": steady,
            "steady_tokens_per_s": batch * seq_len / steady,
            "loss": float(loss),
            **{k: v for k, v in timing.to_dict().items() if k != "median_s"},
        }
        flops_per_step = flops_per_token(net.config, seq_len) * batch * seq_len
        record["model_flops_per_s"] = flops_per_step / timing.median
        if peak:
            record["mfu"] = flops_per_step / timing.median / peak
            record["steady_mfu"] = flops_per_step / steady / peak
        if device.type == "cuda":
            record["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        if train_more:
            losses = torch.stack([trainer.train_step() for _ in range(train_more)])
            record["loss_after"] = float(losses[-20:].mean())
            record["steps_trained"] = warmup + 2 * steps + train_more
        del trainer, parts, net
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return record


def parse_train_config(spec: str) -> tuple[str, int, int, list[bool], str]:
    """SIZE:SEQ_LEN:BATCH[:MODE[:ATTENTION]] -> (size, seq_len, batch, compile flags, attention)."""
    size, seq_len, batch, *rest = spec.split(":")
    mode, attention, *extra = [*rest, *("both", "auto")[len(rest) :]]
    modes = {"eager": [False], "compiled": [True], "both": [False, True]}
    if extra or mode not in modes or attention not in ATTENTION_BACKENDS:
        raise SystemExit(
            f"--train-configs {spec!r}: the mode must be eager, compiled or both and the attention one of "
            f"{', '.join(ATTENTION_BACKENDS)}"
        )
    return size, int(seq_len), int(batch), modes[mode], attention


def bench_training(args: SpeedArgs, results: Results, device: torch.device) -> None:
    configs = [parse_train_config(spec) for spec in args.train_configs]  # refused before any case
    peak = record_matmul_rate(device, results)  # MFU on GPU only
    precision = "bf16 autocast" if device.type == "cuda" else "fp32"
    for size, seq_len, batch, compiles, attention in configs:
        for compile in compiles:
            if compile and device.type != "cuda":
                continue
            name = f"train {size} L={seq_len} B={batch}{' compiled' if compile else ''}"
            name += f" attention={attention}" if attention != "auto" else ""
            record = run_case(
                results,
                "training",
                name,
                lambda s=size, n=seq_len, b=batch, c=compile, a=attention: time_training(
                    s,
                    n,
                    b,
                    compile=c,
                    device=device,
                    steps=args.train_steps,
                    data_dir=args.data_dir,
                    peak=peak,
                    seed=args.seed,
                    attention=a,
                ),
                size=size,
                seq_len=seq_len,
                batch=batch,
                compile=compile,
                attention=attention,
                precision=precision,
            )
            if "error" not in record:
                mfu = (
                    f", MFU {record['mfu']:.1%} (steady {record['steady_mfu']:.1%})"
                    if "mfu" in record
                    else ""
                )
                log(
                    f"{name}: {record['tokens_per_s']:,.0f} tok/s, {1000 * record['step_seconds']:.1f} ms/step, "
                    f"steady {1000 * record['steady_step_seconds']:.1f} ms/step{mfu}"
                )


# -- tables -------------------------------------------------------------------------------------------------------
def sampling_rows(data: dict) -> list[dict]:
    """The sampling records with `vs_ar` (and `vs_ar_graphs`): tokens/s over the AR baseline at the same L, B."""
    rows = [dict(r) for r in data.get("sampling", [])]
    baselines = {
        (r["length"], r["batch"], r["method"]): r["tokens_per_s"]
        for r in ok(rows)
        if r["method"].startswith("ar")
    }
    for r in rows:
        base = baselines.get((r["length"], r["batch"], "ar-kv-cache"))
        graphs = baselines.get((r["length"], r["batch"], "ar-kv-cache-cudagraphs"))
        if r.get("tokens_per_s") and base:
            r["vs_ar"] = r["tokens_per_s"] / base
        if r.get("tokens_per_s") and graphs:
            r["vs_ar_graphs"] = r["tokens_per_s"] / graphs
        if "error" in r:
            r["method"] = f"{r['method']} (failed: {r['error'][:60]})"
    return rows


def training_rows(data: dict) -> list[dict]:
    rows = [dict(r) for r in data.get("training", [])]
    for r in rows:
        r["step_ms"] = 1000 * r["step_seconds"] if "step_seconds" in r else None
        r["steady_ms"] = 1000 * r["steady_step_seconds"] if "steady_step_seconds" in r else None
        if "error" in r:
            r["size"] = f"{r['size']} (failed: {r['error'][:60]})"
    return rows


SAMPLING_COLUMNS = [
    ("length", "L", ""),
    ("batch", "B", ""),
    ("method", "method", ""),
    ("steps", "steps", ""),
    ("network_calls", "calls", ""),
    ("seconds", "seconds", ".3g"),
    ("tokens_per_s", "tokens/s", ",.0f"),
    ("vs_ar", "× AR", ".2f"),
]
TRAINING_COLUMNS = [
    ("size", "model", ""),
    ("parameters", "parameters", ",d"),
    ("seq_len", "L", ""),
    ("batch", "B", ""),
    ("precision", "precision", ""),
    ("compile", "compiled", ""),
    ("step_ms", "ms/step", ".1f"),
    ("tokens_per_s", "tokens/s", ",.0f"),
    ("mfu", "MFU", ".1%"),
]


def render(data: dict) -> str:
    device, parts = data["machine"]["device"], []
    if data.get("sampling"):
        rows, columns = sampling_rows(data), list(SAMPLING_COLUMNS)
        graphs = any("vs_ar_graphs" in r for r in rows)
        if graphs:
            columns.append(("vs_ar_graphs", "× AR graphs", ".2f"))
        model = data.get("sampling_model", {})
        parts.append(
            f"## Sampling\n\n{model.get('size')} model ({model.get('parameters', 0):,} parameters, vocabulary "
            f"{model.get('vocab_size')}, {model.get('dtype')}) on {device}; median of "
            f"{data['args']['repeats']} runs. `calls` = network calls per generated batch; `× AR` = tokens/s "
            "over the AR baseline with a KV cache at the same L and B"
            + (", `× AR graphs` over the same with CUDA graphs" if graphs else "")
            + ".\n\n"
            + markdown_table(rows, columns)
        )
    if data.get("training"):
        rows, columns = training_rows(data), list(TRAINING_COLUMNS)
        columns.insert(2, ("vocab_size", "V", ""))
        if any(r.get("attention", "auto") != "auto" for r in rows):
            columns.insert(8, ("attention", "attention", ""))
        if any("steady_step_seconds" in r for r in rows):  # older result files lack it
            columns += [("steady_ms", "steady ms/step", ".1f"), ("steady_mfu", "steady MFU", ".1%")]
        peak = data.get("matmul_flops_per_s")
        mfu = (
            f"MFU = (6 N + 12 n_layers dim L) FLOPs/token × tokens/s over the measured {peak['dtype']} "
            f"matmul rate, {peak['value'] / 1e12:.1f} TFLOP/s."
            if peak
            else "(MFU on GPU only.)"
        )
        parts.append(
            f"## Training\n\nOn {device} (`Trainer.train_step`: forward, ELBO, backward, clip, AdamW, EMA), "
            f"median of {data['args']['train_steps']} steps, each timed with a device sync around it; `steady` "
            "runs as many steps back to back with one sync at the end, as the Trainer does. "
            f"{mfu}\n\n" + markdown_table(rows, columns)
        )
    return "\n\n".join(parts)


def summary(data: dict) -> str:
    """Per (L, B, steps): the AR baseline and the fastest diffusion sampler; the training rows, shortly."""
    parts = []
    rows = ok(sampling_rows(data))
    if rows:
        short = []
        for key in dict.fromkeys((r["length"], r["batch"]) for r in rows):
            here = [r for r in rows if (r["length"], r["batch"]) == key]
            ar = {r["method"]: r for r in here if r["method"].startswith("ar")}
            for steps in sorted({r["steps"] for r in here if not r["method"].startswith("ar")}):
                best = max(
                    (r for r in here if r["steps"] == steps and not r["method"].startswith("ar")),
                    key=lambda r: r["tokens_per_s"],
                )
                short.append(
                    {
                        **best,
                        "ar": ar.get("ar-kv-cache", {}).get("tokens_per_s"),
                        "ar_graphs": ar.get("ar-kv-cache-cudagraphs", {}).get("tokens_per_s"),
                    }
                )
        columns = [
            ("length", "L", ""),
            ("batch", "B", ""),
            ("steps", "steps", ""),
            ("ar", "AR tokens/s", ",.0f"),
            ("method", "fastest sampler", ""),
            ("tokens_per_s", "tokens/s", ",.0f"),
            ("vs_ar", "× AR", ".2f"),
        ]
        if any(r["ar_graphs"] for r in short):
            columns.insert(4, ("ar_graphs", "AR graphs tokens/s", ",.0f"))
            columns.append(("vs_ar_graphs", "× AR graphs", ".2f"))
        parts.append(markdown_table(short, columns))
    if data.get("training"):
        parts.append(markdown_table(training_rows(data), TRAINING_COLUMNS))
    return "\n\n".join(parts)


BENCH = Benchmark("speed", "Speed", render=render, summary=summary)


def main(args: SpeedArgs) -> dict:
    def measure(results: Results, device: torch.device) -> None:
        if "sampling" in args.only:
            bench_sampling(args, results, device)
        if "training" in args.only:
            bench_training(args, results, device)
        synchronize(device)

    return run(BENCH, args, measure)


if __name__ == "__main__":
    main(parse())
