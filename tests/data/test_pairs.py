from __future__ import annotations

import numpy as np

from textdiffusion.data import Tokenizer
from textdiffusion.data.corruption import CorruptionConfig, Corruptor
from textdiffusion.data.pairs import (
    CorruptionPairStream,
    chunk_text,
    pad_pairs,
    sentences_from_text,
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
    batch = pad_pairs([[5, 6, 7], [8]], [[5, 6, 7, 0, 0], [9, 0]], pad_id=0)
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
        assert all(t[i, m[i]][-1] == a.tokenizer.pad_id for i in range(len(t)))
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
        a.tokenizer.decode(row[mask]) for row, mask in zip(batch["target"], batch["target_mask"])
    ]
    assert not any("Zebra" in text for text in decoded)
