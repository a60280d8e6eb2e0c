"""The fast path (issue item 6): where a sampling step and a training step spend their time, and the before/after
ratio of the fixes, both measured in one run on one machine.

"Before" is kept here as reference code, verbatim from the versions before the fixes:
- `ReferenceMaskedProcess.reverse_step` drew a token at all B * L positions each step (softmax, float64 CDF and
  search over (B, L, V)) although only the ~1/steps revealed ones are used; the cached sampler repeated that work
  at every step whose network call it skipped. Now tokens are drawn at the revealed positions only.
- `reference_sample_confidence` drew tokens and confidences at every position, also the already unmasked ones.
- `ReferenceMaskedProcess.probs` copied the logits twice (float(), clone()) and divided by a temperature of 1.
- `reference_sample_autoregressive` built a positions tensor on the host for every token (a host-to-device copy per
  token on CUDA).
- The training step computed the output layer and its float32 log-softmax at every position, although the masked
  diffusion loss reads only the masked ones (about half): `DiffusionObjective(sparse_logits=False)` is the before.
The fixes keep the random stream: the same generator gives the same ids before and after, and the training step the
same loss (checked below).

    python -m bench.profile_step --quick --threads 1
    python -m bench.profile_step --device cuda --json bench/results/profile-cuda.json
    python -m bench.profile_step --device cuda --size base --length 1024 --train-batch 32 --train-compile \
        --vocab-sizes --json /tmp/profile-train.json --no-readme   # only the (compiled) training step
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import torch

from bench.common import (
    ATTENTION_BACKENDS,
    BOS_ID,
    MASK_ID,
    attention_backend,
    autocast,
    inference_dtype,
    model_config,
    random_network,
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
from textdiffusion.processes import MaskedProcess, build_schedule
from textdiffusion.processes.base import uniform
from textdiffusion.samplers import SAMPLERS
from textdiffusion.samplers.common import initial_state, keep_fixed, time_grid


@dataclasses.dataclass
class ProfileArgs(BenchArgs):
    quick: bool = False
    """CPU-sized run (about a minute)."""
    size: str = "small"
    """Model size (bench/common.py SIZES)."""
    vocab_sizes: tuple[int, ...] = (326, 4096)
    """Vocabularies to profile: the character tokenizer and the default BPE size."""
    batch: int = 16
    length: int = 256
    steps: tuple[int, ...] = (64, 256)
    """Diffusion steps of the sampler cases."""
    train_batch: int = 32
    """Batch of the training-step profile (sequences of --length)."""
    train_compile: bool = False
    """torch.compile the network of the training-step profile (as `textdiffusion train --compile`)."""
    train_attention: str = "auto"
    """Attention kernel of the training-step profile: auto (PyTorch's choice), flash, cudnn, efficient or math."""
    repeats: int = 3
    seed: int = 0


QUICK = dict(quick=True, size="tiny", batch=8, length=128, steps=(64,), train_batch=8)


def parse(argv: list[str] | None = None) -> ProfileArgs:
    return parse_args(ProfileArgs, QUICK, argv)


# -- the reference ("before") code --------------------------------------------------------------------------------
def reference_sample_categorical(probs: torch.Tensor, *, generator=None) -> torch.Tensor:
    probs = probs.double()
    cdf = probs.cumsum(-1)  # (..., V)
    u = uniform(
        cdf.shape[:-1] + (1,), device=probs.device, generator=generator, dtype=torch.float64
    )
    u = u * cdf[..., -1:]
    index = torch.searchsorted(cdf, u, right=True).squeeze(-1)
    return index.clamp_(max=probs.shape[-1] - 1)


def reference_filter_logits(
    logits: torch.Tensor, *, temperature: float = 1.0, top_p: float = 1.0
) -> torch.Tensor:
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p >= 1.0:
        return probs
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    before = sorted_probs.cumsum(-1) - sorted_probs
    sorted_probs = sorted_probs.masked_fill(before >= top_p, 0.0)
    return torch.zeros_like(probs).scatter_(-1, order, sorted_probs)


class ReferenceMaskedProcess(MaskedProcess):
    """MaskedProcess with the pre-fix probs and reverse_step."""

    def probs(self, logits, *, temperature: float = 1.0, top_p: float = 1.0) -> torch.Tensor:
        logits = logits.float().clone()
        logits[..., self.mask_id] = float("-inf")
        return reference_filter_logits(logits, temperature=temperature, top_p=top_p)

    def reverse_step(
        self, logits, xt, t, s, *, generator=None, temperature=1.0, top_p=1.0
    ) -> torch.Tensor:
        masked = xt == self.mask_id
        alpha_t, alpha_s = self.alpha(t)[:, None], self.alpha(s)[:, None]
        reveal_prob = ((alpha_s - alpha_t) / (1.0 - alpha_t).clamp(min=1e-12)).clamp(0.0, 1.0)
        u = uniform(xt.shape, device=xt.device, generator=generator, dtype=torch.float64)
        reveal = masked & (u < reveal_prob.double())
        tokens = reference_sample_categorical(
            self.probs(logits, temperature=temperature, top_p=top_p), generator=generator
        )
        return torch.where(reveal, tokens, xt)


@torch.no_grad()
def reference_sample_confidence(
    model, process, shape, steps, *, generator=None, temperature=1.0, top_p=1.0
):
    """The confidence sampler before the fix (count schedule, no x_init/fixed/callback: what the bench uses)."""
    device = next(model.parameters()).device
    mask_id = process.mask_id
    xt, x_init, fixed = initial_state(
        process, shape, device=device, generator=generator, x_init=None, fixed=None, t_start=1.0
    )
    grid = time_grid(steps, 1.0, device=device)
    n_start = (xt == mask_id).sum(dim=1)
    for step in range(steps):
        masked = xt == mask_id
        if not bool(masked.any()):
            break
        t = grid[step].expand(shape[0])
        logits = model(xt, t)
        probs = process.probs(logits, temperature=temperature, top_p=top_p)
        tokens = reference_sample_categorical(probs, generator=generator)
        confidence = probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        confidence = confidence.masked_fill(~masked, -1.0)
        n_masked = masked.sum(dim=1)
        if step == steps - 1:
            reveal = masked
        else:
            remaining = (n_start * (steps - step - 1)) // steps
            count = (n_masked - remaining).clamp(min=0)
            ranks = confidence.argsort(dim=1, descending=True).argsort(dim=1)
            reveal = masked & (ranks < count[:, None])
        xt = keep_fixed(torch.where(reveal, tokens, xt), x_init, fixed)
    return xt


@torch.no_grad()
def reference_sample_autoregressive(model, shape, *, bos_id: int, generator=None) -> torch.Tensor:
    """The AR sampler before the fix: a positions tensor made on the host for every token."""
    from textdiffusion.processes.base import filter_logits, sample_categorical
    from textdiffusion.samplers.autoregressive import decode_step, new_cache

    B, L = shape
    device = next(model.parameters()).device
    ids = torch.full((B, L + 1), bos_id, dtype=torch.long, device=device)
    cache = new_cache(model, B, L + 1)
    logits = decode_step(model, ids[:, :1], torch.arange(1, device=device), cache)
    for pos in range(L):
        token = sample_categorical(filter_logits(logits), generator=generator)
        ids[:, pos + 1] = token
        if pos + 1 < L:
            logits = decode_step(
                model, token[:, None], torch.tensor([pos + 1], device=device), cache
            )
    return ids[:, 1:]


# -- cases --------------------------------------------------------------------------------------------------------
def _before_after(before, after, *, device, repeats: int, same=torch.equal) -> dict:
    """Median seconds of `before()` and `after()`, run alternately (so a drifting machine load hits both alike);
    `identical`: `same` of their last outputs."""
    ids_before, ids_after = before(), after()  # warm-up
    times_before, times_after = [], []
    for _ in range(max(1, repeats)):
        for fn, times in ((before, times_before), (after, times_after)):
            synchronize(device)
            start = time.perf_counter()
            ids = fn()
            synchronize(device)
            times.append(time.perf_counter() - start)
            if fn is before:
                ids_before = ids
            else:
                ids_after = ids
    t_before, t_after = statistics.median(times_before), statistics.median(times_after)
    return {
        "before_s": t_before,
        "after_s": t_after,
        "speedup": t_before / t_after,
        "identical": bool(same(ids_before, ids_after)),
        "before_times_s": times_before,
        "after_times_s": times_after,
    }


def sampler_case(
    model, sampler: str, *, batch: int, length: int, steps: int, device, repeats: int, seed: int
):
    process = MaskedProcess(build_schedule("loglinear"), mask_id=MASK_ID)
    reference = ReferenceMaskedProcess(build_schedule("loglinear"), mask_id=MASK_ID)
    generator = torch.Generator(device=device)
    shape = (batch, length)

    def after():
        generator.manual_seed(seed)
        return SAMPLERS[sampler](model, process, shape, steps, generator=generator)

    def before():
        generator.manual_seed(seed)
        if sampler == "confidence":
            return reference_sample_confidence(model, reference, shape, steps, generator=generator)
        return SAMPLERS[sampler](model, reference, shape, steps, generator=generator)

    record = _before_after(before, after, device=device, repeats=repeats)
    # the network's share: one forward pass at this shape, times the calls of a plain ancestral run
    x = torch.full(shape, MASK_ID, device=device)
    t = torch.ones(batch, device=device)
    with torch.no_grad():
        forward, _ = time_call(lambda: model(x, t), device=device, repeats=repeats, warmup=1)
    record["forward_s"] = forward.median
    calls = steps if sampler != "cached" else None
    if calls is not None:
        record["outside_network_before"] = max(0.0, 1 - calls * forward.median / record["before_s"])
        record["outside_network_after"] = max(0.0, 1 - calls * forward.median / record["after_s"])
    return record


def reverse_step_case(
    *, batch: int, length: int, vocab: int, steps: int, device, repeats: int, seed: int
):
    """One reverse step alone, on random logits, in the middle of a run (about half the tokens masked)."""
    process = MaskedProcess(build_schedule("loglinear"), mask_id=MASK_ID)
    reference = ReferenceMaskedProcess(build_schedule("loglinear"), mask_id=MASK_ID)
    generator = torch.Generator(device=device).manual_seed(seed)
    logits = torch.randn(batch, length, vocab, device=device, generator=generator).to(
        inference_dtype(device)
    )
    xt = torch.randint(5, vocab, (batch, length), device=device, generator=generator)
    xt = torch.where(
        torch.rand(batch, length, device=device, generator=generator) < 0.5, MASK_ID, xt
    )
    t = torch.full((batch,), 0.5, device=device)
    s = t - 1.0 / steps

    def run(p):
        def fn():
            generator.manual_seed(seed)
            return p.reverse_step(logits, xt, t, s, generator=generator)

        return fn

    return _before_after(run(reference), run(process), device=device, repeats=repeats)


def ar_case(model, *, batch: int, length: int, device, repeats: int, seed: int):
    from textdiffusion.samplers.autoregressive import sample_autoregressive

    generator = torch.Generator(device=device)

    def before():
        generator.manual_seed(seed)
        return reference_sample_autoregressive(
            model, (batch, length), bos_id=BOS_ID, generator=generator
        )

    def after():
        generator.manual_seed(seed)
        return sample_autoregressive(model, (batch, length), bos_id=BOS_ID, generator=generator)

    return _before_after(before, after, device=device, repeats=repeats)


def train_step_case(
    *, size: str, vocab: int, batch: int, length: int, device, repeats: int, seed: int
):
    """Forward, ELBO, backward and AdamW: the output layer at every position (before) against the masked positions
    only (after, `DiffusionObjective(sparse_logits=True)`). The learning rate is 0, so every step sees the same
    weights and noise, and the two losses must agree."""
    from textdiffusion.networks import DiffusionTransformer
    from textdiffusion.training.objectives import DiffusionObjective

    torch.manual_seed(seed)
    model = DiffusionTransformer(model_config(size, vocab_size=vocab, max_len=length)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0, fused=device.type == "cuda" or None)
    process = MaskedProcess(build_schedule("loglinear"), mask_id=MASK_ID)
    x0 = torch.randint(5, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))
    x0, generator = x0.to(device), torch.Generator(device=device)

    def step(objective):
        def fn():
            generator.manual_seed(seed)
            with autocast(device):
                loss = objective(model, x0, generator=generator)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return loss.detach().float()

        return fn

    return _before_after(
        step(DiffusionObjective(process, sparse_logits=False)),
        step(DiffusionObjective(process, sparse_logits=True)),
        device=device,
        repeats=repeats,
        same=lambda a, b: torch.allclose(a, b, rtol=1e-3),
    )


