from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from textdiffusion.data import Tokenizer
from textdiffusion.data.corpus import DataError
from textdiffusion.data.seq2seq import chunk_text, pad_pairs
from textdiffusion.tasks.denoise.corruption import CorruptionConfig, Corruptor
from textdiffusion.tasks.denoise.pairs import (
    CorruptionPairStream,
    read_word_counts,
    sentences_from_text,
    split_tokens,
    target_length,
)


def test_chunk_text_keeps_everything():
    text = "one two three four five six seven eight nine ten " * 5
    pieces = chunk_text(text, 23)
    assert "".join(pieces) == text and all(len(p) <= 23 for p in pieces)
    assert chunk_text("x" * 50, 20) == ["x" * 20, "x" * 20, "x" * 10]  # a long word is cut hard


def test_sentences_from_wrapped_prose():
    text = "It was a dark\nnight. The rain fell! Then\nit stopped.\n\nA new paragraph here."
    assert sentences_from_text(text, max_chars=40) == [
        "It was a dark night.",
        "The rain fell!",
        "Then it stopped.",
        "A new paragraph here.",
    ]


def test_pad_pairs_layout():
    batch = pad_pairs([[5, 6, 7], [8]], [[5, 6, 7, 0, 0], [9, 0]], pad_id=0, length=target_length)
    assert batch["prefix"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["prefix_mask"].tolist() == [[True] * 3, [True, False, False]]
    assert batch["target_mask"].sum(1).tolist() == [target_length(3), target_length(1)]
    assert batch["target"][1, :2].tolist() == [9, 0]


def make_stream(**kwargs):
    sentences = [f"The quick brown fox number {i} jumps over the lazy dog." for i in range(50)]
    tok = Tokenizer.train_char(sentences)
    return CorruptionPairStream(
        sentences,
        tokenizer=tok,
        corruptor=Corruptor(CorruptionConfig()),
        batch_size=8,
        seed=1,
        pool=4,
        **kwargs,
    )


def test_pair_stream_is_reproducible_resumable_and_learns_pads():
    a = make_stream()
    batches = [a.next_batch() for _ in range(10)]
    for batch in batches:
        t, m = batch["target"], batch["target_mask"]
        # every target row ends in learnt PADs within its mask
        assert all(t[i, m[i]][-1] == a.plan.tokenizer.pad_id for i in range(len(t)))
    b = make_stream()
    for _ in range(5):
        b.next_batch()
    c = make_stream()
    c.load_state_dict(b.state_dict())
    for i in range(5, 10):
        got = c.next_batch()
        assert all(np.array_equal(got[k], batches[i][k]) for k in got)


def test_workers_give_the_same_batches():
    a, b = make_stream(), make_stream(workers=2)
    try:
        for _ in range(6):
            x, y = a.next_batch(), b.next_batch()
            assert all(np.array_equal(x[k], y[k]) for k in x)
    finally:
        b.close()


def test_two_streams_do_not_share_their_sentences():
    a = make_stream()
    other = ["Zebras zigzag quietly." for _ in range(20)]
    b = CorruptionPairStream(
        other,
        tokenizer=Tokenizer.train_char(other),
        corruptor=Corruptor(CorruptionConfig()),
        batch_size=8,
        seed=1,
        pool=4,
        word_fraction=0.0,
    )
    b.next_batch()
    batch = a.next_batch()  # made after b: must still come from a's own sentences
    decoded = [
        a.plan.tokenizer.decode(row[mask])
        for row, mask in zip(batch["target"], batch["target_mask"])
    ]
    assert not any("Zebra" in text for text in decoded)


def test_word_list_file_feeds_the_single_word_pairs(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("zebra 100\nquokka 4\n\nyak\n")
    counts = read_word_counts(path)
    assert counts == {"zebra": 100.0, "quokka": 4.0, "yak": 1.0}
    stream = make_stream(word_counts=counts, word_fraction=1.0, word_clean_rate=1.0)
    tok = stream.plan.tokenizer
    seen = Counter()
    for _ in range(20):
        batch = stream.next_batch()
        for row, mask in zip(batch["target"], batch["target_mask"]):
            seen[tok.decode([i for i in row[mask] if i != tok.pad_id])] += 1
    assert set(seen) == {"zebra", "quokka", "yak"}
    assert (
        seen["zebra"] > seen["quokka"] > seen["yak"]
    )  # drawn by the square root of the count: 10 : 2 : 1
    (tmp_path / "bad.txt").write_text("zebra many\n")
    with pytest.raises(DataError, match="bad.txt:1: expected 'word \\[count\\]'"):
        read_word_counts(tmp_path / "bad.txt")


def test_split_tokens_spaces_punctuation_and_clitics_like_tokenised_corpora():
    assert split_tokens("I don't know, see. He's here!") == "I do n't know , see . He 's here !"
    assert split_tokens('So "we\'ll" go (now);') == 'So " we \'ll " go ( now ) ;'
    assert split_tokens("already , tokenised .") == "already , tokenised ."  # idempotent


def test_every_pair_fits_the_context_even_when_its_copy_is_too_long():
    stream = make_stream(
        max_tokens=40, word_fraction=0.0
    )  # sentences of ~56 characters cannot fit as a copy
    for _ in range(10):
        batch = stream.next_batch()
        lengths = batch["prefix_mask"].sum(1) + batch["target_mask"].sum(1)
        assert lengths.max() <= 40
