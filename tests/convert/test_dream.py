"""Dream: Qwen2 weights with a remote-code config.json; converted into transformers' Qwen2 run bidirectionally with
Dream's logit shift; logits match Qwen2ForCausalLM with full attention, shifted one position, to 1e-5."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from dit_layout import sample_and_finetune  # noqa: E402
from hf_folders import bytelevel_tokenizer, qwen2_config, write_json  # noqa: E402

from textdiffusion.checkpoint import load_pretrained  # noqa: E402
from textdiffusion.cli import main  # noqa: E402


@pytest.fixture()
def dream(tmp_path):
    tok = bytelevel_tokenizer(specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|mask|>"))
    torch.manual_seed(0)
    ref = transformers.Qwen2ForCausalLM(qwen2_config(tok.get_vocab_size() + 2)).eval()
    folder = tmp_path / "dream"
    ref.save_pretrained(folder)
    config = ref.config.to_dict()
    config.update(
        model_type="Dream",
        architectures=["DreamModel"],
        auto_map={"AutoModel": "modeling_dream.DreamModel"},
        mask_token_id=tok.token_to_id("<|mask|>"),
    )
    write_json(folder / "config.json", config)
    tok.save(str(folder / "tokenizer.json"))
    return folder, ref, tok


def test_dream_matches_shifted_bidirectional_qwen2(dream, tmp_path, corpus_file):
    src, ref, tok = dream
    out = tmp_path / "out"
    main(["convert", str(src), str(out), "--from", "dream"])
    pretrained = load_pretrained(out)
    assert pretrained.tokenizer.mask_id == tok.token_to_id("<|mask|>")
    assert pretrained.config.model.logit_shift == 1
    ids = torch.tensor([tok.encode("the cat sat on the mat").ids])
    L = ids.shape[1]
    with torch.no_grad():
        expected = ref(
            input_ids=ids, attention_mask=torch.ones(1, 1, L, L, dtype=torch.bool)
        ).logits
        got = pretrained.model(ids)
    expected = torch.cat(
        [expected[:, :1], expected[:, :-1]], dim=1
    )  # Dream reads position i off i - 1
    V = tok.get_vocab_size()
    torch.testing.assert_close(got[..., :V], expected[..., :V], atol=1e-5, rtol=0)
    sample_and_finetune(out, corpus_file, tmp_path)


def test_dream_wrong_from(dream, tmp_path):
    from textdiffusion.convert import convert
    from textdiffusion.convert.common import ConvertError

    src, _, _ = dream
    with pytest.raises(ConvertError, match=r"config\.json is not a llada checkpoint.*--from dream"):
        convert(src, tmp_path / "o", source="llada")
