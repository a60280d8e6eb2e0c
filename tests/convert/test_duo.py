"""DUO: MDLM's DiT layout with a time-conditioned adaLN and plain x0 logits; converted to the uniform process."""

from __future__ import annotations

import pytest
import torch
from dit_layout import (
    loglinear_sigma,
    mdlm_config,
    reference_logits,
    sample_and_finetune,
    write_dit,
)

from textdiffusion.checkpoint import load_pretrained
from textdiffusion.cli import main


def test_duo_converts_with_live_sigma(tmp_path, corpus_file):
    def config(vocab):
        return mdlm_config(vocab) | {"model_type": "duo", "time_conditioning": True}

    src, tokenizer, W = write_dit(tmp_path / "duo", config)
    out = tmp_path / "out"
    main(["convert", str(src), str(out), "--from", "duo", "--tokenizer", str(tokenizer)])
    pretrained = load_pretrained(out)
    assert pretrained.config.process.name == "uniform" and pretrained.config.model.time_conditioning
    rows = W["vocab_embed.embedding"].shape[0]
    ids = torch.randint(0, rows - 1, (2, 10), generator=torch.Generator().manual_seed(2))
    t = torch.tensor([0.2, 0.8])
    with torch.no_grad():
        got = pretrained.model(ids, t)
    expected = reference_logits(W, ids, loglinear_sigma(t))  # sigma = -log alpha(t)
    torch.testing.assert_close(got[..., :rows], expected, atol=1e-5, rtol=0)
    sample_and_finetune(out, corpus_file, tmp_path)


def test_duo_refuses_an_mdlm(tmp_path):
    from textdiffusion.convert import convert
    from textdiffusion.convert.common import ConvertError

    src, tokenizer, _ = write_dit(tmp_path / "mdlm", mdlm_config)
    with pytest.raises(ConvertError, match=r"config\.json is not a duo checkpoint.*--from mdlm"):
        convert(src, tmp_path / "o", source="duo", tokenizer=str(tokenizer))
