"""`textdiffusion caption`: describe images with a model trained by `textdiffusion train --task caption`."""

from __future__ import annotations

import dataclasses

import tyro

from textdiffusion.cli.generate import SamplingArgs


@dataclasses.dataclass
class CaptionArgs(SamplingArgs):
    images: tyro.conf.Positional[tuple[str, ...]] = ()
    """Image files (JPEG, PNG, ...) to describe."""
    model: str = ""
    """A model trained with `textdiffusion train --task caption` (local folder or Hugging Face hub id)."""
    batch_size: int = 16
    """Images captioned together."""


def caption(args: CaptionArgs) -> None:
    """Image captioning: one caption per image (after its path when there are several)."""
    import json

    from textdiffusion.cli.common import CLIError
    from textdiffusion.cli.generate import _load, _sampling
    from textdiffusion.cli.show import RefinementView
    from textdiffusion.pipelines import InputError
    from textdiffusion.tasks.caption.pipeline import CaptionPipeline

    if not args.model:
        raise CLIError(
            "--model is required: a folder or hub id of a model trained with --task caption"
        )
    if not args.images:
        raise CLIError("give one or more image files to describe")
    pipe = _load(CaptionPipeline, args)
    view = RefinementView(pipe.tokenizer, enabled=args.show)
    try:
        with view:
            out = pipe(
                list(args.images),
                batch_size=args.batch_size,
                seed=args.seed,
                callback=view.callback,
                **_sampling(args),
            )
    except InputError as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        print(
            json.dumps(
                {
                    "images": list(args.images),
                    "texts": out.texts,
                    "seconds": out.seconds,
                    "network_calls": out.network_calls,
                }
            )
        )
    elif len(args.images) == 1:
        print(out.texts[0])
    else:
        for path, text in zip(args.images, out.texts):
            print(f"{path}\t{text}")