def train_profile(
    *,
    size: str,
    batch: int,
    length: int,
    device,
    compile: bool = False,
    attention: str = "auto",
    steps: int = 3,
) -> dict:
    """Top operators of the training step (forward, loss, backward, AdamW) by self time, from torch.profiler; on
    CUDA the kernels, and their time by kind (matmul, attention, fused Triton, optimizer, other)."""
    from textdiffusion.networks import DiffusionTransformer
    from textdiffusion.training.ema import EMA
    from textdiffusion.training.objectives import DiffusionObjective

    model = DiffusionTransformer(model_config(size, vocab_size=326, max_len=length)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda" or None)
    if compile:
        model = torch.compile(model)
    process = MaskedProcess(build_schedule("loglinear"), mask_id=MASK_ID)
    objective = DiffusionObjective(process, sparse_logits=not compile)  # as the Trainer
    generator = torch.Generator(device=device).manual_seed(0)
    x0 = torch.randint(5, 326, (batch, length), device=device, generator=generator)

    ema = EMA(model, decay=0.9999)

    def step():  # as Trainer.train_step
        with autocast(device):
            loss = objective(model, x0, generator=generator)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(model)

    with attention_backend(attention):
        return _profile_steps(step, device=device, compile=compile, steps=steps)


def _profile_steps(step, *, device, compile: bool, steps: int) -> dict:
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    for _ in range(2 if compile else 1):  # compiled: the first steps trace and autotune
        step()
    synchronize(device)
    start = time.perf_counter()
    # wall time without the profiler, to set against the device's busy time: the idle share
    for _ in range(steps):
        step()
    synchronize(device)
    wall = (time.perf_counter() - start) / steps
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    if (
        device.type == "cuda"
    ):  # the kernels themselves (operators would count their kernels' time twice)
        key = "self_device_time_total"
        events = [e for e in prof.key_averages() if e.device_type == DeviceType.CUDA]
    else:
        key = "self_cpu_time_total"
        events = list(prof.key_averages())
    events.sort(key=lambda e: getattr(e, key, 0), reverse=True)
    total = sum(getattr(e, key, 0) for e in events) or 1
    top = [
        {
            "op": e.key,
            "ms_per_step": getattr(e, key, 0) / 1000 / steps,
            "share": getattr(e, key, 0) / total,
            "calls_per_step": e.count / steps,
        }
        for e in events[:20]
    ]
    categories: dict[str, float] = {}  # CUDA kernels by kind (CPU operators have no kinds)
    if device.type == "cuda":
        for e in events:
            name = kernel_category(e.key)
            categories[name] = categories.get(name, 0.0) + getattr(e, key, 0) / 1000 / steps
    # on CUDA the kernels' busy time (one stream), to set against the wall
    return {
        "by": key,
        "top": top,
        "categories": categories,
        "wall_ms_per_step": 1000 * wall,
        "busy_ms_per_step": total / 1000 / steps,
    }


KERNEL_CATEGORIES = (  # first match wins: attention kernels' names also hold "sm90" or "gemm"
    ("attention", ("flash", "fmha", "sdpa", "attention", "attn")),
    ("matmul", ("gemm", "nvjet", "xmma", "cutlass", "cublas")),
    ("fused (Triton)", ("triton",)),
    ("optimizer, clip, EMA", ("multi_tensor", "fused_adam", "adam")),
)


def kernel_category(name: str) -> str:
    """Which kind of work a CUDA kernel does, from its name (other: eager element-wise, reductions, copies)."""
    lower = name.lower()
    for category, marks in KERNEL_CATEGORIES:
        if any(mark in lower for mark in marks):
            return category
    return "other"


# -- the run ------------------------------------------------------------------------------------------------------
def measure(args: ProfileArgs, results: Results, device: torch.device) -> None:
    dtype = inference_dtype(device)
    common = dict(device=device, repeats=args.repeats, seed=args.seed)
    shape = dict(batch=args.batch, length=args.length)
    train_shape = dict(batch=args.train_batch, length=args.length)

    def case(name: str, fn, **fields) -> None:
        record = run_case(results, "cases", name, fn, **fields)
        if "error" not in record:
            log(
                f"{name}: before {record['before_s']:.4f} s, after {record['after_s']:.4f} s, "
                f"{record['speedup']:.2f}x, identical={record['identical']}"
            )

    for vocab in args.vocab_sizes:
        config = model_config(args.size, vocab_size=vocab, max_len=args.length + 1)
        made = dict(device=device, dtype=dtype, seed=args.seed)
        model = random_network(config, **made)
        for steps in args.steps:
            for sampler in ("ancestral", "cached", "confidence"):
                case(
                    f"{sampler} V={vocab} steps={steps}",
                    lambda s=sampler, n=steps, m=model: sampler_case(
                        m, s, steps=n, **shape, **common
                    ),
                    kind="sampler",
                    method=sampler,
                    vocab=vocab,
                    steps=steps,
                    **shape,
                )
        case(
            f"reverse_step V={vocab}",
            lambda v=vocab: reverse_step_case(vocab=v, steps=max(args.steps), **shape, **common),
            kind="reverse_step",
            method="reverse_step",
            vocab=vocab,
            steps=max(args.steps),
            **shape,
        )
        ar_model = random_network(dataclasses.replace(config, causal=True), **made)
        case(
            f"ar V={vocab}",
            lambda m=ar_model: ar_case(m, **shape, **common),
            kind="ar",
            method="ar kv-cache",
            vocab=vocab,
            steps=args.length,
            **shape,
        )
        case(
            f"train step V={vocab}",
            lambda v=vocab: train_step_case(size=args.size, vocab=v, **train_shape, **common),
            kind="train_step",
            method="train step",
            vocab=vocab,
            steps=None,
            **train_shape,
        )
    record = run_case(
        results,
        "train_profile",
        f"train step {args.size}",
        lambda: train_profile(
            size=args.size,
            batch=args.train_batch,
            length=args.length,
            device=device,
            compile=args.train_compile,
            attention=args.train_attention,
        ),
    )
    if "top" in record:
        log(
            f"training step: {record['wall_ms_per_step']:.1f} ms wall, {record['busy_ms_per_step']:.1f} ms busy; "
            + "top operators: "
            + ", ".join(f"{op['op']} {op['share']:.0%}" for op in record["top"][:6])
        )


def stem(args: ProfileArgs, device: torch.device) -> str:
    """profile-DEVICE[-quick][-train]: a run without vocabularies (`--vocab-sizes` empty) profiles training only."""
    train_only = "-train" if not args.vocab_sizes else ""
    return f"profile-{device.type}{'-quick' if args.quick else ''}{train_only}"


def case_rows(data: dict) -> list[dict]:
    rows = [dict(r) for r in data.get("cases", [])]
    for r in rows:
        if "error" in r:
            r["method"] = f"{r['method']} (failed: {r['error'][:60]})"
    return rows


def render(data: dict) -> str:
    args = data["args"]
    rows = case_rows(data)
    columns = [
        ("method", "what", ""),
        ("vocab", "V", ""),
        ("steps", "steps", ""),
        ("batch", "B", ""),
        ("length", "L", ""),
        ("before_s", "before s", ".4g"),
        ("after_s", "after s", ".4g"),
        ("speedup", "speedup", ".2f"),
        ("outside_network_before", "outside net. before", ".0%"),
        ("outside_network_after", "outside net. after", ".0%"),
        ("identical", "same output", ""),
    ]
    parts = []
    if rows:
        parts.append(
            f"{args['size']} model on {data['machine']['device']}, median of {args['repeats']} runs each; before = "
            "the reference code kept in `bench/profile_step.py`, after = the package. `outside net.` = share of the "
            "sampler's time not spent in network calls (ancestral/confidence). `same output`: the same generator "
            "gives the same tokens (the training step: the same loss, to 1e-3; it is timed at learning rate 0, with "
            "AdamW, so every step sees the same weights).\n\n" + markdown_table(rows, columns)
        )
    for record in ok(data.get("train_profile", [])):
        kernels = record["by"] == "self_device_time_total"
        what = "kernels" if kernels else "operators"
        times = (
            f" ({record['wall_ms_per_step']:.1f} ms wall per step, {record['busy_ms_per_step']:.1f} ms in {what})"
            if "wall_ms_per_step" in record
            else ""
        )
        top = [dict(op, op=f"`{op['op'][:120]}`") for op in record["top"][: 12 if kernels else 8]]
        columns = [
            ("op", what[:-1], ""),
            ("ms_per_step", "ms/step", ".2f"),
            ("share", "share", ".0%"),
            ("calls_per_step", "calls/step", ".0f"),
        ]
        parts.append(
            f"Training step ({train_setting(args)}), top {what} by {record['by'].replace('_', ' ')}{times}:\n\n"
            + markdown_table(top, columns)
        )
        if record.get("categories"):
            parts.append(f"{kernel_kinds(record)}.")
    return "\n\n".join(parts)


def train_setting(args: dict) -> str:
    setting = f"{args['size']}, B={args['train_batch']}, L={args['length']}"
    setting += ", compiled" if args.get("train_compile") else ""
    if args.get("train_attention", "auto") != "auto":
        setting += f", attention {args['train_attention']}"
    return setting


def kernel_kinds(record: dict) -> str:
    kinds = sorted(record["categories"].items(), key=lambda kv: -kv[1])
    return (
        "Kernel time by kind, ms per step (`kernel_category` in `bench/profile_step.py`): "
        + ", ".join(f"{kind} {ms:.1f}" for kind, ms in kinds)
    )


def summary(data: dict) -> str:
    """The speedups, one column per vocabulary; without cases (a training profile only), the step's wall and busy
    time and its kernel time by kind."""
    parts, rows = [], ok(case_rows(data))
    vocabs = sorted({r["vocab"] for r in rows})
    if rows:
        table = {}
        for r in rows:
            row = table.setdefault(r["method"], {"method": r["method"], "identical": True})
            row[f"speedup_{r['vocab']}"] = r["speedup"]
            row["identical"] = row["identical"] and r["identical"]
        columns = [("method", "what", "")]
        columns += [(f"speedup_{v}", f"speedup, V={v}", ".2f") for v in vocabs]
        parts.append(markdown_table(table.values(), columns + [("identical", "same output", "")]))
    for record in [] if rows else ok(data.get("train_profile", [])):  # the cases say enough
        line = (
            f"Training step ({train_setting(data['args'])}): {record['wall_ms_per_step']:.1f} ms wall per step, "
            f"{record['busy_ms_per_step']:.1f} ms busy"
        )
        parts.append(line + (f". {kernel_kinds(record)}." if record.get("categories") else "."))
    return "\n\n".join(parts)


BENCH = Benchmark("profile", "Fast path: before/after", render=render, summary=summary, stem=stem)


def main(args: ProfileArgs) -> dict:
    if args.train_attention not in ATTENTION_BACKENDS:
        raise SystemExit(
            f"--train-attention {args.train_attention!r}: choose one of {', '.join(ATTENTION_BACKENDS)}"
        )
    return run(BENCH, args, lambda results, device: measure(args, results, device))


if __name__ == "__main__":
    main(parse())
