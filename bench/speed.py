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

    python bench/speed.py --quick                       # CPU, small sizes, about 2 minutes on 2 cores
    python bench/speed.py --device cuda --json bench/results/speed-cuda.json
    python bench/speed.py --render bench/results/speed-cuda.json   # (re)write the README table from a result file
"""

from __future__ import annotations

import dataclasses
import gc
import tempfile
import time
from pathlib import Path
from typing import Literal

import torch
from common import (
    ATTENTION_BACKENDS,
    CHAR_VOCAB,
    DEFAULT_DATA,
    RESULTS_DIR,
    BenchArgs,
    CallCounter,
    Results,
    attention_backend,
    inference_dtype,
    log,
    markdown_table,
    model_config,
    parse_args,
    provenance,
    record_matmul_rate,
    resolve_device,
    run_case,
    setup_torch,
    synchronize,
    time_call,
    update_readme,
)
from torch import nn

MASK_ID, BOS_ID = 1, 2  # the ids of [MASK] and [BOS] in every textdiffusion tokenizer


@dataclasses.dataclass
class SpeedArgs(BenchArgs):
    quick: bool = False
    """CPU-sized run (tiny model, lengths 64/256, steps 16/64, small training batches): about 2 minutes."""
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
    both; base-h128:1024:64 is the fastest ~85M-parameter step measured, bench/README.md "MFU variants"). ATTENTION pins the kernel of `scaled_dot_product_attention`: flash, cudnn, efficient or math (default
    auto: PyTorch's choice), e.g. base:1024:32:compiled:cudnn."""
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
"""--quick: the defaults of a CPU run of about 2 minutes (flags given with --quick still override them)."""


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


def build_model(
    size: str, *, vocab_size: int, max_len: int, causal: bool, device, dtype, seed: int
):
    from textdiffusion.networks import DiffusionTransformer

    torch.manual_seed(seed)
    config = model_config(size, vocab_size=vocab_size, max_len=max_len, causal=causal)
    return DiffusionTransformer(config).to(device=device, dtype=dtype).eval()


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

    counter = CallCounter(model, config=model.config, cudagraphs=cudagraphs)
    generator = torch.Generator(device=device)

    def run():
        generator.manual_seed(seed)
        counter.calls = 0
        return SAMPLERS[sampler](counter, process, (batch, length), steps, generator=generator)

    timing, ids = time_call(run, device=device, repeats=repeats, warmup=1)
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

    def run():
        generator.manual_seed(seed)
        calls[0] = 0
        return sample_autoregressive(
            model, (batch, length), bos_id=BOS_ID, generator=generator, step_fn=counted
        )

    timing, _ = time_call(run, device=device, repeats=repeats, warmup=1)
    return _speed_record(timing, batch, length, calls[0])


def _speed_record(timing, batch: int, length: int, calls: int) -> dict:
    return {
        "seconds": timing.median,
        "tokens_per_s": batch * length / timing.median,
        "network_calls": calls,
        "ms_per_call": 1000 * timing.median / max(1, calls),
        **{k: v for k, v in timing.to_dict().items() if k != "median_s"},
    }


