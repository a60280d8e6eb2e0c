"""BD3LM (Arriola et al. 2025, kuleshov-group/bd3lm-owt-block_size{4,8,16}): MDLM's DiT and config plus
`block_size`; the weights (and `sampling_eps_min/max` buffers, dropped) are under `backbone.`.

The converted network attends block-causally (networks/dit.py): a query in block b sees blocks <= b, BD3LM's
p(x_b | x_<b) when the earlier blocks are clean. Layout: ../shared/reference/checkpoint-formats.md, section 2.3.
"""

from __future__ import annotations

from pathlib import Path

from textdiffusion.convert.common import ConvertError, expect, read_config
from textdiffusion.convert.dit import write
from textdiffusion.convert.mdlm import source


def convert(src: str | Path, out: str | Path, *, tokenizer: str | None = None) -> Path:
    src = Path(src)
    config = read_config(src)
    expect(src, config, "bd3lm", "a BD3LM config.json (MDLM's keys and block_size)")
    block = int(config.get("block_size", 0))
    if block <= 0:
        raise ConvertError(f"{src / 'config.json'}: block_size must be positive, got {block}")
    return write(
        src, Path(out), source(src, config, name="bd3lm", block_size=block), tokenizer=tokenizer
    )
