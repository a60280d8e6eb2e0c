"""`textdiffusion caption`: describe images with the shipped captioner or a model trained by
`textdiffusion train --task caption`."""

from __future__ import annotations

import dataclasses
import sys

import tyro

from textdiffusion.cli.generate import SamplingArgs


@dataclasses.dataclass
class CaptionArgs(SamplingArgs):
    images: tyro.conf.Positional[tuple[str, ...]] = ()
    """Image files (JPEG, PNG, ...) to describe."""
    model: str = "captioner"
    """Shipped model name, or a folder or Hugging Face hub id of a model trained with --task caption."""
    candidates: int | None = None
    """Captions sampled per image, the consensus (highest mean chrF to the others) printed (default: the model's)."""
    batch_size: int = 16
    """Captions sampled together."""


def caption(args: CaptionArgs) -> None:
    """Image captioning: one caption per image (after its path when there are several). An image that cannot be
    read gets a one-line error on stderr and the others are still captioned (exit status 1)."""
    import json

    import torch

    from textdiffusion.cli.common import CLIError
    from textdiffusion.cli.generate import _load, _sampling
    from textdiffusion.cli.show import RefinementView
    from textdiffusion.pipelines import InputError
    from textdiffusion.tasks.caption.pipeline import CaptionPipeline

    if not args.images:
        raise CLIError("give one or more image files to describe")
    pipe = _load(CaptionPipeline, args)
    readable, pixels, failed = [], [], []
    for path in args.images:
        try:
            pixels.append(pipe.pixels(path))
            readable.append(path)
        except InputError as exc:
            failed.append(path)
            print(f"error: {exc}", file=sys.stderr)
    if not readable:
        raise CLIError(f"none of the {len(args.images)} image(s) could be read")
    view = RefinementView(pipe.tokenizer, enabled=args.show)
    try:
        with view:
            out = pipe(
                torch.cat(pixels),
                batch_size=args.batch_size,
                candidates=args.candidates,
                seed=args.seed,
                callback=view.callback,
                **_sampling(args),
            )
    except InputError as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        record = {"images": readable, "texts": out.texts, "seconds": out.seconds}
        print(json.dumps({**record, "failed": failed, "network_calls": out.network_calls}))
    elif len(args.images) == 1:
        print(out.texts[0])
    else:
        for path, text in zip(readable, out.texts):
            print(f"{path}\t{text}")
    if failed:
        raise SystemExit(1)
