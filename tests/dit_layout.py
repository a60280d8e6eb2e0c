"""Tiny random checkpoints in the published DiT layout (models/dit.py of SEDD, MDLM, BD3LM, DUO) and a reference
forward pass written from the layout notes (../shared/reference/checkpoint-formats.md, 2.1-2.3), independent of
textdiffusion/networks/dit.py."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from hf_folders import bytelevel_tokenizer, write_json
from safetensors.torch import save_file

DIM, HEADS, BLOCKS, COND, LENGTH = 32, 2, 2, 16, 32


def dit_state(vocab: int, *, prefix: str = "backbone.", seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    s = {
        "vocab_embed.embedding": rand(vocab, DIM, scale=1.0),
        "sigma_map.mlp.0.weight": rand(COND, 256),
        "sigma_map.mlp.0.bias": rand(COND),
        "sigma_map.mlp.2.weight": rand(COND, COND),
        "sigma_map.mlp.2.bias": rand(COND),
        "rotary_emb.inv_freq": 1.0
        / 10000 ** (torch.arange(0, DIM // HEADS, 2).float() / (DIM // HEADS)),
        "output_layer.norm_final.weight": 1 + rand(DIM),
        "output_layer.linear.weight": rand(vocab, DIM),
        "output_layer.linear.bias": rand(vocab),
        "output_layer.adaLN_modulation.weight": rand(2 * DIM, COND),
        "output_layer.adaLN_modulation.bias": rand(2 * DIM),
    }
    for i in range(BLOCKS):
        b = f"blocks.{i}."
        s |= {
            b + "norm1.weight": 1 + rand(DIM),
            b + "attn_qkv.weight": rand(3 * DIM, DIM),
            b + "attn_out.weight": rand(DIM, DIM),
            b + "norm2.weight": 1 + rand(DIM),
            b + "mlp.0.weight": rand(4 * DIM, DIM),
            b + "mlp.0.bias": rand(4 * DIM),
            b + "mlp.2.weight": rand(DIM, 4 * DIM),
            b + "mlp.2.bias": rand(DIM),
            b + "adaLN_modulation.weight": rand(6 * DIM, COND),
            b + "adaLN_modulation.bias": rand(6 * DIM),
        }
    return {prefix + k: v for k, v in s.items()}


def write_dit(folder, config: dict, *, prefix: str = "backbone.", extra: dict | None = None):
    """folder/config.json, folder/model.safetensors (vocab = GPT-2-like tokenizer + 1 mask row), and a separate
    tokenizer.json (the published DiT checkpoints ship none). Returns (folder, tokenizer path, state)."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    tok = bytelevel_tokenizer()
    vocab = tok.get_vocab_size() + 1  # the mask appended after the tokenizer's tokens
    state = dit_state(vocab, prefix=prefix) | (extra or {})
    save_file(state, str(folder / "model.safetensors"))
    write_json(folder / "config.json", config(vocab) if callable(config) else config)
    tokenizer = folder.parent / f"{folder.name}-tokenizer.json"
    tok.save(str(tokenizer))
    return folder, tokenizer, {k[len(prefix) :]: v for k, v in state.items()}


def mdlm_config(vocab: int, **extra) -> dict:
    return dict(
        model_type="mdlm",
        hidden_dim=DIM,
        n_blocks=BLOCKS,
        n_heads=HEADS,
        cond_dim=COND,
        model_length=LENGTH,
        vocab_size=vocab,
        dropout=0.1,
        time_conditioning=False,
        auto_map={"AutoModelForMaskedLM": "modeling_mdlm.MDLM"},
        **extra,
    )