def bench_sampling(args: SpeedArgs, results: Results, device: torch.device) -> None:
    from textdiffusion.processes import MaskedProcess, build_schedule

    dtype = inference_dtype(device, args.dtype)
    max_len = max(args.lengths) + 1  # the AR model reads BOS + L tokens
    kwargs = dict(
        vocab_size=args.vocab_size, max_len=max_len, device=device, dtype=dtype, seed=args.seed
    )
    diffusion = build_model(args.size, causal=False, **kwargs)
    ar = build_model(args.size, causal=True, **kwargs)
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
    log(
        f"sampling: {args.size} model, {diffusion.num_parameters():,} parameters, {dtype}, on {device}"
    )
    graphed = GraphedDecoder() if args.compiled and device.type == "cuda" else None
    diffusion_graphed = None
    if args.compile_diffusion and device.type == "cuda":
        diffusion_graphed = torch.compile(diffusion, mode="reduce-overhead")
    for length in args.lengths:
        for batch in args.batches:
            where = dict(length=length, batch=batch)
            common = dict(
                batch=batch, length=length, device=device, repeats=args.repeats, seed=args.seed
            )
            _report(
                run_case(
                    results,
                    "sampling",
                    f"ar L={length} B={batch}",
                    lambda c=common: time_autoregressive(ar, **c),
                    method="ar-kv-cache",
                    steps=length,
                    **where,
                )
            )
            if graphed is not None:
                _report(
                    run_case(
                        results,
                        "sampling",
                        f"ar-graphs L={length} B={batch}",
                        lambda c=common: time_autoregressive(ar, step_fn=graphed, **c),
                        method="ar-kv-cache-cudagraphs",
                        steps=length,
                        **where,
                    )
                )
            for steps in args.steps:
                if steps > length:
                    continue
                for sampler in args.samplers:
                    _report(
                        run_case(
                            results,
                            "sampling",
                            f"{sampler} L={length} B={batch} steps={steps}",
                            lambda s=sampler, n=steps, c=common: time_diffusion(
                                diffusion, process, s, steps=n, **c
                            ),
                            method=sampler,
                            steps=steps,
                            **where,
                        )
                    )
                    if diffusion_graphed is not None:
                        _report(
                            run_case(
                                results,
                                "sampling",
                                f"{sampler}-graphs L={length} B={batch} steps={steps}",
                                lambda s=sampler, n=steps, c=common: time_diffusion(
                                    diffusion_graphed, process, s, steps=n, cudagraphs=True, **c
                                ),
                                method=f"{sampler}-cudagraphs",
                                steps=steps,
                                **where,
                            )
                        )


