"""Tokenizers: character-level with byte fallback, and byte-level BPE, both saved as a Hugging Face `tokenizer.json`.

Both are lossless: `decode(encode(s)) == s` for any Unicode string. The character tokenizer keeps the characters seen
in training and spells every other character as its UTF-8 bytes (`<0x..>` tokens, the byte-fallback of
SentencePiece); byte-level BPE (GPT-2 style) covers every byte by construction. Special tokens are never produced
from user text: a literal "[MASK]" in the input is spelled out like any other text.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import AddedToken, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as _Backend

PAD, MASK, BOS, EOS, SEP = "[PAD]", "[MASK]", "[BOS]", "[EOS]", "[SEP]"
MASK_CHAR = "\u2591"
"""How a still-masked position is displayed (a light shade), in the terminal's --show and on the web page."""
SPECIAL_TOKENS = (PAD, MASK, BOS, EOS, SEP)
# Names under which Hugging Face tokenizers hold a role (`Tokenizer.from_hf` renames the token in place: its id, and
# so its pretrained embedding, stay).
ROLE_ALIASES = {
    PAD: ("<pad>", "<|pad|>"),
    MASK: ("<mask>", "<|mask|>", "<|mdm_mask|>"),
    BOS: ("[CLS]", "<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>"),
    EOS: ("</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>"),
    SEP: (),
}


class TokenizerError(ValueError):
    """The tokenizer file is missing, unreadable, or lacks the special tokens."""


