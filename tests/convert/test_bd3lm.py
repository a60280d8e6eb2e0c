"""BD3LM: MDLM's layout plus block_size and the sampling_eps buffers; the converted network attends block-causally."""

from __future__ import annotations

import pytest
import torch
from dit_layout import mdlm_config, reference_logits, sample_and_finetune, write_dit

from textdiffusion.checkpoint import load_pretrained
from textdiffusion.cli import main


def test_bd3lm_converts_with_block_causal_attention(tmp_path, corpus_file):
    def config(vocab):
        return mdlm_config(vocab, block_size=4, attn_backend="sdpa", cross_attn=True) | {
            "model_type": "bd3lm"
        }

    extra = {"sampling_eps_min": torch.tensor(1e-3), "sampling_eps_max": torch.tensor(0.999)}
    src, tokenizer, W = write_dit(
        tmp_path / "bd3lm", config, extra={f"backbone.{k}": v for k, v in extra.items()}
    )
    out = tmp_path / "out"
    main(["convert", str(src), str(out), "--from", "bd3lm", "--tokenizer", str(tokenizer)])
    pretrained = load_pretrained(out)
    rows = W["vocab_embed.embedding"].shape[0]
    ids = torch.randint(0, rows - 1, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = pretrained.model(ids, torch.tensor([0.5, 0.5]))
    expected = reference_logits(W, ids, torch.zeros(2), block_size=4)
    torch.testing.assert_close(got[..., : rows - 1], expected[..., : rows - 1], atol=1e-5, rtol=0)
    # the first block does not see the second
    changed = ids.clone()
    changed[:, 4:] = 0
    with torch.no_grad():
        torch.testing.assert_close(pretrained.model(changed)[:, :4], got[:, :4])
    sample_and_finetune(out, corpus_file, tmp_path)


def test_bd3lm_needs_a_block_size(tmp_path, capsys):
    src, tokenizer, _ = write_dit(tmp_path / "mdlm", mdlm_config)
    with pytest.raises(SystemExit):
        main(
            [
                "convert",
                str(src),
                str(tmp_path / "o"),
                "--from",
                "bd3lm",
                "--tokenizer",
                str(tokenizer),
            ]
        )
    err = capsys.readouterr().err
    assert "is not a bd3lm checkpoint" in err and "--from mdlm" in err
