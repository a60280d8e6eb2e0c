"""`textdiffusion generate` and `textdiffusion infill`."""

from __future__ import annotations

import dataclasses
import sys

import tyro

from textdiffusion.config import RemaskSchedule, SamplerName, UnmaskOrder


@dataclasses.dataclass
class SamplingArgs:
    model: str = "shakespeare-char"
    """Shipped model name, local folder or Hugging Face hub id."""
    steps: int | None = None
    """Refinement steps (default: the model's saved setting)."""
    sampler: SamplerName | None = None
    """ancestral, cached, confidence, remask or block (default: the model's saved setting)."""
    temperature: float | None = None
    """Softmax temperature."""
    top_p: float | None = None
    """Nucleus sampling mass."""
    threshold: float | None = None
    """confidence sampler: reveal every token above this probability."""
    order_temperature: float | None = None
    """confidence sampler: sample the unmasking order, revealing by confidence^(1/T) (0: most confident first)."""
    order: UnmaskOrder | None = None
    """confidence sampler: reveal by confidence, or left to right within each run of masks (left; the default of a
    variable-length blank)."""
    remask_schedule: RemaskSchedule | None = None
    """remask sampler (ReMDM): cap, rescale or loop."""
    eta: float | None = None
    """remask sampler: the remasking strength."""
    seed: int = 0
    """Random seed: the same seed gives the same text."""
    device: str = "auto"
    """cpu, cuda or auto."""
    show: bool = False
    """Animate the refinement step by step in the terminal."""
    json: bool = False
    """Print one JSON object instead of plain text."""


@dataclasses.dataclass
class GenerateArgs(SamplingArgs):
    n: int = 4
    """Number of texts."""
    length: int | None = None
    """Tokens per text (default: the model's context)."""
    prompt: str | None = None
    """Text to complete: kept at the start, the rest is generated."""


@dataclasses.dataclass
class InfillArgs(SamplingArgs):
    text: tyro.conf.Positional[str] = ""
    """Text with blanks: each run of three or more underscores (___) is filled."""
    blank_length: int | None = None
    """Tokens per blank (default: chosen by the model: in one pass by a model trained with --max-blank K, from
    candidate lengths by ELBO otherwise)."""
    max_blank_length: int | None = None
    """Longest fill per blank, in tokens (default: the model's K, or the longest candidate); at most K."""


def _load(pipeline_cls, args: SamplingArgs):
    from textdiffusion.checkpoint import CheckpointError
    from textdiffusion.cli.common import CLIError, resolve_device
    from textdiffusion.pipelines import InputError

    try:
        return pipeline_cls.from_pretrained(args.model, device=resolve_device(args.device))
    except (CheckpointError, InputError, ValueError) as exc:
        raise CLIError(str(exc)) from None


def _sampling(args: SamplingArgs) -> dict:
    return dict(
        steps=args.steps,
        sampler=args.sampler,
        temperature=args.temperature,
        top_p=args.top_p,
        threshold=args.threshold,
        **{
            name: value
            for name in ("order_temperature", "order", "remask_schedule", "eta")
            if (value := getattr(args, name)) is not None
        },
    )


def _run(pipeline_cls, args: SamplingArgs, **call):
    """Load the pipeline, run it with the sampling flags (watching the refinement with --show), report warnings."""
    from textdiffusion.cli.common import CLIError
    from textdiffusion.cli.show import RefinementView
    from textdiffusion.pipelines import InputError

    pipe = _load(pipeline_cls, args)
    view = RefinementView(pipe.tokenizer, enabled=args.show)
    try:
        with view:
            out = pipe(seed=args.seed, callback=view.callback, **call, **_sampling(args))
    except (InputError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    for message in out.warnings:
        print(f"warning: {message}", file=sys.stderr)
    return out


def generate(args: GenerateArgs) -> None:
    """Generate text from noise (or complete a --prompt) with a diffusion model."""
    import json

    from textdiffusion.pipelines import GenerationPipeline

    out = _run(GenerationPipeline, args, n=args.n, length=args.length, prompt=args.prompt)
    if args.json:
        report = {"texts": out.texts, "seconds": out.seconds, "network_calls": out.network_calls}
        print(json.dumps(report))
        return
    for i, text in enumerate(out.texts):
        print(f"--- sample {i} ---\n{text}")
    summary = f"{len(out.texts)} x {out.ids.shape[1]} tokens in {out.seconds:.2f} s, {out.network_calls} network calls"
    print(f"[{summary}]", file=sys.stderr)


def infill(args: InfillArgs) -> None:
    """Fill the blanks (___) of a text; everything outside the blanks is kept exactly."""
    import json

    from textdiffusion.pipelines import InfillPipeline

    out = _run(
        InfillPipeline,
        args,
        text=args.text,
        blank_length=args.blank_length,
        max_blank_length=args.max_blank_length,
    )
    if args.json:
        print(json.dumps({"text": out.text, "fills": out.fills, "lengths": out.lengths}))
    else:
        print(out.text)
