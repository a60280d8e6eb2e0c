"""Converters: published checkpoints in their own layouts -> folders this package loads, samples and fine-tunes.

`hf` reads a raw transformers folder on the fly (load_pretrained and --init-from take one as it is); the other
modules, one per source format, write a converted folder (`textdiffusion convert SRC OUT --from NAME`).
"""

from __future__ import annotations

FORMATS = ("mdlm", "bd3lm", "duo", "sedd", "llada", "dream")


def convert(src, out, *, source: str, tokenizer: str | None = None):
    """Convert the checkpoint folder `src` in the `source` layout into a loadable folder `out`; returns `out`."""
    import importlib

    if source not in FORMATS:
        raise ValueError(f"--from must be one of {', '.join(FORMATS)}, got {source!r}")
    module = importlib.import_module(f"textdiffusion.convert.{source}")
    return module.convert(src, out, tokenizer=tokenizer)
