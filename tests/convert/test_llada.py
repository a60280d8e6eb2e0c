"""LLaDA: a tiny random checkpoint in the OLMo naming of GSAI-ML/LLaDA-8B converts into transformers' LLaMA run
bidirectionally; its logits match LlamaForCausalLM with full attention on the same weights to 1e-5 (float32)."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from dit_layout import sample_and_finetune  # noqa: E402
from hf_folders import llama_config, sentencepiece_tokenizer, write_json  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from textdiffusion.checkpoint import load_pretrained  # noqa: E402
from textdiffusion.cli import main  # noqa: E402

PADDING = 4  # LLaDA pads its embedding (126464 rows) past the tokenizer


def olmo_names(state):
    """LlamaForCausalLM names -> LLaDA's (model.transformer.*), written out from the layout notes."""
    block = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "q_proj",
        "self_attn.k_proj": "k_proj",
        "self_attn.v_proj": "v_proj",
        "self_attn.o_proj": "attn_out",
        "post_attention_layernorm": "ff_norm",
        "mlp.gate_proj": "ff_proj",
        "mlp.up_proj": "up_proj",
        "mlp.down_proj": "ff_out",
    }
    out = {}
    for name, tensor in state.items():
        if name == "model.embed_tokens.weight":
            out["model.transformer.wte.weight"] = tensor
        elif name == "model.norm.weight":
            out["model.transformer.ln_f.weight"] = tensor
        elif name == "lm_head.weight":
            out["model.transformer.ff_out.weight"] = tensor
        else:
            _, _, i, rest = name.split(".", 3)
            part, kind = rest.rsplit(".", 1)
            out[f"model.transformer.blocks.{i}.{block[part]}.{kind}"] = tensor
    return out


@pytest.fixture()
def llada(tmp_path):
    tok = sentencepiece_tokenizer(extra=("<|eot_id|>", "<|mdm_mask|>"))
    rows = tok.get_vocab_size() + PADDING
    torch.manual_seed(0)
    ref = transformers.LlamaForCausalLM(llama_config(rows, rope_theta=500000.0)).eval()
    folder = tmp_path / "llada"
    folder.mkdir()
    save_file(
        {k: v.contiguous() for k, v in olmo_names(ref.state_dict()).items()},
        str(folder / "model.safetensors"),
    )
    c = ref.config
    write_json(
        folder / "config.json",
        dict(
            architectures=["LLaDAModelLM"],
            auto_map={"AutoModel": "modeling_llada.LLaDAModelLM"},
            block_type="llama",
            d_model=c.hidden_size,
            n_layers=c.num_hidden_layers,
            n_heads=c.num_attention_heads,
            n_kv_heads=c.num_key_value_heads,
            mlp_hidden_size=c.intermediate_size,
            activation_type="silu",
            layer_norm_type="rms",
            rms_norm_eps=c.rms_norm_eps,
            rope=True,
            rope_theta=500000.0,
            include_bias=False,
            include_qkv_bias=False,
            embedding_size=rows,
            vocab_size=tok.get_vocab_size(),
            mask_token_id=tok.token_to_id("<|mdm_mask|>"),
            max_sequence_length=c.max_position_embeddings,
            weight_tying=False,
        ),
    )
    tok.save(str(folder / "tokenizer.json"))
    return folder, ref, tok


def test_llada_matches_bidirectional_llama(llada, tmp_path, corpus_file):
    src, ref, tok = llada
    out = tmp_path / "out"
    main(["convert", str(src), str(out), "--from", "llada"])
    pretrained = load_pretrained(out)
    assert pretrained.tokenizer.mask_id == tok.token_to_id("<|mdm_mask|>")  # LLaDA's own mask id
    assert pretrained.config.model.logit_shift == 0
    ids = torch.tensor([tok.encode("the cat sat on the mat and the dog ran").ids])
    ids[0, 2] = pretrained.tokenizer.mask_id
    L = ids.shape[1]
    with torch.no_grad():
        expected = ref(
            input_ids=ids, attention_mask=torch.ones(1, 1, L, L, dtype=torch.bool)
        ).logits
        got = pretrained.model(ids)
    V = tok.get_vocab_size()
    torch.testing.assert_close(got[..., :V], expected[..., :V], atol=1e-5, rtol=0)
    sample_and_finetune(out, corpus_file, tmp_path)


def test_llada_wrong_from(llada, tmp_path):
    from textdiffusion.convert import convert
    from textdiffusion.convert.common import ConvertError

    src, _, _ = llada
    with pytest.raises(ConvertError, match=r"config\.json is not a dream checkpoint.*--from llada"):
        convert(src, tmp_path / "o", source="dream")
