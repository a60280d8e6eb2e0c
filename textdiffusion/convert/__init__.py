"""Converters: published checkpoints in their own layouts -> folders this package loads, samples and fine-tunes.

`hf` reads a raw transformers folder on the fly (load_pretrained and --init-from take one as it is); the other
modules, one per source format, write a converted folder (`textdiffusion convert SRC OUT --from NAME`).
"""

from __future__ import annotations

FORMATS = ("mdlm", "bd3lm", "duo", "sedd", "llada", "dream")