def reference_logits(W, ids, sigma, *, block_size: int = 0) -> torch.Tensor:
    """The DiT's raw output (B, L, V) from the state dict `W` (no prefixes), following the layout notes."""
    x = W["vocab_embed.embedding"][ids]  # (B, L, D)
    B, L, D = x.shape
    d = D // HEADS
    half = 128
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half).float() / half)
    emb = torch.cat([torch.cos(sigma[:, None] * freqs), torch.sin(sigma[:, None] * freqs)], dim=-1)
    c = F.linear(emb, W["sigma_map.mlp.0.weight"], W["sigma_map.mlp.0.bias"])
    c = F.silu(F.linear(F.silu(c), W["sigma_map.mlp.2.weight"], W["sigma_map.mlp.2.bias"]))
    inv = 1.0 / 10000 ** (torch.arange(0, d, 2).float() / d)
    f = torch.outer(torch.arange(L).float(), inv)
    cos, sin = torch.cat([f, f], -1).cos(), torch.cat([f, f], -1).sin()  # (L, d)

    def rotate(t):  # t (B, L, H, d), NeoX half split
        t1, t2 = t[..., : d // 2], t[..., d // 2 :]
        return t * cos[None, :, None] + torch.cat([-t2, t1], -1) * sin[None, :, None]

    bias = torch.zeros(L, L)
    if block_size:
        blocks = torch.arange(L) // block_size
        bias = bias.masked_fill(blocks[None, :] > blocks[:, None], float("-inf"))

    def ln(t, w):
        return F.layer_norm(t, (D,)) * w

    for i in range(BLOCKS):
        p = f"blocks.{i}."
        mod = F.linear(c, W[p + "adaLN_modulation.weight"], W[p + "adaLN_modulation.bias"])
        sh1, sc1, g1, sh2, sc2, g2 = [m[:, None] for m in mod.chunk(6, dim=-1)]
        h = ln(x, W[p + "norm1.weight"]) * (1 + sc1) + sh1
        qkv = (h @ W[p + "attn_qkv.weight"].T).view(B, L, 3, HEADS, d)
        q, k, v = rotate(qkv[:, :, 0]), rotate(qkv[:, :, 1]), qkv[:, :, 2]
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d) + bias
        att = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v).reshape(B, L, D)
        x = x + g1 * (att @ W[p + "attn_out.weight"].T)
        h = ln(x, W[p + "norm2.weight"]) * (1 + sc2) + sh2
        h = F.gelu(F.linear(h, W[p + "mlp.0.weight"], W[p + "mlp.0.bias"]), approximate="tanh")
        x = x + g2 * F.linear(h, W[p + "mlp.2.weight"], W[p + "mlp.2.bias"])
    mod = F.linear(
        c, W["output_layer.adaLN_modulation.weight"], W["output_layer.adaLN_modulation.bias"]
    )
    shift, scale = [m[:, None] for m in mod.chunk(2, dim=-1)]
    h = ln(x, W["output_layer.norm_final.weight"]) * (1 + scale) + shift
    return F.linear(h, W["output_layer.linear.weight"], W["output_layer.linear.bias"])


def loglinear_sigma(t: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return -torch.log1p(-(1 - eps) * t)


def sample_and_finetune(out: Path, corpus_file, tmp_path) -> None:
    """A converted folder samples (`generate --model`) and fine-tunes (`train --init-from`) for a few steps."""
    from textdiffusion.checkpoint import load_pretrained
    from textdiffusion.cli import main

    main(
        [
            "generate",
            "--model",
            str(out),
            "--n",
            "2",
            "--length",
            "8",
            "--steps",
            "3",
            "--device",
            "cpu",
        ]
    )
    tuned = tmp_path / "tuned"
    flags = [
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--seq-len",
        "16",
        "--device",
        "cpu",
        "--eval-every",
        "0",
    ]
    flags += ["--eval-batches", "1", "--warmup-steps", "1", "--quiet"]
    main(
        ["train", "--init-from", str(out), "--out", str(tuned), "--data", str(corpus_file), *flags]
    )
    before, after = (
        load_pretrained(out).model.state_dict(),
        load_pretrained(tuned).model.state_dict(),
    )
    assert any(not torch.equal(before[k], after[k]) for k in before)
