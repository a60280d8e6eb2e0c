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

    python -m bench.block_diffusion --quick          # CPU, about 5 minutes at 1 thread
    python -m bench.block_diffusion --device cuda    # the GPU recipe (scripts/gpu_block_diffusion.sh)

Writes bench/results/block-diffusion-{cpu,cuda}[-quick].json and a Markdown table beside it (.md); models go to
OUT/NAME and a rerun reuses those that finished with the same plan.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from functools import partial
from pathlib import Path

import torch

from bench.common import (
    BOS_ID,
    CHAR_VOCAB,
    MASK_ID,
    CallCounter,
    CharModelArgs,
    inference_dtype,
    random_network,
    time_call,
)
from bench.harness import (
    BENCH_DIR,
    Benchmark,
    Results,
    log,
    markdown_table,
    parse_args,
    run,
)


@dataclasses.dataclass
class BlockDiffusionArgs(CharModelArgs):
    quick: bool = False
    """CPU-sized run (the QUICK defaults below; flags given with --quick still override them)."""
    n_layers: int = 6
    n_heads: int = 6
    dim: int = 384
    block_sizes: tuple[int, ...] = (4, 16)
    """Block sizes of the block diffusion models trained (besides AR and full MDLM)."""
    speed_block_sizes: tuple[int, ...] = (1, 4, 16)
    speed_batches: tuple[int, ...] = (1, 16)
    speed_repeats: int = 3
    skip_likelihood: bool = False
    skip_speed: bool = False
    out: str = str(BENCH_DIR / "runs" / "block-diffusion")
    """Folder of the trained models."""


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


def model_config(args: BlockDiffusionArgs, **fields):
    from textdiffusion.config import ModelConfig

    return ModelConfig(
        n_layers=args.n_layers,
        n_heads=args.n_heads,
        dim=args.dim,
        max_len=args.seq_len,
        dropout=args.dropout,
        **fields,
    )


# -- likelihood ---------------------------------------------------------------------------------------------------
def plan(args: BlockDiffusionArgs) -> list[tuple[str, str, int]]:
    """(name, objective, block size) of each model; block size 0 is full MDLM."""
    models = [("ar", "ar", 0)]
    models += [(f"block-{b}", "diffusion", b) for b in args.block_sizes]
    return models + [("mdlm", "diffusion", 0)]


