"""`textdiffusion eval`: likelihood of a text file under a model (ELBO bound for diffusion, exact for AR)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class EvalArgs:
    data: tuple[str, ...]
    """Text files to score (concatenated)."""
    model: str = "shakespeare-char"
    """Shipped model name, local folder or Hugging Face hub id."""
    samples: int = 32
    """Monte Carlo samples of the masked-token count per window (more: smaller standard error)."""
    batch_size: int = 32
    """Windows per forward pass."""
    max_windows: int | None = None
    """Score only the first N context windows (quick checks)."""
    seed: int = 0
    """Seed of the Monte Carlo draws."""
    steps: tuple[int, ...] = ()
    """Also bound the NLL of the ancestral (and cached) sampler of a masked diffusion model at each of these
    numbers of refinement steps, and time one sample with it: fewer steps are faster and the bound looser."""
    device: str = "auto"
    """cpu, cuda or auto."""
    json: bool = False
    """Print one JSON object."""


def evaluate(args: EvalArgs) -> None:
    """Bits per character and perplexity bound of a model on text files."""
    import json

    from textdiffusion.checkpoint import CheckpointError, load_pretrained
    from textdiffusion.cli.common import CLIError, resolve_device
    from textdiffusion.data import DataError, read_documents
    from textdiffusion.evaluation import evaluate_text

    if any(steps < 1 for steps in args.steps):
        raise CLIError(f"--steps must be positive, got {' '.join(map(str, args.steps))}")
    try:
        text = "\n".join(read_documents(args.data))
        pretrained = load_pretrained(args.model, device=resolve_device(args.device))
        results = [
            evaluate_text(
                pretrained,
                text,
                samples=args.samples,
                batch_size=args.batch_size,
                seed=args.seed,
                max_windows=args.max_windows,
                steps=steps,
            )
            for steps in [*args.steps, None]
        ]
        costs = []
        if args.steps:
            from textdiffusion.tasks.pipeline import DiffusionPipeline

            pipe = DiffusionPipeline(pretrained)
            costs = [sampling_cost(pipe, steps, seed=args.seed) for steps in args.steps]
    except (CheckpointError, DataError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    result = results[-1]
    report = {"model": str(args.model), "data": list(args.data), **result.to_dict()}
    if args.steps:
        report["by_steps"] = [{**r.to_dict(), **c} for r, c in zip(results[:-1], costs)]
    if args.json:
        print(json.dumps(report))
        return
    kind = "exact NLL" if result.exact else f"ELBO bound, {result.samples} samples/window"
    print(f"{args.model} on {', '.join(args.data)} ({kind}):")
    print(f"  nll/token       {result.nll_per_token:.4f} nats")
    print(f"  perplexity      {result.perplexity_bound:.3f}")
    print(f"  bits/char       {result.bits_per_char:.4f} ± {result.stderr_bits_per_char:.4f}")
    print(f"  scored          {result.n_chars:,} characters, {result.n_tokens:,} tokens")
    if args.steps:
        length = pretrained.model.config.max_len
        print(
            "  by refinement steps: the bound of the ancestral/cached sampler (bits/char), and the time and network\n"
            f"  calls of one {length}-token sample with it (one run)"
        )
        for r, c in zip(results, [*costs, None]):
            label = "continuous" if r.steps is None else f"{r.steps} steps"
            cost = (
                ""
                if c is None
                else f"  {c['sample_seconds']:8.2f} s  {c['network_calls']:4d} calls"
            )
            print(f"    {label:>12}  {r.bits_per_char:.4f} ± {r.stderr_bits_per_char:.4f}{cost}")


def sampling_cost(pipe, steps: int, *, seed: int) -> dict:
    """Seconds and network calls of one full-context sample with the sampler the T-step bound is for."""
    import torch

    # the cached sampler draws from the same distribution as the ancestral one with fewer network calls; it needs
    # a model that ignores t
    sampler = "ancestral" if pipe.model.config.time_conditioning else "cached"
    sampler = "block" if pipe.model.config.block_size else sampler
    out = pipe.sample(
        (1, pipe.max_len),
        steps=steps,
        sampler=sampler,
        temperature=1.0,
        top_p=1.0,
        generator=torch.Generator().manual_seed(seed),
    )
    return {"sample_seconds": out.seconds, "network_calls": out.network_calls, "sampler": sampler}
