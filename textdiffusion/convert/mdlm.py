"""MDLM (Sahoo et al. 2024, kuleshov-group/mdlm-owt): a DiT with `backbone.`-prefixed weights and a flat
config.json (hidden_dim, n_blocks, n_heads, cond_dim, model_length, vocab_size = 50258, time_conditioning false).

SUBS parameterization (the mask logit at -inf), masked process with the log-linear schedule; with
`time_conditioning` false the adaLN reads sigma = 0 (MDLM's `_process_sigma`). Layout:
../shared/reference/checkpoint-formats.md, section 2.1.
"""

from __future__ import annotations

from pathlib import Path

from textdiffusion.convert.common import expect, read_config
from textdiffusion.convert.dit import DiTSource, need, write

KEYS = ("hidden_dim", "n_blocks", "n_heads", "cond_dim", "model_length", "vocab_size")


def source(src: Path, config: dict, *, name: str = "mdlm", **settings) -> DiTSource:
    """The DiT of an MDLM-style flat config (shared with bd3lm and duo)."""
    need(config, KEYS, src=src, name=name)
    timed = bool(config.get("time_conditioning", False))
    return DiTSource(
        name=name,
        vocab_size=int(config["vocab_size"]),
        dim=int(config["hidden_dim"]),
        n_layers=int(config["n_blocks"]),
        n_heads=int(config["n_heads"]),
        max_len=int(config["model_length"]),
        dropout=float(config.get("dropout", 0.0)),
        settings={
            "cond_dim": int(config["cond_dim"]),
            "sigma": "loglinear" if timed else "zero",
            "eps": 1e-3,
            "output": "subs",
            "block_size": 0,
            **settings,
        },
    )


def convert(src: str | Path, out: str | Path, *, tokenizer: str | None = None) -> Path:
    src = Path(src)
    config = read_config(src)
    expect(
        src, config, "mdlm", "an MDLM config.json (hidden_dim, n_blocks, cond_dim, model_length)"
    )
    return write(src, Path(out), source(src, config), tokenizer=tokenizer)
