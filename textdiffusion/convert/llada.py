"""LLaDA (Nie et al. 2025, GSAI-ML/LLaDA-8B-Base): an OLMo-named LLaMA block stack without the causal mask. The
weights become transformers' LlamaForCausalLM (Qwen2ForCausalLM when only q/k/v carry biases) run bidirectionally
by the hf backbone, with no logit shift and LLaDA's own mask token (`mask_token_id`, 126336: <|mdm_mask|>).

Name map (under `model.transformer.`): wte -> model.embed_tokens; blocks.i.{attn_norm, q_proj, k_proj, v_proj,
attn_out, ff_norm, ff_proj (the SiLU gate), up_proj, ff_out} -> model.layers.i.{input_layernorm, self_attn.q/k/v_proj,
self_attn.o_proj, post_attention_layernorm, mlp.gate_proj, mlp.up_proj, mlp.down_proj}; ln_f -> model.norm;
ff_out (untied head) -> lm_head. Rotary is the NeoX half split in both. The embedding (126464 rows, padded) is cut to
the tokenizer. Layout: ../shared/reference/checkpoint-formats.md, section 2.4.
"""

from __future__ import annotations

import re
from pathlib import Path

from textdiffusion.convert.common import ConvertError, expect, read_config, strip_prefixes

BLOCK = {
    "attn_norm": "input_layernorm",
    "q_proj": "self_attn.q_proj",
    "k_proj": "self_attn.k_proj",
    "v_proj": "self_attn.v_proj",
    "attn_out": "self_attn.o_proj",
    "ff_norm": "post_attention_layernorm",
    "ff_proj": "mlp.gate_proj",
    "up_proj": "mlp.up_proj",
    "ff_out": "mlp.down_proj",
}
TOP = {
    "wte.weight": "model.embed_tokens.weight",
    "ln_f.weight": "model.norm.weight",
    "ff_out.weight": "lm_head.weight",
}


def hf_config(src: Path, config: dict) -> dict:
    """The transformers config of a LLaDA config.json."""
    where = src / "config.json"
    if (
        config.get("block_type", "llama") != "llama"
        or config.get("layer_norm_type", "rms") != "rms"
    ):
        raise ConvertError(
            f"{where}: block_type {config.get('block_type')!r} / layer_norm_type {config.get('layer_norm_type')!r}; "
            "expected llama blocks with RMS norms"
        )
    if str(config.get("activation_type", "silu")).lower() not in ("silu", "swiglu"):
        raise ConvertError(f"{where}: activation_type {config['activation_type']!r}; expected silu")
    bias, qkv_bias = bool(config.get("include_bias")), bool(config.get("include_qkv_bias"))
    heads = int(config["n_heads"])
    values = dict(
        hidden_size=int(config["d_model"]),
        intermediate_size=int(config["mlp_hidden_size"]),
        num_hidden_layers=int(config["n_layers"]),
        num_attention_heads=heads,
        num_key_value_heads=int(config.get("n_kv_heads") or heads),
        rms_norm_eps=float(config.get("rms_norm_eps", 1e-5)),
        rope_theta=float(config.get("rope_theta", 10000.0)),
        vocab_size=int(config.get("embedding_size") or config["vocab_size"]),
        max_position_embeddings=int(config.get("max_sequence_length", 4096)),
        tie_word_embeddings=bool(config.get("weight_tying", False)),
    )
    if qkv_bias and not bias:  # biases on q, k, v only: Qwen2's layout
        return {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], **values}
    extra = dict(attention_bias=bias, mlp_bias=bias)
    return {"model_type": "llama", "architectures": ["LlamaForCausalLM"], **values, **extra}


def rename(state: dict, *, src: Path) -> dict:
    state = strip_prefixes(state, ("module.", "model.transformer.", "transformer."))
    out = {}
    for name, tensor in state.items():
        match = re.fullmatch(r"blocks\.(\d+)\.(\w+)\.(weight|bias)", name)
        if match and match.group(2) in BLOCK:
            i, part, kind = match.groups()
            out[f"model.layers.{i}.{BLOCK[part]}.{kind}"] = tensor
        elif name in TOP:
            out[TOP[name]] = tensor
        elif not name.endswith("rotary_emb.inv_freq"):
            raise ConvertError(
                f"{src}: unexpected weight {name!r} for the LLaDA layout (model.transformer.*)"
            )
    return out


def convert(src: str | Path, out: str | Path, *, tokenizer: str | None = None) -> Path:
    from textdiffusion.checkpoint import save_pretrained
    from textdiffusion.convert.hf import HFFolderError, load_hf_folder, read_hf_weights

    src = Path(src)
    config = read_config(src)
    expect(
        src, config, "llada", "a LLaDA config.json (d_model, n_layers, n_heads, mlp_hidden_size)"
    )
    if tokenizer is not None:
        raise ConvertError("--tokenizer: LLaDA folders ship their tokenizer.json")
    try:
        state = rename(read_hf_weights(src), src=src)
        pretrained = load_hf_folder(
            src,
            hf_config=hf_config(src, config),
            state=state,
            mask_id=int(config.get("mask_token_id", 126336)),
            logit_shift=0,
        )
    except HFFolderError as exc:
        raise ConvertError(str(exc)) from None
    return save_pretrained(pretrained.model, pretrained.tokenizer, out, config=pretrained.config)
