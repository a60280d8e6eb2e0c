"""DUO (Sahoo et al. 2025, "The Diffusion Duality", s-sahoo/duo): uniform-state diffusion with MDLM's DiT (the
same module names, `backbone.` prefix, 50258 rows: the code appends a mask row even though the uniform process never
uses it) and a time-conditioned adaLN.

DUO's `mean` parameterization gives plain x0 logits; its noise level is sigma = -log(alpha(t)) with the log-linear
alpha(t) = 1 - (1 - 1e-3) t (`_sigma_from_alphat`, `LogLinear`). The converted model uses this package's uniform
process, whose noise excludes the special tokens (DUO's spreads over all 50258 ids, the unused mask row included).
The published checkpoint's config.json is assumed to carry MDLM's flat keys (model_type "duo");
../shared/reference/checkpoint-formats.md does not list it.
"""

from __future__ import annotations

from pathlib import Path

from textdiffusion.convert.common import expect, read_config
from textdiffusion.convert.dit import write
from textdiffusion.convert.mdlm import source


def convert(src: str | Path, out: str | Path, *, tokenizer: str | None = None) -> Path:
    src = Path(src)
    config = read_config(src)
    expect(
        src,
        config,
        "duo",
        'a DUO config.json (model_type "duo" and MDLM\'s hidden_dim, n_blocks, ...)',
    )
    dit = source(src, config, name="duo", sigma="loglinear", output="mean")
    dit.process = "uniform"
    return write(src, Path(out), dit, tokenizer=tokenizer)
