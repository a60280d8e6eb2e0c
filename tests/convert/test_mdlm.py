"""MDLM: a tiny random checkpoint in kuleshov-group/mdlm-owt's layout converts, matches the reference DiT, samples
and fine-tunes; the wrong --from is refused naming the file."""

from __future__ import annotations

import pytest
import torch
from dit_layout import mdlm_config, reference_logits, sample_and_finetune, write_dit

from textdiffusion.checkpoint import load_pretrained
from textdiffusion.cli import main


@pytest.fixture()
def mdlm(tmp_path):
    return write_dit(tmp_path / "mdlm-owt", mdlm_config)


def test_mdlm_converts_and_matches_reference(mdlm, tmp_path, corpus_file):
    src, tokenizer, W = mdlm
    out = tmp_path / "out"
    main(["convert", str(src), str(out), "--from", "mdlm", "--tokenizer", str(tokenizer)])
    pretrained = load_pretrained(out)
    rows = W["vocab_embed.embedding"].shape[0]
    assert pretrained.tokenizer.mask_id == rows - 1  # GPT-2's mask slot, 50257 for the real model
    ids = torch.randint(0, rows - 1, (2, 12), generator=torch.Generator().manual_seed(0))
    ids[:, ::3] = rows - 1  # some masked positions
    t = torch.tensor([0.3, 0.9])
    with torch.no_grad():
        got = pretrained.model(ids, t)
    expected = reference_logits(W, ids, torch.zeros(2))  # time_conditioning false: sigma = 0
    torch.testing.assert_close(got[..., : rows - 1], expected[..., : rows - 1], atol=1e-5, rtol=0)
    assert (got[..., rows - 1] <= -1e5).all()  # SUBS: never the mask
    sample_and_finetune(out, corpus_file, tmp_path)


def test_mdlm_refuses_other_layouts(mdlm, tmp_path, capsys):
    src, tokenizer, _ = mdlm
    with pytest.raises(SystemExit):
        main(
            [
                "convert",
                str(src),
                str(tmp_path / "o"),
                "--from",
                "sedd",
                "--tokenizer",
                str(tokenizer),
            ]
        )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "config.json is not a sedd checkpoint" in err and "--from mdlm" in err
    with pytest.raises(SystemExit):
        main(["convert", str(src), str(tmp_path / "o"), "--from", "mdlm"])  # no tokenizer
    assert "pass --tokenizer" in capsys.readouterr().err