def _report(record: dict) -> None:
    if "error" not in record:
        log(
            f"{record['case']}: {record['tokens_per_s']:,.0f} tok/s, {record['network_calls']} calls, "
            f"{record['seconds']:.3f} s"
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
    """Time `Trainer.train_step`: per step (median) and steady state. `prepare(trainer)` may change the trainer before
    the first step and `model_overrides` the size's ModelConfig fields (bench/mfu_variants.py); `train_more` steps
    after the timing give `loss_after`, the mean loss of the last 20 of them, to compare changes of numerics."""
    from textdiffusion.config import DataConfig, TrainConfig
    from textdiffusion.training import build_trainer

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
        trainer = build_trainer(
            DataConfig(data=(str(corpus),), valid_fraction=0.0),
            config,
            out=Path(folder) / "run",
            # vocab_size=1 is replaced by the tokenizer's size
            model=dataclasses.replace(
                model_config(size, vocab_size=1, max_len=seq_len), **(model_overrides or {})
            ),
            progress=False,
        )
        trainer.net.train()
        if prepare is not None:
            prepare(trainer)
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
        model_config_ = trainer.net.config
        record = {
            "parameters": trainer.net.num_parameters(),
            "vocab_size": model_config_.vocab_size,
            "n_heads": model_config_.n_heads,
            "step_seconds": timing.median,
            "tokens_per_s": batch * seq_len / timing.median,
            "steady_step_seconds": steady,
            "steady_tokens_per_s": batch * seq_len / steady,
            "loss": float(loss),
            **{k: v for k, v in timing.to_dict().items() if k != "median_s"},
        }
        flops_per_step = flops_per_token(model_config_, seq_len) * batch * seq_len
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
        del trainer
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return record


def bench_training(args: SpeedArgs, results: Results, device: torch.device) -> None:
    peak = record_matmul_rate(device, results)  # MFU on GPU only
    precision = "bf16 autocast" if device.type == "cuda" else "fp32"
    for spec in args.train_configs:
        size, seq_len, batch, *rest = spec.split(":")
        mode, attention, *extra = [*rest, *("both", "auto")[len(rest) :]]
        seq_len, batch = int(seq_len), int(batch)
        if (
            extra
            or mode not in ("eager", "compiled", "both")
            or attention not in ATTENTION_BACKENDS
        ):
            raise SystemExit(
                f"--train-configs {spec!r}: the mode must be eager, compiled or both and the attention one of "
                f"{', '.join(ATTENTION_BACKENDS)}"
            )
        for compile in {"eager": [False], "compiled": [True], "both": [False, True]}[mode]:
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


# -- README -------------------------------------------------------------------------------------------------------
def render(data: dict) -> dict[str, str]:
    """README blocks by marker name: `speed-DEVICE[-quick]-sampling` and `...-training`, each with provenance."""
    device = data["machine"]["device"]
    blocks = {}
    if data.get("sampling"):
        rows = [dict(r) for r in data["sampling"]]
        baselines = {
            (r["length"], r["batch"], r["method"]): r.get("tokens_per_s")
            for r in rows
            if r["method"].startswith("ar") and "error" not in r
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
        model = data.get("sampling_model", {})
        columns = [
            ("length", "L", ""),
            ("batch", "B", ""),
            ("method", "method", ""),
            ("steps", "steps", ""),
            ("network_calls", "calls", ""),
            ("seconds", "seconds", ".3g"),
            ("tokens_per_s", "tokens/s", ",.0f"),
            ("vs_ar", "× AR", ".2f"),
        ]
        if any("vs_ar_graphs" in r for r in rows):
            columns.append(("vs_ar_graphs", "× AR graphs", ".2f"))
        blocks["sampling"] = (
            f"Sampling, {model.get('size')} model ({model.get('parameters', 0):,} parameters, vocabulary "
            f"{model.get('vocab_size')}, {model.get('dtype')}) on {device}; median of "
            f"{data['args']['repeats']} runs. `calls` = network calls per generated batch; `× AR` = "
            "tokens/s over the AR baseline with a KV cache at the same L and B"
            + (", `× AR graphs` over the same with CUDA graphs" if len(columns) > 8 else "")
            + ".\n\n"
            + markdown_table(rows, columns)
        )
    if data.get("training"):
        rows = [dict(r) for r in data["training"]]
        for r in rows:
            r["step_ms"] = 1000 * r["step_seconds"] if "step_seconds" in r else None
            r["steady_ms"] = 1000 * r["steady_step_seconds"] if "steady_step_seconds" in r else None
            if "error" in r:
                r["size"] = f"{r['size']} (failed: {r['error'][:60]})"
        peak = data.get("matmul_flops_per_s")
        mfu = (
            f"MFU = (6 N + 12 n_layers dim L) FLOPs/token × tokens/s over the measured {peak['dtype']} "
            f"matmul rate, {peak['value'] / 1e12:.1f} TFLOP/s."
            if peak
            else "(MFU on GPU only.)"
        )
        columns = [
            ("size", "model", ""),
            ("parameters", "parameters", ",d"),
            ("vocab_size", "V", ""),
            ("seq_len", "L", ""),
            ("batch", "B", ""),
            ("precision", "precision", ""),
            ("compile", "compiled", ""),
            ("step_ms", "ms/step", ".1f"),
            ("tokens_per_s", "tokens/s", ",.0f"),
            ("mfu", "MFU", ".1%"),
        ]
        if any(r.get("attention", "auto") != "auto" for r in rows):
            columns.insert(7, ("attention", "attention", ""))
        steady = ""
        if any("steady_step_seconds" in r for r in rows):  # older result files lack it
            columns += [("steady_ms", "steady ms/step", ".1f"), ("steady_mfu", "steady MFU", ".1%")]
            steady = (
                ", each timed with a device sync around it; `steady` runs as many steps back to back with one "
                "sync at the end, as the Trainer does (one per log interval)"
            )
        blocks["training"] = (
            f"Training on {device} (`Trainer.train_step`: forward, ELBO, backward, clip, AdamW, EMA), median "
            f"of {data['args']['train_steps']} steps{steady}. {mfu}\n\n"
            + markdown_table(rows, columns)
        )
    prefix = readme_prefix(data)
    return {f"{prefix}-{part}": f"{text}\n\n{provenance(data)}" for part, text in blocks.items()}


def readme_prefix(data: dict) -> str:
    device = "cuda" if data["machine"]["device"].startswith("cuda") else "cpu"
    return f"speed-{device}{'-quick' if data['args'].get('quick') else ''}"


def write_readme(data: dict) -> None:
    for name, text in render(data).items():
        update_readme(name, text, title="Speed")


def main(args: SpeedArgs) -> dict:
    import json

    if args.render:
        data = json.loads(Path(args.render).read_text())
        write_readme(data)
        return data
    device = resolve_device(args.device)
    setup_torch(device, threads=args.threads)
    path = args.json or RESULTS_DIR / f"speed-{device.type}{'-quick' if args.quick else ''}.json"
    results = Results(path, benchmark="speed", args=args, device=device)
    log(f"writing {path}")
    with torch.no_grad():
        if "sampling" in args.only:
            bench_sampling(args, results, device)
    if "training" in args.only:
        bench_training(args, results, device)
    results.finish()
    synchronize(device)
    if args.readme:
        write_readme(results.data)
    return results.data


if __name__ == "__main__":
    main(parse())
