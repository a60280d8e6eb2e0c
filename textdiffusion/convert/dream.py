"""Dream (Ye et al. 2025, Dream-org/Dream-v0-Base-7B): Qwen2 weights under Qwen2's own names (model.embed_tokens,
model.layers.i.self_attn.{q,k,v}_proj with biases, ..., lm_head), config.json with model_type "Dream" and remote
code. The converted model is transformers' Qwen2ForCausalLM run bidirectionally by the hf backbone, with Dream's
logit shift (position i read off the output at i - 1) and its mask token (`mask_token_id`, 151666: <|mask|>). The
remote code is never run. Layout: ../shared/reference/checkpoint-formats.md, section 2.5.
"""

from __future__ import annotations

from pathlib import Path

from textdiffusion.convert.common import ConvertError, expect, read_config, strip_prefixes

DREAM_ONLY = ("auto_map", "mask_token_id", "architectures", "model_type", "transformers_version")


def hf_config(config: dict) -> dict:
    values = {k: v for k, v in config.items() if k not in DREAM_ONLY}
    return {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], **values}


def convert(src: str | Path, out: str | Path, *, tokenizer: str | None = None) -> Path:
    from textdiffusion.checkpoint import save_pretrained
    from textdiffusion.convert.hf import HFFolderError, load_hf_folder, read_hf_weights

    src = Path(src)
    config = read_config(src)
    expect(
        src, config, "dream", 'a Dream config.json (model_type "Dream", architectures DreamModel)'
    )
    if tokenizer is not None:
        raise ConvertError("--tokenizer: Dream folders ship their tokenizer.json")
    try:
        state = strip_prefixes(read_hf_weights(src), ("module.",))
        pretrained = load_hf_folder(
            src,
            hf_config=hf_config(config),
            state=state,
            mask_id=int(config.get("mask_token_id", 151666)),
            logit_shift=1,
        )
    except HFFolderError as exc:
        raise ConvertError(str(exc)) from None
    return save_pretrained(pretrained.model, pretrained.tokenizer, out, config=pretrained.config)