class Tokenizer:
    """A lossless tokenizer with the special tokens diffusion needs (mask, pad, bos/eos, sep).

    Build one with `Tokenizer.train_char(texts)` or `Tokenizer.train_bpe(texts, vocab_size=...)`, save it with
    `save(path)` and read it back with `Tokenizer.load(path)`.
    """

    def __init__(self, backend: _Backend) -> None:
        backend.encode_special_tokens = True  # user text never turns into special tokens
        self.backend = backend
        ids = {}
        for token in SPECIAL_TOKENS:
            token_id = backend.token_to_id(token)
            if token_id is None:
                raise TokenizerError(f"tokenizer has no special token {token!r}")
            ids[token] = token_id
        self.pad_id, self.mask_id = ids[PAD], ids[MASK]
        self.bos_id, self.eos_id, self.sep_id = ids[BOS], ids[EOS], ids[SEP]
        self.special_ids = frozenset(ids.values())

    # -- construction -------------------------------------------------------------------------------------------
    @classmethod
    def train_char(cls, texts: Iterable[str], *, min_count: int = 1) -> Tokenizer:
        """One token per character seen at least `min_count` times; unseen characters fall back to bytes."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(text)
        vocab: dict[str, int] = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
        for byte in range(256):
            vocab[f"<0x{byte:02X}>"] = len(vocab)
        for char in sorted(c for c, n in counts.items() if n >= min_count):
            vocab.setdefault(char, len(vocab))
        backend = _Backend(models.BPE(vocab=vocab, merges=[], byte_fallback=True))
        backend.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
        backend.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL_TOKENS])
        return cls(backend)

    @classmethod
    def train_bpe(cls, texts: Iterable[str], *, vocab_size: int = 4096) -> Tokenizer:
        """Byte-level BPE (GPT-2's pre-tokenisation) trained with Hugging Face `tokenizers`."""
        backend = _Backend(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        backend.train_from_iterator(texts, trainer=trainer)
        return cls(backend)

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise TokenizerError(f"no tokenizer file at {path}")
        try:
            backend = _Backend.from_file(str(path))
        except Exception as exc:  # the Rust side raises plain Exceptions
            raise TokenizerError(f"cannot read tokenizer {path}: {exc}") from None
        return cls(backend)

    @classmethod
    def from_hf(
        cls, path: str | Path, *, mask_id: int | None = None, require_mask: bool = False
    ) -> Tokenizer:
        """A Hugging Face `tokenizer.json` (BERT WordPiece, GPT-2/Qwen2 byte-level BPE, LLaMA SentencePiece-BPE)
        given the five special tokens this package needs.

        A role the file already holds under another name (`ROLE_ALIASES`: BERT's [CLS] as [BOS], GPT-2's
        <|endoftext|> as [EOS], Dream's <|mask|> as [MASK], ...; or the token at `mask_id`) is renamed in place, so
        its id and pretrained embedding stay, and the saved file records the mapping (`load` reads it back). The
        other roles are added as new special tokens after the vocabulary, [MASK] first (so a GPT-2 vocabulary gets
        its mask at id 50257, as MDLM, SEDD and DiffuGPT put it). Truncation, padding and the post-processor are
        dropped: this package adds no special tokens while encoding and packs sequences itself.

        Args:
            path: the tokenizer.json file.
            mask_id: id of the mask token the model was trained with (LLaDA, Dream), renamed [MASK].
            require_mask: refuse a file without a mask token (a BERT masked LM is a denoiser with its own mask).
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TokenizerError(f"no tokenizer file at {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TokenizerError(f"cannot read tokenizer {path}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
            raise TokenizerError(f"{path} is not a Hugging Face tokenizer.json (no 'model' object)")
        added = data.get("added_tokens") or []
        vocab = data["model"].get("vocab") or {}
        pieces = (
            [v[0] for v in vocab] if isinstance(vocab, list) else list(vocab)
        )  # Unigram: [piece, score]
        ids = dict(zip(pieces, range(len(pieces)))) if isinstance(vocab, list) else dict(vocab)
        ids.update({t["content"]: t["id"] for t in added})
        renames: dict[str, str] = {}
        for role in SPECIAL_TOKENS:
            if role in ids:
                continue
            if role == MASK and mask_id is not None:
                found = [name for name, i in ids.items() if i == mask_id]
                if not found:
                    raise TokenizerError(f"{path} has no token with the mask id {mask_id}")
                renames[found[0]] = MASK
                continue
            alias = next((a for a in ROLE_ALIASES[role] if a in ids and a not in renames), None)
            if alias is not None:
                renames[alias] = role
            elif role == MASK and require_mask:
                raise TokenizerError(
                    f"{path} has no mask token ([MASK] or one of {list(ROLE_ALIASES[MASK])}), which a masked "
                    "language model needs"
                )
        for token in added:
            token["content"] = renames.get(token["content"], token["content"])
        if isinstance(vocab, list):
            data["model"]["vocab"] = [[renames.get(v[0], v[0]), *v[1:]] for v in vocab]
        elif vocab:
            data["model"]["vocab"] = {renames.get(k, k): v for k, v in vocab.items()}
        data["post_processor"] = data["padding"] = data["truncation"] = None
        try:
            backend = _Backend.from_str(json.dumps(data))
        except Exception as exc:  # the Rust side raises plain Exceptions
            raise TokenizerError(f"cannot read tokenizer {path}: {exc}") from None
        # present roles are marked special under their id; missing ones get the next ids, in this order
        order = (MASK, PAD, BOS, EOS, SEP)
        backend.add_special_tokens([AddedToken(t, special=True) for t in order])
        return cls(backend)

    def save(self, path: str | Path) -> None:
        self.backend.save(str(path))

    # -- use ----------------------------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    @property
    def kind(self) -> str:
        """bpe (byte-level BPE), char (`train_char`: the specials, then the 256 byte tokens), or hf (any other
        Hugging Face tokenizer, read by `from_hf`)."""
        if isinstance(self.backend.pre_tokenizer, pre_tokenizers.ByteLevel):
            return "bpe"
        return "char" if self.backend.token_to_id("<0x00>") == len(SPECIAL_TOKENS) else "hf"

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(_encodable(text), add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        texts = [_encodable(text) for text in texts]
        return [e.ids for e in self.backend.encode_batch(texts, add_special_tokens=False)]

    def byte_fallback_ids(self) -> list[int]:
        """Ids of the `<0x..>` byte tokens of a character tokenizer (they never occur in its training text)."""
        if self.kind != "char":
            return []
        vocab = self.backend.get_vocab()
        return [vocab[f"<0x{b:02X}>"] for b in range(256) if f"<0x{b:02X}>" in vocab]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`; special tokens (pad, mask, ...) are left out."""
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=True)

    def decode_with_masks(self, ids: Sequence[int], *, mask_char: str = "_") -> str:
        """Text of a partly masked sequence for display: each mask token shows as `mask_char`."""
        pieces: list[str] = []
        run: list[int] = []
        for token_id in ids:
            token_id = int(token_id)
            if token_id == self.mask_id:
                if run:
                    pieces.append(self.decode(run))
                    run = []
                pieces.append(mask_char)
            elif token_id not in self.special_ids:
                run.append(token_id)
        if run:
            pieces.append(self.decode(run))
        return "".join(pieces)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"Tokenizer(kind={self.kind!r}, vocab_size={self.vocab_size})"


_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable(text: str) -> str:
    """`text` with each lone surrogate as U+FFFD. Bytes that are not UTF-8 reach Python as lone surrogates
    (command-line arguments, files read with surrogateescape), and the Rust tokenizer refuses any string holding one;
    the model sees a replacement character there, while the pipelines keep the caller's text outside what they
    change."""
    return _SURROGATE.sub("\ufffd", text)
