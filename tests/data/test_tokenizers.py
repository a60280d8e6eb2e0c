from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textdiffusion.data import Tokenizer, TokenizerError

TRAIN = ["hello world", "the quick brown fox jumps over the lazy dog", "Hello, World!\n"]


@pytest.fixture(scope="module")
def char_tok():
    return Tokenizer.train_char(TRAIN)


@pytest.fixture(scope="module")
def bpe_tok():
    return Tokenizer.train_bpe(TRAIN * 20, vocab_size=300)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_char_roundtrip_any_unicode(char_tok, text):
    assert char_tok.decode(char_tok.encode(text)) == text


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_bpe_roundtrip_any_unicode(bpe_tok, text):
    assert bpe_tok.decode(bpe_tok.encode(text)) == text


@pytest.mark.parametrize("name", ["char_tok", "bpe_tok"])
def test_special_tokens_never_come_from_text(request, name):
    tok = request.getfixturevalue(name)
    ids = tok.encode("a [MASK] b [PAD] [EOS]")
    assert not set(ids) & tok.special_ids
    assert tok.decode(ids) == "a [MASK] b [PAD] [EOS]"
    assert len({tok.pad_id, tok.mask_id, tok.bos_id, tok.eos_id, tok.sep_id}) == 5


def test_unseen_characters_fall_back_to_bytes(char_tok):
    text = "héllo ☃ 😀"
    ids = char_tok.encode(text)
    assert len(ids) > len(text)  # é, ☃ and 😀 are spelled as UTF-8 bytes
    assert char_tok.decode(ids) == text


@pytest.mark.parametrize("name", ["char_tok", "bpe_tok"])
def test_undecodable_bytes_encode_as_replacement_characters(request, name):
    tok = request.getfixturevalue(name)
    # b"\xff" read with surrogateescape (a command-line argument, a --file) is the lone surrogate U+DCFF
    text = b"ab\xffc".decode("utf-8", errors="surrogateescape")
    assert tok.encode(text) == tok.encode("ab\ufffdc")
    assert tok.encode_batch([text, "ab"]) == [tok.encode("ab\ufffdc"), tok.encode("ab")]


def test_save_load_roundtrip(tmp_path, char_tok, bpe_tok):
    for tok in (char_tok, bpe_tok):
        tok.save(tmp_path / "tokenizer.json")
        again = Tokenizer.load(tmp_path)
        assert again.kind == tok.kind
        assert again.vocab_size == tok.vocab_size
        text = "the [MASK] fox ☃"
        assert again.encode(text) == tok.encode(text)
        assert again.mask_id == tok.mask_id


def test_load_errors(tmp_path):
    with pytest.raises(TokenizerError, match="no tokenizer file"):
        Tokenizer.load(tmp_path / "missing.json")
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(TokenizerError, match="cannot read tokenizer"):
        Tokenizer.load(bad)


def test_decode_with_masks(char_tok):
    ids = char_tok.encode("abc")
    ids[1] = char_tok.mask_id
    assert char_tok.decode_with_masks(ids, mask_char="_") == "a_c"
    assert char_tok.decode(ids) == "ac"