SAME = ("n_layers", "n_heads", "dim", "seq_len", "batch_size", "lr", "tokens", "seed", "data_dir")
"""Arguments a reused model must have been trained with."""
TRAIN_FIELDS = (
    "name", "objective", "block_size", "parameters", "steps", "planned_steps", "tokens",
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
def speed_cases(args: BlockDiffusionArgs, device) -> list[dict]:
    from textdiffusion.processes import MaskedProcess, build_schedule
    from textdiffusion.samplers import sample_block
    from textdiffusion.samplers.autoregressive import sample_autoregressive

    process = MaskedProcess(build_schedule("loglinear"), mask_id=MASK_ID)
    length = args.seq_len
    made = dict(device=device, dtype=inference_dtype(device), seed=args.seed)
    ar = random_network(model_config(args, vocab_size=CHAR_VOCAB, causal=True), **made)
    blocks = {
        b: CallCounter(
            random_network(model_config(args, vocab_size=CHAR_VOCAB, block_size=b), **made)
        )
        for b in args.speed_block_sizes
    }
    generator = torch.Generator(device=device)
    calls = [0]

    def decode(model, tokens, positions, cache):
        calls[0] += 1
        return model(tokens, None, cache=cache, positions=positions)[:, -1]

    def run_ar(batch: int):
        generator.manual_seed(args.seed)
        calls[0] = 0
        return sample_autoregressive(
            ar, (batch, length), bos_id=BOS_ID, generator=generator, step_fn=decode
        )

    def run_block(model: CallCounter, batch: int, steps: int, use_cache: bool):
        generator.manual_seed(args.seed)
        model.calls = 0
        return sample_block(
            model, process, (batch, length), steps, generator=generator, use_cache=use_cache
        )

    def seconds(fn) -> tuple[float, torch.Tensor]:
        timing, ids = time_call(fn, device=device, repeats=args.speed_repeats)
        return timing.median, ids

    cases = [
        (b, steps, True)
        for b in args.speed_block_sizes
        for steps in sorted({b, max(1, b // 4)})[::-1]
    ]
    largest = max(args.speed_block_sizes)
    cases.append((largest, largest, False))  # the reference without the KV cache
    records = []
    for batch in args.speed_batches:
        taken, _ = seconds(partial(run_ar, batch))
        base = batch * length / taken
        records.append(
            dict(sampler="ar (KV cache)", batch=batch, length=length, seconds=taken,
                 tokens_per_s=base, calls=calls[0], vs_ar=1.0)
        )  # fmt: skip
        log(f"batch {batch}: AR {base:,.0f} tokens/s ({calls[0]} calls)")
        for b, steps, use_cache in cases:
            model = blocks[b]
            taken, ids = seconds(partial(run_block, model, batch, steps, use_cache))
            if bool((ids == MASK_ID).any()):
                raise RuntimeError("the block sampler left masked tokens")
            rate = batch * length / taken
            name = f"block {b}, {steps} steps/block" + ("" if use_cache else ", no KV cache")
            records.append(
                dict(sampler=name, block_size=b, steps_per_block=steps, kv_cache=use_cache,
                     batch=batch, length=length, seconds=taken, tokens_per_s=rate,
                     calls=model.calls, vs_ar=rate / base)
            )  # fmt: skip
            log(
                f"batch {batch}: {name}: {rate:,.0f} tokens/s ({model.calls} calls), {rate / base:.2f}x AR"
            )
    return records


# -- report -------------------------------------------------------------------------------------------------------
LIKELIHOOD_COLUMNS = [
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
]
SPEED_COLUMNS = [
    ("batch", "batch", "d"),
    ("sampler", "sampler", ""),
    ("calls", "network calls", ",d"),
    ("seconds", "seconds", ".3f"),
    ("tokens_per_s", "tokens/s", ",.0f"),
    ("vs_ar", "vs AR", ".2f"),
]


def render(data: dict) -> str:
    a, parts = data["args"], []
    rows = likelihood_rows(data)
    if rows:
        parts.append(
            f"Bits per character on tinyshakespeare valid.txt ({a['eval_windows'] or 'all'} windows of "
            f"{a['seq_len']} tokens), models of {a['n_layers']} layers x {a['dim']} trained on the same tokens "
            f"(batch {a['batch_size']}, lr {a['lr']}). Diffusion rows are ELBO bounds ({a['eval_samples']} "
            "count-stratified samples per window and block); AR is exact. ratio = bpc / AR bpc. The last two "
            "columns bound the block sampler's own likelihood with B (block size) and B/4 ancestral steps per "
            "block (`eval --steps`): the two settings timed below.\n\n"
            + markdown_table(rows, LIKELIHOOD_COLUMNS)
        )
        if any(r.get("same_tokens") is False for r in rows):
            parts.append("**Some models saw a different number of tokens than AR.**")
    speed = data.get("speed", [])
    if speed:
        parts.append(
            f"Sampling {speed[0]['length']} tokens (the whole context) per text; tokens/s = batch x length / "
            "seconds (median of repeats); vs AR = against AR with its KV cache at the same batch.\n\n"
            + markdown_table(speed, SPEED_COLUMNS)
        )
    failed = [m for m in data.get("models", []) if "error" in m]
    if failed:
        parts.append("Failed: " + "; ".join(f"{m['name']}: {m['error'][:200]}" for m in failed))
    return "\n\n".join(parts)


def summary(data: dict) -> str:
    """Bits/char and the ratio to AR per model; tokens/s over AR per sampler and batch."""
    parts = []
    rows = likelihood_rows(data)
    if rows:
        keep = ("name", "block_size", "bpc", "stderr", "ratio")
        parts.append(markdown_table(rows, [c for c in LIKELIHOOD_COLUMNS if c[0] in keep]))
    speed = data.get("speed", [])
    if speed:
        batches = sorted({r["batch"] for r in speed})
        table = {}
        for r in (r for r in speed if r["sampler"] != "ar (KV cache)"):  # 1.00 by definition
            table.setdefault(r["sampler"], {"sampler": r["sampler"]})[f"vs_{r['batch']}"] = r[
                "vs_ar"
            ]
        columns = [("sampler", "sampler", "")]
        columns += [(f"vs_{b}", f"× AR, batch {b}", ".2f") for b in batches]
        parts.append(markdown_table(table.values(), columns))
    return "\n\n".join(parts)


BENCH = Benchmark("block-diffusion", "Block diffusion (BD3-LM)", render, summary, tf32=False)


def parse(argv: list[str] | None = None) -> BlockDiffusionArgs:
    return parse_args(BlockDiffusionArgs, QUICK, argv)


def reused(args: BlockDiffusionArgs, previous: dict, name: str) -> dict | None:
    """The training record of model `name` when an earlier run of the same plan finished it."""
    steps = args.planned_steps
    same = {k: previous.get("args", {}).get(k) for k in SAME} == {k: getattr(args, k) for k in SAME}
    for m in previous.get("models", []) if same else []:
        trained = m.get(
            "steps", m.get("train_steps")
        )  # files before bench/common.py's trainer helper
        path = Path(m.get("path", "")) / "model.safetensors"
        if m.get("name") == name and m.get("planned_steps") == trained == steps and path.is_file():
            return {"steps": trained, **{k: m[k] for k in TRAIN_FIELDS if k in m}}
    return None


def measure(args: BlockDiffusionArgs, results: Results, device) -> None:
    results.set("models", [])
    steps = args.planned_steps
    for name, objective, block_size in [] if args.skip_likelihood else plan(args):
        try:
            record = reused(args, results.previous, name)
            if record is not None:
                log(f"{name}: trained in an earlier run, reused")
            else:
                log(f"{name}: training {steps} steps of {args.batch_size} x {args.seq_len} tokens")
                record = {"name": name, "objective": objective}
                record["block_size"] = (
                    (block_size or args.seq_len) if objective == "diffusion" else None
                )
                record |= args.train(
                    model_config(args, block_size=block_size), out=Path(args.out) / name,
                    objective=objective, device=device, progress=False, eval_batches=1,
                )  # fmt: skip
            # the bounds of the block sampler at as many steps per block as tokens per block and at a quarter of
            # that: the two settings of the speed table (how much likelihood the faster one gives up)
            block = record["block_size"]
            per_block = tuple(sorted({block, max(1, block // 4)})) if block else ()
            record.update(args.score(record["path"], device=device, sampler_steps=per_block))
            log(
                f"{name}: {record['bits_per_char']:.4f} bits/char"
                + ("" if record["exact"] else f" ± {record['stderr_bits_per_char']:.4f}")
                + f" (trained in {record['train_seconds']:.0f} s)"
            )
        except Exception as exc:  # keep the other models
            record = {"name": name, "error": f"{type(exc).__name__}: {exc}"[:2000]}
            log(f"{name}: FAILED {record['error'][:300]}")
        results.add("models", record)
    for row in likelihood_rows(results.data):
        log(
            f"{row['name']}: {row['bpc']:.4f} bits/char, ratio to AR {row.get('ratio', math.nan):.3f}"
        )
    if not args.skip_speed:
        results.set("speed", speed_cases(args, device))


def main(args: BlockDiffusionArgs | None = None) -> dict:
    args = args or parse()
    logging.basicConfig(level=logging.WARNING)
    return run(BENCH, args, lambda results, device: measure(args, results, device))


if __name__ == "__main__":
    main()
