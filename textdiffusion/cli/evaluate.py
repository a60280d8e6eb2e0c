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

    try:
        text = "\n".join(read_documents(args.data))
        pretrained = load_pretrained(args.model, device=resolve_device(args.device))
        result = evaluate_text(
            pretrained,
            text,
            samples=args.samples,
            batch_size=args.batch_size,
            seed=args.seed,
            max_windows=args.max_windows,
        )
    except (CheckpointError, DataError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    report = {"model": str(args.model), "data": list(args.data), **result.to_dict()}
    if args.json:
        print(json.dumps(report))
        return
    kind = "exact NLL" if result.exact else f"ELBO bound, {result.samples} samples/window"
    print(f"{args.model} on {', '.join(args.data)} ({kind}):")
    print(f"  nll/token       {result.nll_per_token:.4f} nats")
    print(f"  perplexity      {result.perplexity_bound:.3f}")
    print(f"  bits/char       {result.bits_per_char:.4f} ± {result.stderr_bits_per_char:.4f}")
    print(f"  scored          {result.n_chars:,} characters, {result.n_tokens:,} tokens")
