"""Tiny random Hugging Face model folders for the bridge, converter and LoRA tests (no network).

Each folder is what `save_pretrained` writes (config.json, model.safetensors) plus a tokenizer.json built with the
`tokenizers` library in the layout of the real family: BERT WordPiece ([PAD] [UNK] [CLS] [SEP] [MASK]), GPT-2 and
Qwen2 byte-level BPE (<|endoftext|>, no mask, no pad), LLaMA SentencePiece-style BPE (<unk> <s> </s>).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from conftest import make_corpus
from tokenizers import (
    AddedToken,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    trainers,
)

TEXT = make_corpus(300, seed=3)
SIZES = dict(hidden=32, layers=2, heads=2, inner=64, positions=64)


def wordpiece_tokenizer(*, specials=("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")) -> Tokenizer:
    words = sorted(set(TEXT.lower().replace(".", " ").split()))
    letters = sorted(set("".join(words)))
    vocab = {t: i for i, t in enumerate(specials)}
    for piece in [*letters, *(f"##{c}" for c in letters), ".", *words]:
        vocab.setdefault(piece, len(vocab))
    tok = Tokenizer(
        models.WordPiece(vocab, unk_token="[UNK]" if "[UNK]" in specials else specials[0])
    )
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.add_special_tokens([AddedToken(t, special=True) for t in specials])
    return tok


def bytelevel_tokenizer(*, specials=("<|endoftext|>",), vocab_size: int = 300) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TEXT.splitlines(), trainer=trainer)
    tok.add_special_tokens(
        [AddedToken(t, special=True) for t in specials]
    )  # after the vocabulary, as GPT-2
    return tok


def sentencepiece_tokenizer(*, specials=("<unk>", "<s>", "</s>"), extra=(), vocab_size: int = 200):
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(specials), show_progress=False
    )
    tok.train_from_iterator(TEXT.splitlines(), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True) for t in extra])
    return tok


def _save(model, tokenizer: Tokenizer, folder: Path) -> Path:
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder


def bert_folder(folder, *, head: bool = True, tokenizer: Tokenizer | None = None, seed: int = 0):
    import transformers

    tokenizer = tokenizer or wordpiece_tokenizer()
    config = transformers.BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=SIZES["hidden"],
        num_hidden_layers=SIZES["layers"],
        num_attention_heads=SIZES["heads"],
        intermediate_size=SIZES["inner"],
        max_position_embeddings=SIZES["positions"],
    )
    torch.manual_seed(seed)
    cls = transformers.BertForMaskedLM if head else transformers.BertModel
    return _save(cls(config), tokenizer, folder)


def gpt2_folder(folder, *, seed: int = 0):
    import transformers

    tokenizer = bytelevel_tokenizer()
    config = transformers.GPT2Config(
        vocab_size=tokenizer.get_vocab_size(),
        n_embd=SIZES["hidden"],
        n_layer=SIZES["layers"],
        n_head=SIZES["heads"],
        n_positions=SIZES["positions"],
        bos_token_id=tokenizer.token_to_id("<|endoftext|>"),
        eos_token_id=tokenizer.token_to_id("<|endoftext|>"),
    )
    torch.manual_seed(seed)
    return _save(transformers.GPT2LMHeadModel(config), tokenizer, folder)


def llama_config(vocab_size: int, **overrides):
    import transformers

    return transformers.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=SIZES["hidden"],
        intermediate_size=SIZES["inner"],
        num_hidden_layers=SIZES["layers"],
        num_attention_heads=SIZES["heads"],
        num_key_value_heads=SIZES["heads"],
        max_position_embeddings=SIZES["positions"],
        tie_word_embeddings=False,
        **overrides,
    )


def llama_folder(folder, *, seed: int = 0):
    import transformers

    tokenizer = sentencepiece_tokenizer()
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(llama_config(tokenizer.get_vocab_size()))
    return _save(model, tokenizer, folder)


def qwen2_config(vocab_size: int, **overrides):
    import transformers

    return transformers.Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=SIZES["hidden"],
        intermediate_size=SIZES["inner"],
        num_hidden_layers=SIZES["layers"],
        num_attention_heads=SIZES["heads"],
        num_key_value_heads=1,  # grouped-query attention, as Qwen2
        max_position_embeddings=SIZES["positions"],
        tie_word_embeddings=False,
        **overrides,
    )


def qwen2_folder(folder, *, seed: int = 0, padding: int = 3):
    """Qwen2 pads its embedding past the tokenizer (152064 rows for 151665 tokens): `padding` extra rows."""
    import transformers

    tokenizer = bytelevel_tokenizer(specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"))
    torch.manual_seed(seed)
    model = transformers.Qwen2ForCausalLM(qwen2_config(tokenizer.get_vocab_size() + padding))
    return _save(model, tokenizer, folder)


def write_json(path: Path, data) -> None:
    Path(path).write_text(json.dumps(data, indent=2))
