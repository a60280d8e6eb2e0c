"""SEDD (Lou et al. 2024, louaaron/sedd-small and -medium): the DiT without a `backbone.` prefix (perhaps
`module.`), and the Hydra config as config.json: `tokens`, `model.{hidden_size, cond_dim, length, n_blocks, n_heads,
scale_by_sigma, dropout}`, `graph.type`, `noise.type`.

Only the absorbing graph (mask = the last id, `tokens`) and the log-linear noise are converted: the network reads
sigma(t) = -log(1 - (1 - eps) t) and its log-score output becomes x0 logits by dropping the mask entry (networks/dit.py
explains why). Layout: ../shared/reference/checkpoint-formats.md, section 2.2.
"""

from __future__ import annotations

from pathlib import Path

from textdiffusion.convert.common import ConvertError, expect, read_config
from textdiffusion.convert.dit import DiTSource, need, write


def convert(src: str | Path, out: str | Path, *, tokenizer: str | None = None) -> Path:
    src = Path(src)
    config = read_config(src)
    expect(src, config, "sedd", "a SEDD config.json (tokens, model.*, graph.type, noise.type)")
    model = config["model"]
    need(
        model,
        ("hidden_size", "cond_dim", "length", "n_blocks", "n_heads"),
        src=src,
        name="sedd model",
    )
    graph = (config.get("graph") or {}).get("type")
    if graph != "absorb":
        raise ConvertError(
            f"{src / 'config.json'}: graph.type {graph!r}; expected absorb (the masked process)"
        )
    noise = config.get("noise") or {}
    if noise.get("type", "loglinear") != "loglinear":
        raise ConvertError(
            f"{src / 'config.json'}: noise.type {noise.get('type')!r}; expected loglinear"
        )
    tokens = int(config.get("tokens", 50257))
    dit = DiTSource(
        name="sedd",
        vocab_size=tokens + 1,  # the absorbing state after the tokens
        dim=int(model["hidden_size"]),
        n_layers=int(model["n_blocks"]),
        n_heads=int(model["n_heads"]),
        max_len=int(model["length"]),
        dropout=float(model.get("dropout", 0.0)),
        settings={
            "cond_dim": int(model["cond_dim"]),
            "sigma": "loglinear",
            "eps": float(noise.get("eps", 1e-3)),
            "output": "sedd",
            "block_size": 0,
        },
    )
    return write(src, Path(out), dit, tokenizer=tokenizer)
