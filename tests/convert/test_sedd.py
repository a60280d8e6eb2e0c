"""SEDD: the DiT without a backbone prefix and the Hydra config; live sigma, log-score output read as x0 logits."""

from __future__ import annotations

import pytest
import torch
from dit_layout import (
    BLOCKS,
    COND,
    DIM,
    HEADS,
    LENGTH,
    loglinear_sigma,
    reference_logits,
    sample_and_finetune,
    write_dit,
)

from textdiffusion.checkpoint import load_pretrained
from textdiffusion.cli import main


def sedd_config(vocab, graph="absorb"):
    model = dict(name="small", hidden_size=DIM, cond_dim=COND, length=LENGTH, n_blocks=BLOCKS)
    model |= dict(n_heads=HEADS, scale_by_sigma=True, dropout=0.1)
    return dict(tokens=vocab - 1, model=model, graph={"type": graph}, noise={"type": "loglinear"})


def test_sedd_converts_and_matches_the_score_model(tmp_path, corpus_file):
    src, tokenizer, W = write_dit(tmp_path / "sedd", sedd_config, prefix="module.")
    out = tmp_path / "out"
    main(["convert", str(src), str(out), "--from", "sedd", "--tokenizer", str(tokenizer)])
    pretrained = load_pretrained(out)
    rows = W["vocab_embed.embedding"].shape[0]
    mask = rows - 1
    ids = torch.randint(0, mask, (2, 10), generator=torch.Generator().manual_seed(3))
    ids[:, 1::2] = mask
    t = torch.tensor([0.4, 0.7])
    with torch.no_grad():
        got = pretrained.model(ids, t)[..., :mask].log_softmax(-1)  # over the checkpoint's tokens
    # SEDD's log score at a masked position, with its sigma shift and scatter: its softmax over the tokens is
    # p(x0 | x_t), the same distribution as our x0 logits
    sigma = loglinear_sigma(t)
    score = (
        reference_logits(W, ids, sigma)
        - torch.log(torch.expm1(sigma))[:, None, None]
        - torch.log(torch.tensor(rows - 1.0))
    )
    expected = score[..., :mask].log_softmax(-1)
    masked = ids == mask
    torch.testing.assert_close(got[masked], expected[masked], atol=1e-5, rtol=0)
    sample_and_finetune(out, corpus_file, tmp_path)


def test_sedd_uniform_graph_is_refused(tmp_path):
    from textdiffusion.convert import convert
    from textdiffusion.convert.common import ConvertError

    src, tokenizer, _ = write_dit(
        tmp_path / "sedd", lambda v: sedd_config(v, graph="uniform"), prefix=""
    )
    with pytest.raises(ConvertError, match=r"config\.json: graph\.type 'uniform'; expected absorb"):
        convert(src, tmp_path / "o", source="sedd", tokenizer=str(tokenizer))
